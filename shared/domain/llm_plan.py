"""LLM-assisted planning, the pure part: what the model is shown, what it may answer, and what is kept.

The model never sees a finding's values or free text: only the process area, the pattern, the names and
JSON types of the attributes (the *shape*; names are identifiers, findings.ATTRIBUTE_NAME), the names of the
root-cause signals (never their values) and the candidate actions, every string of them scrubbed of personal
data. It answers with a plan template: which candidate, which attribute fills which contract field, a
rationale and a summary template. Code then fills the values from the finding's own attributes, validates
them against the action's contract, and decides execute/approve/review by the same rules as the
deterministic planner. So a finding cannot instruct the model (its text never reaches it), and the model
cannot pick a non-candidate action, invent an amount, or skip an approval. One template serves every finding
of the same shape: the cache key.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .catalog import Action
from .contracts import properties, violations
from .findings import ATTRIBUTE_NAME
from .pii import redact, scrub
from .planning import REVIEW, Decision, Plan, coverage_confidence, judge, parameters_for

MAX_ATTRIBUTES_SHOWN = 60
MAX_SIGNALS_SHOWN = 20  # findings.MAX_SIGNALS
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")


class ParameterSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameter: str = Field(max_length=100)
    attribute: str = Field(max_length=100)


class PlanProposal(BaseModel):
    """The model's answer (structured output): a plan template, never values."""

    model_config = ConfigDict(extra="forbid")

    actionId: str = Field(max_length=100)
    parameterSources: list[ParameterSource] = Field(max_length=50)
    confidence: float = Field(ge=0, le=1)
    rationale: str = Field(max_length=600)
    summaryTemplate: str = Field(max_length=600)


@dataclass(frozen=True, slots=True)
class Prompt:
    version: str
    system: str
    user: str


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def shape(attributes: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Attribute names and JSON types, sorted: what the model sees of a finding instead of its data.

    Ingest refuses names that are not identifiers; one stored before that rule, or set by a path that
    skipped it, is left out here rather than shown to the model."""
    return sorted((k, _kind(v)) for k, v in attributes.items()
                  if v not in (None, "") and ATTRIBUTE_NAME.fullmatch(k))[:MAX_ATTRIBUTES_SHOWN]


def signal_names(signals: Sequence[Mapping[str, Any]]) -> list[str]:
    """The root-cause signals' names, sorted and unique: what the model sees of them (values never reach it).

    Ingest refuses names that are not identifiers; any other is left out, as for attribute names."""
    return sorted({s["name"] for s in signals if isinstance(s.get("name"), str)
                   and ATTRIBUTE_NAME.fullmatch(s["name"])})[:MAX_SIGNALS_SHOWN]


def cache_key(process_area: str, pattern: str, candidates: Sequence[Action], prompt_version: str,
              attribute_shape: Sequence[tuple[str, str]], signals: Sequence[str] = ()) -> str:
    """One plan template per (processArea, pattern, candidate versions, prompt version, attribute shape, and the
    root-cause signal names when there are any: they are in the prompt)."""
    parts: list[Any] = [process_area.casefold(), pattern.casefold(), sorted((a.id, a.version) for a in candidates),
                        prompt_version, list(attribute_shape)]
    if signals:  # without signals, the key stays what it was: templates cached before them still serve
        parts.append(list(signals))
    text = json.dumps(parts, separators=(",", ":"))
    return sha256(text.encode()).hexdigest()[:32]


def _candidate(action: Action) -> dict[str, Any]:
    contract = action.dataContract or {}
    fields = {name: {k: v for k, v in spec.items() if k in ("type", "description", "enum", "maximum", "minimum")}
              for name, spec in (contract.get("properties") or {}).items()}
    return {"actionId": action.id, "name": action.name, "description": action.description,
            "riskTier": action.riskTier.value, "requiredFields": contract.get("required", []), "fields": fields}


def messages(prompt: Prompt, process_area: str, pattern: str, candidates: Sequence[Action],
             attribute_shape: Sequence[tuple[str, str]], signals: Sequence[str] = ()) -> list[dict[str, str]]:
    """The chat messages for one plan template; the data block is JSON, so nothing in it is an instruction.
    `signals` are the root-cause signal names (signal_names): candidate context, never their values."""
    data: dict[str, Any] = {"processArea": process_area, "deviationPattern": pattern,
                            "attributes": [{"name": n, "type": t} for n, t in attribute_shape]}
    if signals:
        data["rootCauseSignals"] = list(signals)
    data["candidates"] = [_candidate(a) for a in candidates]
    # The area, the pattern and the names come from the miner (an identifier can be an IBAN:
    # "DE89370400440532013000"): each string is scrubbed as itself, before JSON escapes could split one.
    block = json.dumps(redact(data), ensure_ascii=False, indent=1)
    return [{"role": "system", "content": prompt.system},
            {"role": "user", "content": prompt.user.replace("{data}", block)}]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of a proposal: `adopted`, or why it was not (non_candidate, contract)."""

    outcome: str
    detail: str = ""


def adopt(proposal: PlanProposal, candidates: Sequence[Action], attributes: Mapping[str, Any],
          fallback: Decision, threshold: float, prompt_version: str,
          pii_fields: frozenset[str] = frozenset()) -> tuple[Decision, Verdict]:
    """The decision from a valid proposal, or the fallback (deterministic plan, or review) and why."""
    action = next((a for a in candidates if a.id == proposal.actionId), None)
    if action is None:
        # The model named an action the catalog does not allow here: something steered it. A person looks.
        return (Decision(REVIEW, None, f"the LLM proposed {proposal.actionId[:100]!r}, which is not a candidate "
                         f"({', '.join(a.id for a in candidates)}): a person plans this case"),
                Verdict("non_candidate", proposal.actionId[:100]))
    params = parameters_for(action, attributes)
    allowed = set(properties(action))
    for source in proposal.parameterSources:
        # Only gaps are filled, only with the finding's own values: the model maps, it never writes values.
        if source.parameter in allowed and source.parameter not in params:
            value = attributes.get(source.attribute)
            if value not in (None, ""):
                params[source.parameter] = value
    problems = violations(action, params)
    if problems:
        return fallback, Verdict("contract", "; ".join(f"{p.pointer} {p.detail}" for p in problems)[:300])
    confidence = min(proposal.confidence, coverage_confidence(action, params))
    summary = render_summary(proposal.summaryTemplate, attributes, pii_fields)
    plan = Plan(action.id, action.version, params, confidence, action.riskTier.value, action.approvalRole,
                "llm", prompt_version, scrub(proposal.rationale)[:300], summary)
    reason = f"{action.id} v{action.version} (LLM, {prompt_version}): {plan.rationale}"
    return judge(plan, action, reason, threshold), Verdict("adopted")


def render_summary(template: str, attributes: Mapping[str, Any], pii_fields: frozenset[str] = frozenset()) -> str:
    """The summary template with `{attribute}` placeholders filled from the finding (PII masked, clipped)."""
    shown = redact(dict(attributes), pii_fields)

    def fill(m: re.Match) -> str:
        value = shown.get(m.group(1))
        if value in (None, ""):
            return "?"
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return text[:60]

    return scrub(_PLACEHOLDER.sub(fill, template).replace("{", "").replace("}", ""))[:300]
