"""The deterministic planner: pick a catalog action, map its parameters, and say how sure it is.

No LLM is needed for this; an LLM planner (a later issue) may only choose among the same candidates
and falls back to this one.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .catalog import Action
from .contracts import properties, violations
from .errors import FieldError

EXECUTE, APPROVAL, REVIEW = "execute", "awaiting_approval", "needs_review"
# Two valid candidates this close in confidence are a coin toss: a person should choose.
AMBIGUITY_MARGIN, AMBIGUITY_PENALTY = 0.1, 0.15
_TIER_ORDER = {"low": 0, "medium": 1, "high": 2}


@dataclass(slots=True)
class Plan:
    actionId: str
    actionVersion: int
    parameters: dict[str, Any]
    confidence: float
    riskTier: str
    approvalRole: str | None
    method: str = "deterministic"
    promptVersion: str | None = None
    # From an LLM plan: why this action (for the audit) and a one-line summary of the case (for cards).
    rationale: str | None = None
    summary: str | None = None
    # How many different people must approve by amount (planning.threshold_need): 0 when only the tier asks.
    approvers: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = {"actionId": self.actionId, "actionVersion": self.actionVersion, "parameters": self.parameters,
               "confidence": round(self.confidence, 3), "riskTier": self.riskTier,
               "approvalRole": self.approvalRole, "method": self.method, "promptVersion": self.promptVersion}
        if self.rationale:
            out["rationale"] = self.rationale
        if self.summary:
            out["summary"] = self.summary
        if self.approvers:  # plans made before amount thresholds stay as they were stored
            out["approvers"] = self.approvers
        return out


@dataclass(slots=True)
class Decision:
    outcome: str  # EXECUTE, APPROVAL or REVIEW
    plan: Plan | None
    reason: str
    problems: list[FieldError] = field(default_factory=list)


def parameters_for(action: Action, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The contract's properties taken from the opportunity's attributes (through the parameter map)."""
    mapped = action.parameterMap or {}
    out = {}
    for name in properties(action):
        value = attributes.get(mapped.get(name, name))
        if value not in (None, ""):
            out[name] = value
    return out


def decide(attributes: Mapping[str, Any], candidates: Sequence[Action], threshold: float) -> Decision:
    """Plan one opportunity: execute when a low-risk action fits with confidence, else ask a person."""
    if not candidates:
        return Decision(REVIEW, None, "no enabled catalog action matches this pattern")
    options = []
    for action in candidates:
        params = parameters_for(action, attributes)
        problems = violations(action, params)
        options.append((0.0 if problems else coverage_confidence(action, params), action, params, problems))
    valid = sorted((o for o in options if not o[3]),
                   key=lambda o: (-o[0], _TIER_ORDER.get(o[1].riskTier.value, 3), o[1].id))
    if not valid:
        _, action, _, problems = options[0]
        return Decision(REVIEW, None, f"parameters for {action.id} break its data contract", problems)
    confidence, action, params, _ = valid[0]
    reason = f"{action.id} v{action.version}: {len(params)}/{len(properties(action))} contract fields"
    if len(valid) > 1 and valid[1][0] >= confidence - AMBIGUITY_MARGIN:
        confidence -= AMBIGUITY_PENALTY
        reason += f"; {valid[1][1].id} fits almost as well"
    return judge(Plan(action.id, action.version, params, confidence, action.riskTier.value, action.approvalRole),
                 action, reason, threshold)


def threshold_need(action: Action, parameters: Mapping[str, Any]) -> tuple[int, str]:
    """How many people must approve by amount (0, 1 or 2) under the action's thresholds, and why
    ("amount 7,500 is above 5,000: two approvers"). Fails closed: a value that is there but not a finite number
    (text from a form, NaN, a boolean) cannot be compared, so it asks the most that threshold can ask."""
    need, why = 0, ""
    for t in action.thresholds():
        value = parameters.get(t.field)
        if value is None:
            continue
        if not _finite_number(value):
            most = 2 if t.secondApproverAbove is not None else 1 if t.approvalAbove is not None else 0
            if most > need:
                need, why = most, (f"{t.field} is {_what(value)}, not a finite number: "
                                   f"{'two approvers' if most == 2 else 'an approval'}")
            continue
        if t.secondApproverAbove is not None and value > t.secondApproverAbove and need < 2:
            need, why = 2, f"{t.field} {value:,.2f} is above {t.secondApproverAbove:,.2f}: two approvers"
        elif t.approvalAbove is not None and value > t.approvalAbove and need < 1:
            need, why = 1, f"{t.field} {value:,.2f} is above {t.approvalAbove:,.2f}: an approval"
    return need, why


def _what(value: Any) -> str:
    """What a value that is not a finite number is, without quoting it (a reason is shown on cards and stored)."""
    if isinstance(value, float):
        return str(value)  # nan, inf, -inf
    kinds = {bool: "a boolean", int: "an integer too large to compare", str: "text"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def _finite_number(value: Any) -> bool:
    # bool is an int to Python; NaN compares false with every limit; an int past float's range cannot be shown.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def coverage_confidence(action: Action, params: Mapping[str, Any]) -> float:
    """How much of the contract the parameters fill: 0.6 for none, 1.0 for all."""
    props = properties(action)
    return 0.6 + 0.4 * (len(params) / len(props) if props else 1.0)


def judge(plan: Plan, action: Action, reason: str, threshold: float) -> Decision:
    """The outcome of a valid plan, by rule: below the threshold a person reviews it; above low risk, or above
    an amount threshold whatever the tier, one person approves (two above a secondApproverAbove)."""
    need, why = threshold_need(action, plan.parameters)
    plan = replace(plan, approvers=need)
    confidence = plan.confidence
    if confidence < threshold:
        return Decision(REVIEW, plan, f"{reason}; confidence {confidence:.2f} is below {threshold:.2f}")
    amount = f"; {why}" if need else ""
    if action.riskTier.value != "low":
        approver = action.approvalRole or "an approver"
        return Decision(APPROVAL, plan, f"{reason}; {action.riskTier.value} risk needs {approver}{amount}")
    if need:
        return Decision(APPROVAL, plan, f"{reason}; low risk, but {why}")
    return Decision(EXECUTE, plan, f"{reason}; confidence {confidence:.2f}, low risk")


def govern(decision: Decision, mode: str) -> Decision:
    """The plan under the autonomy in force: `off` executes nothing, `approval` asks a person first."""
    if decision.plan is None:  # nothing would be done: nothing to hold back
        return decision
    if mode == "off":
        return Decision(REVIEW, decision.plan, f"{decision.reason}; autonomy is off for {decision.plan.actionId}",
                        decision.problems)
    if mode == "approval" and decision.outcome == EXECUTE:
        return Decision(APPROVAL, decision.plan, f"{decision.reason}; autonomy requires approval (frozen or "
                        f"set to approval)", decision.problems)
    return decision
