"""Planner: a deterministic plan among the catalog's candidates, then execute, ask, or hand to a person."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..domain import identifying, planning
from ..domain.approvals import Approval
from ..domain.autonomy import Autonomy
from ..domain.catalog import Action
from ..domain.errors import Unavailable
from ..domain.messages import nudge
from ..domain.opportunity import Opportunity
from ..domain.pii import scrub
from ..domain.rate_limit import Rule
from ..domain.status import Status
from ..ports import Services
from . import approvals, autonomy, notices, ramp, review
from .lifecycle import step
from .stage import Found, Needs, Note, Outcome, Result


def cap_of(action: Action) -> Rule:
    return Rule(f"cap:{action.id}", action.dailyCap or 0, 86400.0)


def needs(services: Services, opp: Opportunity) -> Needs:
    """Whether each candidate's daily cap is reached (when a person takes over at the cap), and each ramping
    candidate's stage: whichever the plan picks, its answer is then at hand."""
    if opp.status is not Status.triaged:
        return Needs()
    candidates = services.catalog.candidates(opp.processArea, opp.deviationPattern)
    capped = services.policy.overCap == "person"
    return Needs(states=[ramp.state_name(a) for a in candidates if a.ramp],
                 limits=[cap_of(a) for a in candidates if capped and a.dailyCap])


def _review(services: Services, opp: Opportunity, decision: planning.Decision,
            cid: str) -> tuple[Approval, dict[str, Any]] | None:
    """The review request, or None when no request can be signed (production without its signing key): the
    case then waits in the backlog with the escalation note, and the stage does not fail."""
    if services.settings.approvals_off:
        return None
    try:
        return review.open_review(services, opp, decision, cid)
    except Unavailable:
        return None


def _answered(services: Services, state: Autonomy, opp: Opportunity,
              decision: planning.Decision) -> planning.Decision:
    """A plan for a pair people's answers tightened (services/answers.py): it goes to a person, with the planner's
    confidence lowered by the policy's confidencePenalty; below the confidence threshold, to review."""
    plan = decision.plan
    entry = state.tightening(plan.actionId, opp.processArea, opp.deviationPattern) if plan else None
    if plan is None or entry is None:
        return decision
    penalty, threshold = services.policy.learning.confidencePenalty, services.policy.confidenceThreshold
    lowered = replace(plan, confidence=max(0.0, plan.confidence - penalty))
    said = entry.get("reason") or "tightened by people's answers"
    if lowered.confidence < threshold:
        return planning.Decision(planning.REVIEW, lowered, f"{decision.reason}; {said}: confidence −{penalty:g}, "
                                 f"{lowered.confidence:.2f} is below {threshold:.2f}: review", decision.problems)
    outcome = planning.APPROVAL if decision.outcome == planning.EXECUTE else decision.outcome
    return planning.Decision(outcome, lowered, f"{decision.reason}; {said}: approval, confidence −{penalty:g}",
                             decision.problems)


def decide(services: Services, opp: Opportunity, cid: str, found: Found) -> Outcome:
    """Plan one opportunity: act, ask for approval, or hand it to a person."""
    if opp.status is not Status.triaged:
        return Outcome(Result.ALREADY_PLANNED)
    candidates = services.catalog.candidates(opp.processArea, opp.deviationPattern)
    decision = planning.decide(opp.attributes, candidates, services.policy.confidenceThreshold)
    if services.llm is not None and candidates:
        from . import llm_planner  # the model only proposes; the rules below still decide what happens
        decision = llm_planner.decide(services, opp, candidates, decision, cid)
    proposed, by = decision.plan, dict[str, str]()
    if proposed is not None and decision.outcome != planning.REVIEW:
        state = autonomy.current(services)
        decision = _answered(services, state, opp, decision)
        decision = planning.govern(decision, state.mode_for(proposed.actionId, opp.processArea, opp.deviationPattern))
        action = services.catalog.versions[(proposed.actionId, proposed.actionVersion)]
        capped = services.policy.overCap == "person" and action.dailyCap
        if decision.outcome == planning.EXECUTE and capped and found.full[cap_of(action).key]:
            decision = planning.Decision(planning.APPROVAL, decision.plan, f"{decision.reason}; the daily cap "
                                         f"of {action.dailyCap} is reached: a person decides", decision.problems)
        if decision.outcome == planning.EXECUTE and action.ramp:
            percent = ramp.share_at(action, found.states[ramp.state_name(action)])
            if not ramp.in_share(services.policy.experimentSalt, action.id, opp.caseKey, percent):
                decision = planning.Decision(planning.APPROVAL, decision.plan, f"{decision.reason}; ramp-up: "
                                             f"{action.id} acts alone on {percent:g}% of cases so far",
                                             decision.problems)
        # An identifying value one person supplied does not act on their word alone: another person approves.
        by = identifying.suppliers(action, proposed.parameters, opp.attributes, opp.supplied)
        if by and decision.outcome in (planning.EXECUTE, planning.APPROVAL):
            decision = planning.Decision(planning.APPROVAL, decision.plan,
                                         f"{decision.reason}; {identifying.because(by)}", decision.problems)
    off = services.settings.approvals_off
    if decision.outcome == planning.APPROVAL and off:
        # Nobody can be asked: the case waits in the backlog for a person instead of failing the stage.
        decision = planning.Decision(planning.REVIEW, decision.plan, f"{decision.reason}; {off}", decision.problems)
    plan = decision.plan.to_dict() if decision.plan else None
    outputs = {"outcome": decision.outcome, "plan": plan, "problems": [p.to_dict() for p in decision.problems]}
    if decision.outcome == planning.REVIEW:
        summary = {"summary": plan["summary"]} if plan and plan.get("summary") else {}
        asked = _review(services, opp, decision, cid)
        if asked is not None:  # a review a person can answer: run a candidate, supply data, hand over, dismiss
            approval, notice = asked
            moved = step(services, opp, [Status.needs_review], "planner", decision.reason, cid,
                         outputs={**outputs, "approvalId": approval.id}, plan=plan, approvals=[approval])
            ask = Note("review", opp.id, scrub(f"{opp.caseKey}: {decision.reason}"), {**notice, **summary})
            return Outcome(Result.NEEDS_REVIEW, [moved], notes=[ask])
        moved = step(services, opp, [Status.needs_review], "planner", decision.reason, cid, outputs=outputs, plan=plan)
        told = notices.escalation(services, "review", opp, f"{opp.caseKey}: {decision.reason}",
                                  {**outputs, "reason": decision.reason, **summary})  # opp.plan is not set yet
        return Outcome(Result.NEEDS_REVIEW, [moved], notes=[told])
    if decision.outcome == planning.APPROVAL and decision.plan is not None and plan is not None:
        # One approver at least where a person supplied an identifying value (so it needs a role: approval_role).
        context = {"approvers": max(1, int(plan.get("approvers") or 0)), "stage": 1} if by else None
        approval, notice = approvals.open_approval(services, opp, plan, decision.plan.riskTier, decision.reason, cid,
                                                   context)
        moved = step(services, opp, [Status.planned, Status.awaiting_approval], "planner", decision.reason, cid,
                     outputs={**outputs, "approvalId": approval.id}, plan=plan, approvals=[approval])
        ask = Note("approve", opp.id, f"{opp.caseKey}: approve {plan['actionId']}?", notice)
        return Outcome(Result.AWAITING_APPROVAL, [moved], notes=[ask])
    moved = step(services, opp, [Status.planned], "planner", decision.reason, cid, outputs=outputs, plan=plan)
    return Outcome(Result.PLANNED, [moved]).send(nudge("execute", opp.id, moved.opportunity.revision, cid))
