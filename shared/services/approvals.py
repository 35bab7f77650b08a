"""Asking people and acting on their answers: approval and enrichment requests, and their decisions."""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from ..domain import cards, identifying
from ..domain.approvals import (
    ANSWERS,
    APPROVE,
    ENRICH,
    ESCALATE,
    REVIEW,
    Approval,
    Choice,
    check,
    check_view,
    new_approval,
    signed_for,
    verify_id,
)
from ..domain.catalog import Action
from ..domain.contracts import missing
from ..domain.errors import Conflict, FieldError, Forbidden, Gone, InvalidInput, NotFound, Unauthorized
from ..domain.identity import Principal
from ..domain.keyvault import is_reference
from ..domain.messages import nudge
from ..domain.opportunity import Opportunity
from ..domain.pii import redact, scrub
from ..domain.review import newly_identified, read_data
from ..domain.status import Status
from ..ports import Services
from ..settings import UNRESOLVED_FIX
from . import calibrations, messaging, notices
from .lifecycle import advance
from .stage import Note

log = logging.getLogger(__name__)
_EPHEMERAL = os.urandom(32)


def signing_key(services: Services) -> bytes:
    """APPROVAL_SIGNING_KEY (Key Vault in Azure); the local host alone may sign with a per-process key. An
    unresolved Key Vault reference is never a key, here or on the local host: its text is public
    (infra/modules/functionapp.bicep), so tokens signed with it could be forged by anyone."""
    from ..domain.errors import Unavailable

    settings = services.settings
    key = settings.approval_signing_key
    if "APPROVAL_SIGNING_KEY" in settings.unresolved or is_reference(key):
        raise Unavailable("APPROVAL_SIGNING_KEY holds an unresolved Key Vault reference, so no approval can be "
                          f"signed or checked: {UNRESOLVED_FIX}.", retry_after=300, setting="APPROVAL_SIGNING_KEY")
    if key:
        return key.encode()
    if not settings.local:
        # 503, not 500: approvals are switched off by configuration, and say so (health names it too).
        raise Unavailable(f"{services.settings.approvals_off}.", retry_after=3600)
    return _EPHEMERAL


def _case(opp: Opportunity) -> dict[str, Any]:
    case = {"Case": opp.caseKey, "Process": f"{opp.processArea} / {opp.deviationPattern}",
            "Priority": f"{opp.scores.priority:,.0f}", "Opportunity": opp.id}
    if opp.reported:  # the miner's own names, where an alias (catalog/aliases.json) changed them
        case["Reported as"] = (f"{opp.reported.get('processArea', opp.processArea)} / "
                               f"{opp.reported.get('deviationPattern', opp.deviationPattern)}")
    return case


def card_links(services: Services, approval_id: str, token: str, decisions: tuple[str, ...]) -> dict[str, str]:
    """Signed links to the confirmation page: anonymous at the Functions level, the token is the credential
    (a function key in a card would open every function-level route to whoever sees the card)."""
    base = services.settings.public_base_url or "http://localhost:7071"
    signed = quote(token, safe="")
    links = {d: f"{base}/api/approvals/{approval_id}/confirm?decision={d}&token={signed}" for d in decisions}
    for answer in ("yes", "no"):  # "Was this helpful?" on a card that takes no inputs (services/feedback.py)
        links[f"helpful:{answer}"] = f"{base}/api/approvals/{approval_id}/feedback?helpful={answer}&token={signed}"
    return links


def open_approval(services: Services, opp: Opportunity, plan: Mapping[str, Any], risk: str, rationale: str,
                  cid: str, context: Mapping[str, Any] | None = None) -> tuple[Approval, dict[str, Any]]:
    """The approval record for a proposed action, and what the notifier sends (cards, links, token). `context`:
    {"approvers": 1 or 2, "stage": 1 or 2, "approvedBy": [ids that approved before]}; without one, the plan's
    `approvers` (amount thresholds) make it."""
    if context is None:
        context = {"approvers": plan["approvers"], "stage": 1} if plan.get("approvers") else {}
    ttl = timedelta(hours=services.settings.approval_ttl_hours)
    approval, token = new_approval(opp.id, opp.revision, APPROVE, plan["actionId"], plan["actionVersion"],
                                   approval_role(services, plan, context), signing_key(services),
                                   services.clock.now(), ttl, cid, dict(context))
    links = card_links(services, approval.id, token, ("approve", "reject"))
    # The approver decides on the action and the amounts, not on anyone's contact details.
    shown, rationale = redact(dict(plan), services.catalog.pii_fields), scrub(rationale)
    case = _case(opp)
    if int(context.get("stage") or 1) > 1:  # the second person sees that, and who, approved first
        first = ", ".join(map(str, context.get("approverNames") or context.get("approvedBy") or ()))
        case["Approval"] = f"second of {context.get('approvers', 2)}: approved first by {first or 'another person'}"
    action = services.catalog.versions.get((plan["actionId"], plan["actionVersion"]))
    notes = cards.action_notes(action.effortHours, action.prerequisites, action.failureModes) if action else {}
    return approval, {"approvalId": approval.id, "token": token, "links": links, "plan": shown, "correlationId": cid,
                      "requiredRole": approval.requiredRole, "expiresAt": approval.expiresAt.isoformat(),
                      "stage": context.get("stage", 1), "approvers": context.get("approvers", 1),
                      "cards": {"submit": cards.approval_card(approval.id, case, shown, risk, rationale,
                                                              kpis=opp.kpis, signals=opp.signals, notes=notes),
                                "links": cards.approval_card(approval.id, case, shown, risk, rationale,
                                                             links, kpis=opp.kpis, signals=opp.signals, notes=notes)}}


def approval_role(services: Services, plan: Mapping[str, Any], context: Mapping[str, Any]) -> str | None:
    """The role an approver must hold: the action's; for an amount approval of an action that names none, the
    policy's reviewRole (no role would let any signed-in person approve money, and two "different people with
    the role" needs a role). Other approvals of such actions (autonomy, ramp, cap) stay open to anyone signed in."""
    role = plan.get("approvalRole")
    if role is None and int(context.get("approvers") or 0) >= 1:
        return services.policy.reviewRole
    return role


def open_enrichment(services: Services, opp: Opportunity, action: Action, fields: list[str],
                    cid: str) -> tuple[Approval, dict[str, Any]]:
    """The request for exactly the missing contract fields of the best candidate action."""
    ttl = timedelta(hours=services.settings.approval_ttl_hours)
    approval, token = new_approval(opp.id, opp.revision, ENRICH, action.id, action.version, None,
                                   signing_key(services), services.clock.now(), ttl, cid)
    links = card_links(services, approval.id, token, ("provide",))
    return approval, {"approvalId": approval.id, "token": token, "links": links, "actionId": action.id,
                      "correlationId": cid,
                      "missing": fields, "expiresAt": approval.expiresAt.isoformat(),
                      "cards": {"submit": cards.enrich_card(approval.id, _case(opp), action.id, fields,
                                                            kpis=opp.kpis, signals=opp.signals),
                                "links": cards.enrich_card(approval.id, _case(opp), action.id, fields, links,
                                                           kpis=opp.kpis, signals=opp.signals)}}


def find(services: Services, approval_id: str) -> Approval:
    """The approval behind an id this app made; 404 for a wrong HMAC suffix (no store read) or no record."""
    if not verify_id(signing_key(services), approval_id):
        raise NotFound(f"no approval {approval_id}")
    approval = services.store.approval(approval_id)
    if approval is None:
        raise NotFound(f"no approval {approval_id}")
    return approval


def view(services: Services, approval_id: str, token: str | None, principal: Principal | None) -> Approval:
    """An approval shown to the holder of its valid, unexpired token (used or not), or to a verified principal
    holding its requiredRole: 401 with neither, 403 for the wrong role, 404 for an unknown id, 410 expired."""
    key = signing_key(services)
    if not verify_id(key, approval_id):
        raise NotFound(f"no approval {approval_id}")
    if not token and principal is None:  # refused before any read: no answer tells which ids exist
        raise Unauthorized("send the approval's token (?token=) or sign in with its approval role")
    if token and principal is None:
        signed_for(key, token, approval_id)  # a forged token is refused before any read too
    approval = find(services, approval_id)
    if token:
        try:
            check_view(key, token, approval, services.clock.now())
            return approval
        except (Unauthorized, Gone):
            if principal is None:
                raise
    if principal is None:  # unreachable: a token alone returned or raised above
        raise Unauthorized("send the approval's token (?token=) or sign in with its approval role")
    if not principal.holds(approval.requiredRole):
        raise Forbidden(f"reading approval {approval.id} needs the role {approval.requiredRole}")
    return approval


def decide(services: Services, approval_id: str, token: str, decision: str, principal: Principal | None,
           data: Mapping[str, Any] | None, comment: str | None, cid: str,
           helpful: bool | None = None, choice: Choice | None = None) -> Approval:
    """Check the token and the person, record the decision with the opportunity's move, resume the loop.
    One path for every card kind: approve, enrich, review (services/review.py), escalate (services/escalations.py)."""
    approval = find(services, approval_id)
    check(signing_key(services), token, approval, services.clock.now())  # 401 forged, 409 used, 410 expired
    if principal is None:
        raise Unauthorized("sign in (Easy Auth) or answer through the approval flow")
    if not principal.holds(approval.requiredRole):
        raise Forbidden(f"answering {approval.kind} {approval.id} needs the role {approval.requiredRole}")
    allowed = ANSWERS.get(approval.kind, ())
    if decision not in allowed:
        raise InvalidInput(f"a {approval.kind} card takes {', '.join(allowed)}",
                           [FieldError("/decision", " or ".join(allowed))])
    opp = services.store.get(approval.opportunityId)
    if opp is None:
        raise NotFound(f"opportunity {approval.opportunityId} is gone")
    # A comment is free text a person typed ("call ana@contoso.com"): kept, and shown, scrubbed.
    comment = scrub(comment) if comment else comment
    # One "was this helpful?" answer per card: one given earlier through the card's feedback link stays.
    decided = replace(approval, decidedBy=principal.id, decidedAt=services.clock.now(), comment=comment,
                      helpful=helpful if approval.helpful is None else approval.helpful)
    # "Was this helpful?" rides along in the audit entry, whose versions name the action version: telemetry.
    inputs = {"approvalId": approval.id, "via": principal.via, "comment": comment, "helpful": helpful}
    choice = choice or Choice()
    if approval.kind == APPROVE:
        result = _approve(services, opp, approval, decided, decision, principal, inputs, cid)
    elif approval.kind == ENRICH:
        result = _enrich(services, opp, approval, decided, decision, data, inputs, cid)
    elif approval.kind == REVIEW:
        from . import review

        result = review.answer(services, opp, decided, decision, choice, data, principal, inputs, cid)
    elif approval.kind == ESCALATE:
        from . import escalations

        result = escalations.answer(services, opp, decided, decision, choice, principal, inputs, cid)
    else:
        raise Conflict(f"approval {approval.id} ({approval.kind}) takes no decision")
    if helpful is not None and approval.helpful is None:
        from . import feedback  # the answer is on the record (committed with the decision): now the telemetry

        feedback.record(services, result, opp, helpful, principal.id)
    return result


def _same_person(principal: Principal, context: Mapping[str, Any]) -> bool:
    """Whether `principal` approved an earlier stage, by id: the Entra object id, from Easy Auth and, by its
    contract, from the approval flow. Names are for people to read: two people may share one."""
    return principal.id.casefold() in {str(x).casefold() for x in context.get("approvedBy") or ()}


def _approve(services: Services, opp: Opportunity, approval: Approval, decided: Approval, decision: str,
             principal: Principal, inputs: dict[str, Any], cid: str) -> Approval:
    """Approve or reject; where amounts need two people, the first approval asks a second, different person."""
    if opp.status is not Status.awaiting_approval:
        raise Conflict(f"opportunity {opp.id} is {opp.status.value}, not awaiting approval")
    context = approval.context or {}
    if decision == "approve" and _same_person(principal, context):
        raise Forbidden("one person cannot approve twice: a second, different person with the role must approve")
    mine = [f for f, who in _supplied_by(services, opp).items() if who.casefold() == principal.id.casefold()]
    if decision == "approve" and mine:
        raise Forbidden(f"supplied {', '.join(mine)}; another person approves")
    stage, needed = int(context.get("stage") or 1), int(context.get("approvers") or 1)
    if decision == "approve" and stage < needed:
        return _first_of_two(services, opp, decided, principal, inputs, cid)
    decided.decision = "approved" if decision == "approve" else "rejected"
    target = Status.approved if decision == "approve" else Status.rejected
    moved = advance(services, opp, [target], principal.id, f"{decided.decision} by {principal.name}", cid,
                    inputs=inputs, approvals=[decided])
    if target is Status.approved:
        messaging.send(services, [nudge("execute", moved.id, moved.revision, cid)])
    return decided


def _supplied_by(services: Services, opp: Opportunity) -> dict[str, str]:
    """The identifying fields of the case's plan that a person supplied: field -> their principal id."""
    plan = opp.plan or {}
    params = plan.get("parameters") or {}
    action = services.catalog.versions.get((str(plan.get("actionId")), int(plan.get("actionVersion") or 0)))
    if action is None:  # a version the catalog no longer has: any supplied attribute the plan uses counts
        return {k: who for k, who in opp.supplied.items() if k in params}
    return identifying.suppliers(action, params, opp.attributes, opp.supplied)


def _first_of_two(services: Services, opp: Opportunity, decided: Approval, principal: Principal,
                  inputs: dict[str, Any], cid: str) -> Approval:
    """Record the first approval and open the second stage in one commit; the case keeps awaiting approval.
    The revision moves on so the second request has an id of its own (ids are per opportunity, kind, revision)."""
    context = decided.context or {}
    decided.decision = "approved"
    # The second person is asked for the role the first held, whatever the catalog says by now.
    plan = {**(opp.plan or {"actionId": decided.actionId, "actionVersion": decided.actionVersion}),
            "approvalRole": decided.requiredRole}
    bumped = replace(opp, revision=opp.revision + 1)
    second_context = {"approvers": int(context.get("approvers") or 2), "stage": int(context.get("stage") or 1) + 1,
                      "approvedBy": [*(context.get("approvedBy") or ()), principal.id],
                      "approverNames": [*(context.get("approverNames") or ()), principal.name]}
    reason = f"first of two approvals, by {principal.name}: a second person with the role must approve"
    asked, notice = open_approval(services, bumped, plan, str(plan.get("riskTier") or "amount"),
                                  f"{reason} ({plan.get('actionId')})", cid, second_context)
    moved = advance(services, bumped, [], principal.id, reason, cid, inputs=inputs,
                    outputs={"approvalId": asked.id, "stage": second_context["stage"]}, approvals=[decided, asked])
    notices.tell(services, Note("approve", moved.id, f"{moved.caseKey}: second approval of {plan.get('actionId')}?",
                                notice))
    return decided


def _enrich(services: Services, opp: Opportunity, approval: Approval, decided: Approval, decision: str,
            data: Mapping[str, Any] | None, inputs: dict[str, Any], cid: str) -> Approval:
    """Merge the supplied fields (only the action's contract fields) and send the case back to triage."""
    if decision != "provide":
        raise InvalidInput("an enrichment takes decision=provide", [FieldError("/decision", "provide")])
    action = (services.catalog.versions.get((approval.actionId, approval.actionVersion))
              if approval.actionId and approval.actionVersion else None)
    # Form text read as the contract's types and checked, as a review's provide does (one path).
    given, errors = read_data([action] if action else [], opp.attributes, data, opp.caseKey,
                              locked_as="identifies the record; it cannot be changed",
                              pii_fields=services.catalog.pii_fields)
    if errors:
        raise InvalidInput("The data does not meet the action's data contract; nothing was recorded.", errors)
    if opp.status is not Status.needs_data:
        raise Conflict(f"opportunity {opp.id} is {opp.status.value}, not waiting for data")
    attributes = {**opp.attributes, **given}
    still = missing(action, attributes) if action else []
    if still:
        raise InvalidInput("required fields are still missing", [FieldError(f"/data/{k}", "required") for k in still])
    decided.decision = "provided"
    # An identifying value the finding lacked is this person's word: recorded, so another person approves it.
    new = newly_identified([action] if action else [], opp.attributes, given, opp.caseKey)
    supplied = {**opp.supplied, **dict.fromkeys(new, decided.decidedBy or "")}
    enriched = calibrations.rescored(services, replace(opp, attributes=attributes, supplied=supplied))
    moved = advance(services, enriched, [Status.new], decided.decidedBy or "", "data provided", cid,
                    inputs={**inputs, "fields": sorted(given), "supplied": new}, approvals=[decided])
    messaging.send(services, [nudge("triage", moved.id, moved.revision, cid)])
    return decided
