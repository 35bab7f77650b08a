"""A reviewer's decision on a case the planner would not decide alone (needs_review): run one of the candidate
actions (through the planner's own checks), supply data, hand over, or dismiss; and the review card that asks."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from ..domain import identifying, planning, review, review_cards
from ..domain.approvals import REVIEW, Approval, Choice, new_approval
from ..domain.catalog import Action
from ..domain.contracts import properties, violations
from ..domain.errors import Conflict, FieldError, InvalidInput
from ..domain.identity import Principal
from ..domain.messages import nudge
from ..domain.opportunity import Opportunity
from ..domain.pii import redact, scrub
from ..domain.status import Status
from ..ports import Services
from . import approvals, autonomy, calibrations, messaging, notices, ramp
from .lifecycle import advance
from .stage import Note


def open_review(services: Services, opp: Opportunity, decision: planning.Decision,
                cid: str) -> tuple[Approval, dict[str, Any]]:
    """The review record (its context: the candidates, prefilled and masked, and why the planner stopped) and
    what the notifier sends; raises Unavailable when no request can be signed (the caller falls back)."""
    plan = decision.plan
    return _ask(services, opp, decision.reason, decision.problems, plan.actionId if plan else None,
                plan.actionVersion if plan else None, cid)


def _ask(services: Services, opp: Opportunity, reason: str, problems: list[FieldError], action_id: str | None,
         action_version: int | None, cid: str,
         more: Mapping[str, Any] | None = None) -> tuple[Approval, dict[str, Any]]:
    key = approvals.signing_key(services)
    candidates = services.catalog.candidates(opp.processArea, opp.deviationPattern)
    context = {**review.context(candidates, opp.attributes, reason, problems, services.catalog.pii_fields,
                                opp.caseKey), **(more or {})}
    ttl = timedelta(hours=services.settings.approval_ttl_hours)
    approval, token = new_approval(opp.id, opp.revision, REVIEW, action_id, action_version,
                                   services.policy.reviewRole, key, services.clock.now(), ttl, cid, context)
    links = approvals.card_links(services, approval.id, token, review_cards.offered(context))
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
        return _handover(services, opp, decided, choice, principal, inputs, cid)
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


def _handover(services: Services, opp: Opportunity, decided: Approval, choice: Choice, principal: Principal,
              inputs: dict[str, Any], cid: str) -> Approval:
    """The new owner, and a fresh review record for them (the candidates as the catalog has them now) in the
    same commit; its card goes out after the commit, saying who handed the case to whom."""
    owner = (choice.owner or "").strip()
    if not owner:
        raise InvalidInput("Say who takes the case.", [FieldError("/owner", "required for handover")])
    decided.decision = "handed over"
    before = decided.context or {}
    problems = [FieldError(str(p.get("pointer") or "/"), str(p.get("detail") or ""))
                for p in before.get("problems") or [] if isinstance(p, Mapping)]
    bumped = replace(opp, owner=owner, revision=opp.revision + 1, updatedAt=services.clock.now())
    asked, notice = _ask(services, bumped, str(before.get("reason") or "handed over on review"), problems,
                         decided.actionId, decided.actionVersion, cid,
                         {"handedOver": {"to": owner[:200], "by": principal.name[:200]}})
    headline = f"handed to {owner} by {principal.name}"
    moved = advance(services, opp, [], principal.id, headline, cid, inputs={**inputs, "owner": owner},
                    outputs={"approvalId": asked.id}, approvals=[decided, asked], owner=owner,
                    revision=bumped.revision, updatedAt=bumped.updatedAt)
    notices.tell(services, Note("review", moved.id, f"{moved.caseKey}: {headline}", notice))
    return decided


def _chosen(candidates: list[Action], action_id: str | None) -> Action:
    action = next((a for a in candidates if a.id == action_id), None)
    if action is None:
        ids = ", ".join(a.id for a in candidates) or "none: no catalog action fits"
        raise InvalidInput("Choose one of the case's candidate actions; nothing was run.",
                           [FieldError("/actionId", f"one of {ids}")])
    return action


def _why_approval(services: Services, opp: Opportunity, action: Action, params: Mapping[str, Any],
                  by: Mapping[str, str]) -> tuple[int, str]:
    """How many approvals a reviewer's plan needs (0, 1 or 2) and why: the planner's checks, in its order, and
    `by` (identifying fields a person supplied: someone else approves)."""
    from .planner import cap_of  # the planner opens reviews through this module: imported when used

    mode = autonomy.current(services).mode_for(action.id, opp.processArea, opp.deviationPattern)
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
    if by:
        reasons.append(identifying.because(by))
    return max(need, 1 if reasons else 0), "; ".join(reasons)


def _run(services: Services, opp: Opportunity, decided: Approval, choice: Choice, candidates: list[Action],
         principal: Principal, inputs: dict[str, Any], cid: str) -> Approval:
    """The reviewer's plan: validated against the contract, then governed like the planner's."""
    action = _chosen(candidates, choice.actionId)
    pii = services.catalog.pii_fields
    # The card and the page carry every candidate's fields: only the chosen action's count.
    mine, keys, errors = review.for_action(action, candidates, opp.attributes, choice.parameters, pii)
    changed, more = review.overrides(action, opp.attributes, mine, pii, case_key=opp.caseKey, names=keys)
    errors += more
    params = {**planning.parameters_for(action, opp.attributes), **changed}
    errors += [] if errors else violations(action, params)
    if errors:
        raise InvalidInput(f"The parameters do not meet {action.id}'s data contract; nothing was run.", errors)
    plan = planning.Plan(action.id, action.version, params, 1.0, action.riskTier.value, action.approvalRole,
                         method="person", rationale=scrub(f"chosen by {principal.name} on review"))
    planned = {**plan.to_dict(), "decidedBy": principal.id}
    by = identifying.suppliers(action, params, opp.attributes, opp.supplied)
    need, why = _why_approval(services, opp, action, params, by)
    # A reviewer who supplied an identifying value cannot also be the one approval its plan needs.
    alone = principal.id.casefold() not in {who.casefold() for who in by.values()}
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
    if principal.holds(action.approvalRole) and need == 1 and alone:
        moved = advance(services, base, [Status.awaiting_approval, Status.approved], principal.id,
                        f"{reason}; approved by {principal.name}", cid, inputs=audit_in, approvals=[decided],
                        plan=planned)
        messaging.send(services, [nudge("execute", moved.id, moved.revision, cid)])
        return decided
    # Someone else approves: a second person where amounts need two, or the approver the reviewer is not.
    first = principal.holds(action.approvalRole) and alone
    context = ({"approvers": 2, "stage": 2, "approvedBy": [principal.id], "approverNames": [principal.name]}
               if first else {"approvers": need, "stage": 1})
    asked, notice = approvals.open_approval(services, base, planned, action.riskTier.value, reason, cid, context)
    moved = advance(services, base, [Status.awaiting_approval], principal.id, reason, cid,
                    inputs=audit_in, outputs={"approvalId": asked.id}, approvals=[decided, asked], plan=planned)
    notices.tell(services, Note("approve", moved.id, f"{moved.caseKey}: approve {action.id}?", notice))
    return decided


def _provide(services: Services, opp: Opportunity, decided: Approval, choice: Choice,
             data: Mapping[str, Any] | None, candidates: list[Action], inputs: dict[str, Any], cid: str) -> Approval:
    """Merge the supplied contract fields (of the case's candidates only, read as their types and checked against
    their contracts) and send the case back to triage."""
    pii, errors = services.catalog.pii_fields, list[FieldError]()
    if data:
        raw, at = dict(data), "/data"
    else:  # a submit card sends every field back as parameters.<actionId>.<name>: the ones changed are the data
        raw, errors = review.card_changes(candidates, opp.attributes, choice.parameters, pii)
        at = "/parameters"
    given, more = review.read_data(candidates, opp.attributes, raw, opp.caseKey, at, pii_fields=pii)
    if errors or more:
        raise InvalidInput("The data does not meet the candidates' data contracts; nothing was recorded.",
                           errors + more)
    if not given:
        allowed = sorted({name for a in candidates for name in properties(a)})
        raise InvalidInput("Nothing to add: supply at least one contract field.",
                           [FieldError(at, f"one or more of {', '.join(allowed) or 'no fields'}")])
    decided.decision = "provided"
    # An identifying value the finding lacked is this person's word: recorded, so another person approves it.
    new = review.newly_identified(candidates, opp.attributes, given, opp.caseKey)
    supplied = {**opp.supplied, **dict.fromkeys(new, decided.decidedBy or "")}
    enriched = calibrations.rescored(services, replace(opp, attributes={**opp.attributes, **given},
                                                        supplied=supplied))
    moved = advance(services, enriched, [Status.new], decided.decidedBy or "", "data provided on review", cid,
                    inputs={**inputs, "fields": sorted(given), "supplied": new}, approvals=[decided])
    messaging.send(services, [nudge("triage", moved.id, moved.revision, cid)])
    return decided
