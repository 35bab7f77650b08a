"""A reviewer's decision on a case the planner would not decide alone (needs_review): run one of the candidate
actions (through the planner's own checks), supply data, hand over, or dismiss; and the review card that asks."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from ..domain import planning, review, review_cards
from ..domain.approvals import REVIEW, Approval, Choice, new_approval
from ..domain.catalog import Action
from ..domain.contracts import properties, violations
from ..domain.errors import Conflict, FieldError, InvalidInput
from ..domain.identity import Principal
from ..domain.messages import nudge
from ..domain.opportunity import Opportunity, rescore
from ..domain.pii import redact, scrub
from ..domain.status import Status
from ..ports import Services
from . import approvals, autonomy, messaging, notices, ramp
from .lifecycle import advance


def open_review(services: Services, opp: Opportunity, decision: planning.Decision,
                cid: str) -> tuple[Approval, dict[str, Any]]:
    """The review record (its context: the candidates, prefilled and masked, and why the planner stopped) and
    what the notifier sends; raises Unavailable when no request can be signed (the caller falls back)."""
    key = approvals.signing_key(services)
    candidates = services.catalog.candidates(opp.processArea, opp.deviationPattern)
    context = review.context(candidates, opp.attributes, decision.reason, decision.problems,
                             services.catalog.pii_fields)
    plan = decision.plan
    ttl = timedelta(hours=services.settings.approval_ttl_hours)
    approval, token = new_approval(opp.id, opp.revision, REVIEW, plan.actionId if plan else None,
                                   plan.actionVersion if plan else None, services.policy.reviewRole, key,
                                   services.clock.now(), ttl, cid, context)
    links = approvals._links(services, approval.id, token, review_cards.offered(context))
    case = notices.case_facts(services, opp)
    return approval, {"approvalId": approval.id, "token": token, "links": links, "correlationId": cid,
                      "requiredRole": approval.requiredRole, "expiresAt": approval.expiresAt.isoformat(),
                      "reason": context["reason"], "candidates": [c["id"] for c in context["candidates"]],
                      "cards": {"submit": review_cards.review_card(approval.id, case, context, None, opp.kpis,
                                                                   opp.signals),
                                "links": review_cards.review_card(approval.id, case, context, links, opp.kpis,
                                                                  opp.signals)}}


def answer(services: Services, opp: Opportunity, decided: Approval, decision: str, choice: Choice,
           data: Mapping[str, Any] | None, principal: Principal, inputs: dict[str, Any], cid: str) -> Approval:
    """Run a candidate action, take data, hand over or dismiss; the review record is decided in the same commit."""
    if opp.status is not Status.needs_review:
        raise Conflict(f"opportunity {opp.id} is {opp.status.value}, not waiting for a review")
    candidates = services.catalog.candidates(opp.processArea, opp.deviationPattern)
    if decision == "run":
        return _run(services, opp, decided, choice, candidates, principal, inputs, cid)
    if decision == "provide":
        return _provide(services, opp, decided, choice, data, candidates, inputs, cid)
    if decision == "handover":
        if not (choice.owner or "").strip():
            raise InvalidInput("Say who takes the case.", [FieldError("/owner", "required for handover")])
        decided.decision = "handed over"
        owner = choice.owner.strip()  # type: ignore[union-attr]
        now = services.clock.now()
        advance(services, opp, [], principal.id, f"handed over to {owner} by {principal.name}", cid,
                inputs={**inputs, "owner": owner}, approvals=[decided], owner=owner, revision=opp.revision + 1,
                updatedAt=now)
        return decided
    if decision == "dismiss":
        if not (choice.reason or "").strip():
            raise InvalidInput("Say why the case is dismissed.", [FieldError("/reason", "required for dismiss")])
        reason = scrub(choice.reason or "")
        decided.decision = "dismissed"
        advance(services, opp, [Status.dismissed], principal.id, reason, cid, inputs={**inputs, "reason": reason},
                approvals=[decided])
        return decided
    raise InvalidInput("a review takes run, provide, handover or dismiss",
                       [FieldError("/decision", "run, provide, handover or dismiss")])


def _chosen(candidates: list[Action], action_id: str | None) -> Action:
    action = next((a for a in candidates if a.id == action_id), None)
    if action is None:
        ids = ", ".join(a.id for a in candidates) or "none: no catalog action fits"
        raise InvalidInput("Choose one of the case's candidate actions; nothing was run.",
                           [FieldError("/actionId", f"one of {ids}")])
    return action


def _why_approval(services: Services, opp: Opportunity, action: Action, params: Mapping[str, Any]) -> tuple[int, str]:
    """How many approvals a reviewer's plan needs (0, 1 or 2) and why: the planner's checks, in its order."""
    from .planner import cap_of  # the planner opens reviews through this module: imported when used

    mode = autonomy.current(services).mode_for(action.id)
    if mode == "off":
        raise Conflict(f"autonomy is off for {action.id}: nothing runs, whoever chooses it",
                       [FieldError("/actionId", f"autonomy is off for {action.id}")])
    need, why = planning.threshold_need(action, params)
    reasons = [why] if need else []
    if mode == "approval":
        reasons.append("autonomy requires approval")
    if action.riskTier.value != "low":
        reasons.append(f"{action.riskTier.value} risk needs {action.approvalRole or 'an approver'}")
    if action.ramp:
        percent = ramp.share_at(action, services.coordination.state(ramp.state_name(action)))
        if not ramp.in_share(services.policy.experimentSalt, action.id, opp.caseKey, percent):
            reasons.append(f"ramp-up: {action.id} acts alone on {percent:g}% of cases so far")
    if services.policy.overCap == "person" and action.dailyCap:
        now_ms = int(services.clock.now().timestamp() * 1000)
        if services.coordination.limit_full(cap_of(action), now_ms):
            reasons.append(f"the daily cap of {action.dailyCap} is reached")
    return max(need, 1 if reasons else 0), "; ".join(reasons)


def _run(services: Services, opp: Opportunity, decided: Approval, choice: Choice, candidates: list[Action],
         principal: Principal, inputs: dict[str, Any], cid: str) -> Approval:
    """The reviewer's plan: validated against the contract, then governed like the planner's."""
    action = _chosen(candidates, choice.actionId)
    pii = services.catalog.pii_fields
    changed, errors = review.overrides(action, opp.attributes, choice.parameters, pii)
    params = {**planning.parameters_for(action, opp.attributes), **changed}
    errors += [] if errors else violations(action, params)
    if errors:
        raise InvalidInput(f"The parameters do not meet {action.id}'s data contract; nothing was run.", errors)
    plan = planning.Plan(action.id, action.version, params, 1.0, action.riskTier.value, action.approvalRole,
                         method="person", rationale=scrub(f"chosen by {principal.name} on review"))
    planned = {**plan.to_dict(), "decidedBy": principal.id}
    need, why = _why_approval(services, opp, action, params)
    decided.decision, decided.actionId, decided.actionVersion = "run", action.id, action.version
    reason = f"{principal.name} chose {action.id} v{action.version} on review" + (f"; {why}" if why else "")
    shown = redact(changed, pii)
    audit_in = {**inputs, "actionId": action.id, "changed": shown,
                "edited": sorted(k for k in changed if k in properties(action))}
    base = replace(opp, plan=planned)  # the audit entry names the chosen action's version
    if need == 0:
        moved = advance(services, base, [Status.planned], principal.id, reason, cid, inputs=audit_in,
                        approvals=[decided], plan=planned)
        messaging.send(services, [nudge("execute", moved.id, moved.revision, cid)])
        return decided
    if principal.holds(action.approvalRole) and need == 1:
        moved = advance(services, base, [Status.awaiting_approval, Status.approved], principal.id,
                        f"{reason}; approved by {principal.name}", cid, inputs=audit_in, approvals=[decided],
                        plan=planned)
        messaging.send(services, [nudge("execute", moved.id, moved.revision, cid)])
        return decided
    # Someone else approves: a second person where amounts need two, or the approver the reviewer is not.
    first = principal.holds(action.approvalRole)
    context = ({"approvers": 2, "stage": 2, "approvedBy": [principal.id], "approverNames": [principal.name]}
               if first else {"approvers": need, "stage": 1})
    asked, notice = approvals.open_approval(services, base, planned, action.riskTier.value, reason, cid, context)
    moved = advance(services, base, [Status.awaiting_approval], principal.id, reason, cid,
                    inputs=audit_in, outputs={"approvalId": asked.id}, approvals=[decided, asked], plan=planned)
    if services.notifier is not None:  # after the commit landed: the card never names a record that is not there
        services.notifier.notify("approve", moved.id, f"{moved.caseKey}: approve {action.id}?", notice)
    return decided


def _provide(services: Services, opp: Opportunity, decided: Approval, choice: Choice,
             data: Mapping[str, Any] | None, candidates: list[Action], inputs: dict[str, Any], cid: str) -> Approval:
    """Merge the supplied contract fields (of the case's candidates only) and send the case back to triage."""
    allowed = {name for a in candidates for name in properties(a)}
    raw, at = (dict(data), "/data") if data else (dict(choice.parameters or {}), "/parameters")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InvalidInput("fields outside the candidates' data contracts",
                           [FieldError(f"{at}/{k}", "not a contract field") for k in unknown])
    given = raw
    if not data:  # a submit card sends every field back as parameters.<name>: the ones changed are the data
        given = {}
        for action in candidates:
            mine = {k: v for k, v in raw.items() if k in properties(action)}
            changed, _ = review.overrides(action, opp.attributes, mine, services.catalog.pii_fields)
            given.update({k: v for k, v in changed.items() if k not in given})
    given = {k: v for k, v in given.items() if v not in (None, "")}
    if not given:
        raise InvalidInput("Nothing to add: supply at least one contract field.",
                           [FieldError(at, f"one or more of {', '.join(sorted(allowed)) or 'no fields'}")])
    decided.decision = "provided"
    enriched = rescore(replace(opp, attributes={**opp.attributes, **given}), services.catalog,
                       services.policy.scoring)
    moved = advance(services, enriched, [Status.new], decided.decidedBy or "", "data provided on review", cid,
                    inputs={**inputs, "fields": sorted(given)}, approvals=[decided])
    messaging.send(services, [nudge("triage", moved.id, moved.revision, cid)])
    return decided
