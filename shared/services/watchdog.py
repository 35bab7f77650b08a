"""Watchdog: check the outcome against the action's verify policy; on a breach, undo it and call a person."""
from __future__ import annotations

from typing import Any, Optional

from ..domain import verify
from ..domain.catalog import Action
from ..domain.contracts import properties
from ..domain.execution import FINAL, SUCCEEDED, Execution, new_execution
from ..domain.messages import StageMessage
from ..domain.opportunity import Opportunity
from ..domain.status import Status
from ..ports import Incident
from .. import telemetry
from ..ports import Services
from . import flowrun, notices, sor
from .lifecycle import advance, audit



def run(services: Services, opp: Opportunity, msg: StageMessage, run_log: Any) -> str:
    cid = msg.correlationId
    if opp.status is not Status.executed:
        return "nothing to verify"
    executions = services.store.executions(opp.id)
    done = [x for x in executions if x.kind == "action" and x.status == SUCCEEDED]
    if not done:
        return "nothing to verify"
    x = max(done, key=lambda e: e.updatedAt)
    action = services.catalog.versions[(x.actionId, x.actionVersion)]
    comp = next((c for c in executions if c.kind == "compensation" and c.compensates == x.id), None)
    if comp is None:
        ok, why = verify.check(action.verify, observed(services, action, x, cid))
        if ok:
            advance(services, opp, [Status.verified], "watchdog", why, cid, outputs={"verify": action.verify})
            return "verified"
        return compensate(services, opp, action, x, why, msg)
    return compensate(services, opp, action, x, comp.message or "verification failed", msg, comp)


def observed(services: Services, action: Action, x: Execution, cid: str) -> Optional[dict[str, Any]]:
    """The record the verify policy names: read fresh from the system of record when a read flow exists,
    else as the flow's own evidence reported it."""
    ref = verify.record_ref(action.verify)
    if ref is None:
        return None
    kind = ref[0]
    params = {"type": kind, "id": x.parameters.get(f"{kind}Id")}
    if kind == "case" and not params["id"]:
        params = {"type": "case", "orderId": x.parameters.get("orderId")}
    record = sor.read(services, params, f"read:{x.id}", cid, x.opportunityId)
    return record if record is not None else (x.evidence.get("after") or {}).get(kind)


def compensation_parameters(comp: Action, x: Execution) -> dict[str, Any]:
    """The undo's inputs: the original parameters first, then the state before, then the ids created."""
    before = {k: v for rec in (x.evidence.get("before") or {}).values() if isinstance(rec, dict) for k, v in rec.items()}
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


def compensate(services: Services, opp: Opportunity, action: Action, x: Execution, why: str, msg: StageMessage,
               comp: Optional[Execution] = None) -> str:
    cid = msg.correlationId
    undo = services.catalog.actions.get(action.compensation or "")
    if undo is None:
        advance(services, opp, [Status.failed], "watchdog", f"verification failed ({why}); nothing to undo it", cid)
        _escalate(services, opp, "breach", f"{action.id} failed verification and has no compensation: {why}", cid)
        return "failed"
    if comp is None:
        comp = new_execution(opp.id, undo.id, undo.version, compensation_parameters(undo, x), services.clock.now(),
                             cid, {"method": "compensation"}, kind="compensation", compensates=x.id)
        comp.message = why
        opp = services.store.commit(opp, [comp], [audit(services, opp, "watchdog", "breach", why, cid, execution=x)])
    if comp.status not in FINAL:
        attempt = flowrun.call(services, undo, comp, cid, msg.pollUrl)
        flowrun.apply(comp, attempt, services.clock.now())
        if flowrun.pending_retry(attempt):
            opp = services.store.commit(opp, [comp], [audit(services, opp, "watchdog", "compensation.retry",
                                                            attempt.outcome.message, cid, execution=comp)])
            flowrun.reschedule(services, "verify", opp.id, opp.revision, cid, msg.attempt, attempt)
            return attempt.outcome.kind
    outputs = {"compensation": comp.id, "status": comp.status, "evidence": comp.evidence}
    if comp.status == SUCCEEDED:
        advance(services, opp, [Status.compensated], "watchdog", f"{why}; undone by {undo.id}", cid,
                executions=[comp], outputs=outputs)
        telemetry.compensated(action.id, x.actionVersion)
        notices.escalate(services, "review", opp, f"{opp.caseKey}: {action.id} was undone ({why})",
                         {"action": action.id, "compensation": undo.id, "status": comp.status})
        return "compensated"
    advance(services, opp, [Status.failed], "watchdog", f"{why}; compensation {comp.status}", cid,
            executions=[comp], outputs=outputs)
    _escalate(services, opp, "breach", f"{action.id} breached ({why}) and {undo.id} {comp.status}", cid)
    return "failed"


def _escalate(services: Services, opp: Opportunity, kind: str, detail: str, cid: str) -> None:
    services.reference.record_incident(Incident(f"{opp.id}:{kind}", services.clock.now(), kind, "verify", detail,
                                            opp.id, cid))
    notices.escalate(services, "escalate", opp, f"{opp.caseKey}: {detail}", {"detail": detail})
