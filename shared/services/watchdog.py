"""Watchdog: check the outcome against the action's verify policy; on a breach, undo it and call a person."""
from __future__ import annotations

from typing import Any

from .. import telemetry
from ..domain import escalation as rules
from ..domain import verify
from ..domain.catalog import Action
from ..domain.contracts import properties
from ..domain.execution import SUCCEEDED, Execution, idempotency_key, new_execution, plan_key
from ..domain.messages import StageMessage
from ..domain.opportunity import Opportunity
from ..domain.status import Status
from ..ports import Commit, Incident, Services
from . import flowrun, notices
from .lifecycle import audit, step
from .stage import Call, Found, Needs, Outcome, Read, Result


def undo_requested(opp: Opportunity) -> dict[str, Any] | None:
    """A person's undo not run yet (services/escalations.py sets it on a verified or failed case)."""
    return rules.undo_pending(opp)


def needs(services: Services, opp: Opportunity, found: Found) -> Needs:
    """In turn: the execution that succeeded, the record to check, and on a breach the opportunity's executions
    (a compensation begun already). A person's undo needs the opportunity's executions only."""
    if undo_requested(opp) is not None:
        return Needs(histories=[opp.id])
    if opp.status is not Status.executed or not opp.plan:
        return Needs()
    plan = opp.plan
    key = (opp.id, plan_key(opp.id, plan))
    if key not in found.executions:
        return Needs(executions=[key])
    x = found.executions[key]
    if x is None or x.status != SUCCEEDED:
        return Needs()
    action = services.catalog.versions[(x.actionId, x.actionVersion)]
    read = observation(action, x)
    if read is not None and read.key not in found.records:
        return Needs(reads=[read])
    # Only a breach needs the opportunity's executions (a compensation begun already): one query per case, which
    # on every verify cost the 10,000-case bench 253 -> 89 opportunities/s.
    if action.compensation and not verify.check(action.verify, observed(action, x, found))[0]:
        return Needs(histories=[opp.id])
    return Needs()


def begun(x: Execution, found: Found) -> Execution | None:
    """The compensation of `x` recorded already, if any: found by what it compensates, not by an id computed from
    the undo action in use now (a newer version of it, activated since, would make a second one)."""
    undos = sorted((c for c in found.histories.get(x.opportunityId, ()) if c.kind == "compensation"
                    and c.compensates == x.id), key=lambda c: c.createdAt)
    return undos[0] if undos else None


def decide(services: Services, opp: Opportunity, msg: StageMessage, found: Found) -> Outcome:
    """Verify the succeeded execution, or compensate it (resuming a compensation already begun); or run the
    undo a person asked for."""
    if undo_requested(opp) is not None:
        return person_undo(services, opp, msg, found)
    done = [x for x in found.executions.values() if x and x.kind == "action" and x.status == SUCCEEDED]
    if opp.status is not Status.executed or not done:
        return Outcome(Result.NOTHING_TO_VERIFY)
    x = done[0]
    action = services.catalog.versions[(x.actionId, x.actionVersion)]
    comp = begun(x, found)
    if comp is not None:
        return compensate(services, opp, action, x, comp.message or "verification failed", msg, comp)
    ok, why = verify.check(action.verify, observed(action, x, found))
    if ok:
        return Outcome(Result.VERIFIED, [step(services, opp, [Status.verified], "watchdog", why, msg.correlationId,
                                              outputs={"verify": action.verify})])
    return compensate(services, opp, action, x, why, msg)


def person_undo(services: Services, opp: Opportunity, msg: StageMessage, found: Found) -> Outcome:
    """Run the compensation a person asked for, under a key of its own (a failed breach compensation before it
    is not replayed), once: the compensation of this request found on record is resumed, not made again."""
    undo, history = undo_requested(opp) or {}, found.histories.get(opp.id, [])
    x = rules.acted(opp, history)
    action = services.catalog.versions.get((x.actionId, x.actionVersion)) if x else None
    gone = action is None or action.compensation not in services.catalog.actions
    if x is None or action is None or gone or rules.undone(x, history):
        why = "undone already" if x and not gone and rules.undone(x, history) else "nothing to undo it with"
        done = step(services, opp, [], "watchdog", why, msg.correlationId,
                    plan={**(opp.plan or {}), "undo": {**undo, "done": "nothing"}})
        return Outcome(Result.NOTHING_TO_VERIFY, [done])
    # A case is undone by a person once (domain/escalation.py offers it once), so the compensation of `x` a person
    # asked for is the one to resume, whenever and by whom it was asked.
    mine = [c for c in history if c.kind == "compensation" and c.compensates == x.id and c.planner.get("undo")]
    why = f"undo requested by {undo.get('by')}"
    return compensate(services, opp, action, x, why, msg, mine[0] if mine else None, undo)


def observation(action: Action, x: Execution) -> Read | None:
    """The system-of-record read of the record the verify policy names, or None when it names none."""
    ref = verify.record_ref(action.verify)
    if ref is None:
        return None
    kind = ref[0]
    params = {"type": kind, "id": x.parameters.get(f"{kind}Id")}
    if kind == "case" and not params["id"]:
        params = {"type": "case", "orderId": x.parameters.get("orderId")}
    return Read(f"read:{x.id}", params)


def observed(action: Action, x: Execution, found: Found) -> dict[str, Any] | None:
    """The record the verify policy names: as read fresh from the system of record when a read flow exists,
    else as the flow's own evidence reported it."""
    read = observation(action, x)
    if read is None:
        return None
    record = found.records.get(read.key)
    return record if record is not None else (x.evidence.get("after") or {}).get(read.params["type"])


def compensation_parameters(comp: Action, x: Execution) -> dict[str, Any]:
    """The undo's inputs: the original parameters first, then the state before, then the ids created."""
    before = {k: v for rec in (x.evidence.get("before") or {}).values() if isinstance(rec, dict)
              for k, v in rec.items()}
    after = x.evidence.get("after") or {}
    out = {}
    for name in properties(comp):
        if name in x.parameters:
            out[name] = x.parameters[name]
        elif name in before and before[name] is not None:
            out[name] = before[name]
        elif name.endswith("Id") and isinstance(after.get(name[:-2]), dict):
            out[name] = after[name[:-2]].get("id")
        elif name == "amount" and isinstance(after.get("credit"), dict):
            out[name] = after["credit"].get("amount")
    return {k: v for k, v in out.items() if v is not None}


def compensation_of(undo: Action, x: Execution, now: Any = None, cid: str = "",
                    asked: dict[str, Any] | None = None) -> Execution:
    """The undo's execution (its id is its idempotency key, so a redelivery finds the one already begun). One a
    person `asked` for has a key of its own (a breach compensation that failed before is not replayed), made of
    what it undoes and never of when it was asked: a second request could not make a second call."""
    params = compensation_parameters(undo, x)
    key = idempotency_key(x.opportunityId, undo.id, undo.version, params, "undo", x.id) if asked else None
    planner = {"method": "compensation", **({"undo": asked["at"], "requestedBy": asked.get("by")} if asked else {})}
    return new_execution(x.opportunityId, undo.id, undo.version, params, now or x.updatedAt, cid, planner,
                         kind="compensation", compensates=x.id, key=key)


def compensate(services: Services, opp: Opportunity, action: Action, x: Execution, why: str, msg: StageMessage,
               comp: Execution | None = None, asked: dict[str, Any] | None = None) -> Outcome:
    """Record the undo (with the breach, or the person's request) before calling it; with no undo, fail and call
    a person."""
    cid = msg.correlationId
    undo = services.catalog.actions.get(action.compensation or "")
    if undo is None:
        failed = step(services, opp, [Status.failed], "watchdog", f"verification failed ({why}); nothing to undo it",
                      cid)
        return _breach(services, Outcome(Result.FAILED, [failed]), failed,
                       f"{action.id} failed verification and has no compensation: {why}", cid, [x])
    if comp is not None and flowrun.held(services, comp, msg.pollUrl):  # its retry or poll is scheduled already
        return flowrun.hold(opp, comp, msg)
    commits = []
    if comp is None:
        comp = compensation_of(undo, x, services.clock.now(), cid, asked)
        comp.message = why
        event = "undo.requested" if asked else "breach"
        commits = [Commit(opp, [comp], [audit(services, opp, "watchdog", event, why, cid, execution=x)])]
    made = comp
    return Outcome(Result.CALLING, commits, call=Call(
        undo, made, msg.pollUrl, [],
        lambda attempt: undone(services, opp, action, x, undo, made, why, msg, attempt, asked),
        lambda verdict: undone(services, opp, action, x, undo, made, why, msg, None, asked)))


def undone(services: Services, opp: Opportunity, action: Action, x: Execution, undo: Action, comp: Execution,
           why: str, msg: StageMessage, attempt: flowrun.Attempt | None,
           asked: dict[str, Any] | None = None) -> Outcome:
    """Record what the undo's flow answered: retry it later, or settle compensated or failed. A person's undo is
    marked done on the plan either way, so it runs once."""
    cid = msg.correlationId
    if attempt is not None:
        flowrun.apply(comp, attempt, services.clock.now())
        if flowrun.pending_retry(attempt):
            entry = audit(services, opp, "watchdog", "compensation.retry", attempt.outcome.message, cid, execution=comp)
            later = flowrun.later(services, "verify", opp.id, opp.revision, cid, msg.attempt, attempt)
            return Outcome(Result(attempt.outcome.kind), [Commit(opp, [comp], [entry])], [later])
    outputs = {"compensation": comp.id, "status": comp.status, "evidence": comp.evidence}
    changes: dict[str, Any] = {"plan": {**(opp.plan or {}), "undo": {**asked, "done": comp.status}}} if asked else {}
    if comp.status == SUCCEEDED:
        moved = step(services, opp, [Status.compensated], "watchdog", f"{why}; undone by {undo.id}", cid,
                     executions=[comp], outputs=outputs, **changes)
        review, asking = notices.answerable(services, "review", moved.opportunity,
                                            f"{opp.caseKey}: {action.id} was undone ({why})",
                                            {"action": action.id, "compensation": undo.id, "status": comp.status},
                                            [x, comp], cid)
        moved.approvals = [*moved.approvals, *([asking] if asking else [])]
        # Counted by the runner once the move to compensated landed (a refused one is decided again).
        return Outcome(Result.COMPENSATED, [moved], notes=[review],
                       counts=[lambda: telemetry.compensated(action.id, x.actionVersion)])
    # A failed case whose undo failed again stays failed: its revision still moves, so its escalation is a new one.
    path = [] if opp.status is Status.failed else [Status.failed]
    if not path:
        changes["revision"] = opp.revision + 1
    failed = step(services, opp, path, "watchdog", f"{why}; compensation {comp.status}", cid,
                  executions=[comp], outputs=outputs, **changes)
    return _breach(services, Outcome(Result.FAILED, [failed]), failed,
                   f"{action.id} breached ({why}) and {undo.id} {comp.status}", cid, [x, comp])


def _breach(services: Services, outcome: Outcome, moved: Commit, detail: str, cid: str,
            executions: list[Execution]) -> Outcome:
    """The incident and the escalation (answerable, committed with the move to failed) of a breach."""
    opp = moved.opportunity
    outcome.incidents.append(Incident(f"{opp.id}:breach", services.clock.now(), "breach", "verify", detail, opp.id,
                                      cid))
    note, asked = notices.answerable(services, "escalate", opp, f"{opp.caseKey}: {detail}", {"detail": detail},
                                     executions, cid)
    if asked is not None:
        moved.approvals = [*moved.approvals, asked]
    outcome.notes.append(note)
    return outcome
