"""Answering an escalation: retry, undo, accept as is, hand over, close."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from ..domain import escalation as rules
from ..domain import planning
from ..domain.approvals import ESCALATE, Approval, Choice
from ..domain.errors import Conflict, FieldError, Forbidden, InvalidInput, Unavailable
from ..domain.execution import Execution
from ..domain.identity import Principal
from ..domain.messages import nudge
from ..domain.opportunity import Opportunity
from ..domain.pii import scrub
from ..domain.status import Status
from ..ports import ConcurrencyConflict, Services
from . import autonomy, messaging, notices, versioned
from .lifecycle import advance, audit

_OWNER, _REASON = 200, 500  # characters kept of an owner's name and of a reason
# What domain/escalation.py `context` computes afresh for each record; the rest of a record's context (the request
# an unanswered-request escalation is about) goes on to the record a hand over opens.
_COMPUTED = frozenset({"options", "recommended", "why", "status", "attempt", "handedOver"})
# The undos people asked for and the sweep has not seen settle: {"items": {opportunityId: requestedAt}}. The sweep
# re-sends a lost undo nudge from it, so its cost follows the undos pending, not the verified or failed cases.
UNDOS = "undo.pending"
_ATTEMPTS = 8


def _required(value: str | None, field: str, why: str, limit: int) -> str:
    text = " ".join((value or "").split())
    if not text:
        raise InvalidInput(f"{field} is required to {why}", [FieldError(f"/{field}", "required")])
    if len(text) > limit:
        raise InvalidInput(f"{field} is too long", [FieldError(f"/{field}", f"at most {limit} characters")])
    return text


def answer(services: Services, opp: Opportunity, decided: Approval, decision: str, choice: Choice,
           principal: Principal, inputs: dict[str, Any], cid: str) -> Approval:
    """Act on a person's answer to an escalation, recorded with the case's move (a second answer is 409): retry
    the flow, undo the action, accept the case as it is, hand it to an owner, or close it with a reason."""
    owner = _required(choice.owner, "owner", "hand the case over", _OWNER) if decision == rules.HANDOVER else None
    reason = (scrub(_required(choice.reason, "reason", "close the case", _REASON)) if decision == rules.CLOSE
              else scrub(" ".join((choice.reason or "").split())[:_REASON]))
    executions = services.store.executions(opp.id)
    plan = dict(opp.plan or {})
    mode = autonomy.current(services).mode_for(plan["actionId"]) if plan.get("actionId") else "autonomous"
    offered = rules.options(opp, executions, services.catalog, mode)
    pending = rules.undo_pending(opp)
    if pending is not None and decision != rules.HANDOVER:  # one undo, and nothing settles the case before it ran
        raise Conflict(f"opportunity {opp.id}: the undo {pending.get('by')} asked for is running; only a hand over "
                       "fits until it answered", [FieldError("/decision", "handover")])
    if decision == rules.RETRY and mode == "off":
        raise Conflict(f"autonomy is off for {plan['actionId']}: nothing runs, whoever asks",
                       [FieldError("/decision", f"autonomy is off for {plan['actionId']}")])
    if decision not in offered:  # the card was answered after the case moved on: what it offered no longer fits
        raise Conflict(f"opportunity {opp.id} is {opp.status.value}: {decision} does not fit it now "
                       f"(it takes {', '.join(offered)})", [FieldError("/decision", " or ".join(offered))])
    inputs = {**inputs, "decision": decision, **({"reason": reason} if reason else {})}
    now, who = services.clock.now(), principal.id
    if decision == rules.RETRY:
        # A new attempt, and only because a person asked: its own idempotency key (execution.plan_key), so the
        # flow is called once more; the executor takes it from here as from any case in executing.
        attempt = int(plan.get("attempt") or 0) + 1
        approval = _retry_approval(services, plan, mode, principal)
        decided.decision = "retried"
        said = f"retry requested by {who} (attempt {attempt})"
        said += f"; approved by {who} ({approval})" if approval else ""
        moved = advance(services, opp, [Status.executing], who, said, cid, inputs=inputs, approvals=[decided],
                        plan={**plan, "attempt": attempt, "retriedBy": who, "retriedAt": now.isoformat(),
                              **({"retryApprovedBy": who} if approval else {})})
        messaging.send(services, [nudge("execute", moved.id, moved.revision, cid)])
    elif decision == rules.UNDO:
        # The watchdog runs the compensation (with its retries) under a key of the execution it undoes (one undo a
        # case: options() offers no second, and the sweep re-sends this nudge if it is lost); no status moves
        # until it answered, so the revision moves to name the request's nudge and any escalation after it.
        decided.decision = "undo requested"
        # Intent first: a crash before the commit leaves an entry the sweep drops (the case has no undo pending),
        # a crash after it leaves none without an entry to re-send its nudge from.
        note_undos(services, {opp.id: now.isoformat()})
        changed = replace(opp, plan={**plan, "undo": {"by": who, "at": now.isoformat()}},
                          revision=opp.revision + 1, updatedAt=now)
        entry = audit(services, opp, who, "undo.requested", f"undo requested by {who}", cid, inputs=inputs)
        moved = services.store.commit(changed, (), [entry], [decided])
        messaging.send(services, [nudge("verify", moved.id, moved.revision, cid)])
    elif decision == rules.HANDOVER:
        _hand_over(services, opp, decided, owner or "", principal, executions, inputs, cid)
    else:
        target = Status.closed if decision == rules.ACCEPT else rules.close_target(opp.status)
        if target is None:  # offered() leaves close out then; kept for a status machine that changes
            raise Conflict(f"opportunity {opp.id} is {opp.status.value}: it can be neither closed nor dismissed")
        said = f"accepted as is by {principal.name}" if decision == rules.ACCEPT else f"closed by {principal.name}"
        decided.decision = "accepted" if decision == rules.ACCEPT else target.value
        advance(services, opp, [target], who, f"{said}: {reason}" if reason else said, cid, inputs=inputs,
                approvals=[decided], **ended(opp))
    return decided


def _retry_approval(services: Services, plan: dict[str, Any], mode: str, principal: Principal) -> str:
    """Why a retry needs an approver ("" when it does not): the retry of an action an approver had to allow
    (medium or high risk, autonomy `approval` or frozen, an amount above its threshold) is the retrying person's
    approval, so they must hold its approvalRole (403 naming it otherwise)."""
    action = services.catalog.versions.get((plan["actionId"], plan["actionVersion"]))
    if action is None:  # options() leaves retry out then
        return ""
    reasons = [f"{action.riskTier.value} risk"] if action.riskTier.value != "low" else []
    if mode == "approval":
        reasons.append("autonomy requires approval")
    need, why = planning.threshold_need(action, plan.get("parameters") or {})
    if need:
        reasons.append(why)
    if reasons and not principal.holds(action.approvalRole):
        raise Forbidden(f"retrying {action.id} is approving it ({'; '.join(reasons)}): it needs the role "
                        f"{action.approvalRole}")
    return "; ".join(reasons)


def _hand_over(services: Services, opp: Opportunity, decided: Approval, owner: str, principal: Principal,
               executions: list[Execution], inputs: dict[str, Any], cid: str) -> None:
    """Set the owner and open a fresh escalation (the options recomputed) in the same commit, so the new owner has
    a card to answer; the card goes out once the commit landed."""
    now, who = services.clock.now(), principal.id
    decided.decision = "handed over"
    changed = replace(opp, owner=owner, revision=opp.revision + 1, updatedAt=now)
    keep = {k: v for k, v in (decided.context or {}).items() if k not in _COMPUTED}
    note, asked = notices.answerable(services, "escalate", changed,
                                     f"{opp.caseKey}: handed to {owner} by {principal.name}",
                                     {"handedTo": owner, "handedBy": principal.name, "previous": decided.id},
                                     executions, cid, {**keep, "handedOver": decided.id})
    entry = audit(services, opp, who, "handed.over", f"handed over to {owner} by {who}", cid,
                  inputs={**inputs, "owner": owner}, outputs={"escalationId": asked.id} if asked else None)
    services.store.commit(changed, (), [entry], [decided, *([asked] if asked else [])])
    notices.tell(services, note)


def ended(opp: Opportunity) -> dict[str, Any]:
    """The changes that go with closing a case: the status it ended in before, kept on its plan, so impact and
    recurrence still count a verified case that was closed as verified (domain/impact.py, recurrence.py)."""
    return {"plan": {**opp.plan, "closedFrom": opp.status.value}} if opp.plan else {}


def pending_undos(services: Services) -> dict[str, datetime]:
    """The undos noted as asked for and not yet seen settled by the sweep: opportunity id -> when asked."""
    doc = services.coordination.state(UNDOS) or {}
    return {oid: datetime.fromisoformat(at) for oid, at in (doc.get("items") or {}).items()}


def note_undos(services: Services, asked: dict[str, str]) -> None:
    """Add undos (opportunity id -> when asked; one noted already keeps its time)."""
    _edit(services, lambda items: items.update({k: v for k, v in asked.items() if k not in items}))


def forget_undos(services: Services, ids: Iterable[str]) -> None:
    """Drop undos the sweep found settled (or never committed)."""
    gone = set(ids)
    _edit(services, lambda items: [items.pop(k) for k in gone if k in items])


def _edit(services: Services, change: Callable[[dict[str, str]], object]) -> None:
    """A read-modify-write of the pending undos under their ETag; answers and the sweep write it at once."""
    def edited(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, None]:
        items = dict((doc or {}).get("items") or {})
        before = dict(items)
        change(items)
        return (None if items == before else {"items": items}), None

    versioned.update(services, UNDOS, edited, lambda: Unavailable(
        "Too many requests changed the pending undos at once; nothing was changed, try again."), _ATTEMPTS)


def escalate_unanswered(services: Services, correlation_id: str) -> int:
    """Escalate, once each, requests past their SLA (or expired) with nobody's answer; returns how many."""
    now = services.clock.now()
    sla = timedelta(hours=services.policy.approvalSlaHours)
    # An escalation nobody answered is not escalated again: it is the last word, and one about it would only be
    # another card to the same people (its record stays open, listed on the opportunity).
    due = [a for a in services.store.pending_approvals()
           if a.kind != ESCALATE and a.escalatedAt is None and (now >= a.createdAt + sla or now >= a.expiresAt)]
    done = 0
    for approval in due:
        opp = services.store.get(approval.opportunityId)
        if opp is None:
            continue
        state = "expired" if now >= approval.expiresAt else f"unanswered for {services.policy.approvalSlaHours:g} h"
        # A second approval (amounts above secondApproverAbove) counts from when its card went out.
        what = "second approval" if int(approval.context.get("stage") or 1) > 1 else f"{approval.kind} request"
        headline = f"{opp.caseKey}: {what} for {approval.actionId} {state}"
        # Answerable: hand the case to someone who can decide, or close (dismiss) it; committed with the mark.
        note, asked = notices.answerable(services, "escalate", opp, headline,
                                         {"request": approval.id, "requiredRole": approval.requiredRole or "any",
                                          "asked": approval.createdAt.isoformat()},
                                         services.store.executions(opp.id), correlation_id,
                                         {"unanswered": approval.id})
        entry = audit(services, opp, "sweep", "approval.escalated", headline, correlation_id,
                      outputs={"approvalId": approval.id, "requiredRole": approval.requiredRole,
                               **({"escalationId": asked.id} if asked else {})})
        try:
            services.store.commit(opp, (), [entry], [replace(approval, escalatedAt=now), *([asked] if asked else [])])
        except ConcurrencyConflict:
            continue  # someone answered or moved it meanwhile; the next sweep looks again
        notices.tell(services, note)
        done += 1
    return done
