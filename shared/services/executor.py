"""Executor: run the planned action's child flow at most once, and record the evidence before moving on."""
from __future__ import annotations

from typing import Any

from ..domain.execution import FINAL, SUCCEEDED, new_execution
from ..domain.messages import StageMessage, nudge
from ..domain.opportunity import Opportunity
from ..domain.status import Status
from ..ports import Incident
from ..runtime import Services
from . import flowrun, messaging
from .lifecycle import advance, audit


def run(services: Services, opp: Opportunity, msg: StageMessage, run_log: Any) -> str:
    cid = msg.correlationId
    if opp.status not in (Status.planned, Status.approved, Status.executing) or not opp.plan:
        return "nothing to execute"
    plan = opp.plan
    action = services.catalog.versions.get((plan["actionId"], plan["actionVersion"]))
    if action is None:
        advance(services, opp, [Status.executing, Status.failed] if opp.status is not Status.executing
                else [Status.failed], "executor", f"action {plan['actionId']} v{plan['actionVersion']} is gone", cid)
        return "failed"
    x = new_execution(opp.id, action.id, action.version, plan["parameters"], services.clock.now(), cid,
                      {"method": plan.get("method"), "confidence": plan.get("confidence"),
                       "promptVersion": plan.get("promptVersion")})
    known = {e.id: e for e in services.store.executions(opp.id)}
    if x.id in known:
        x = known[x.id]
    if opp.status is not Status.executing:
        # Recorded before the call: a crash after the call is redelivered here and replays the same key.
        opp = advance(services, opp, [Status.executing], "executor", f"calling {action.id} v{action.version}", cid,
                      executions=[] if x.etag else [x], inputs={"parameters": x.parameters})
    if x.status in FINAL:
        return settle(services, opp, x, cid)
    attempt = flowrun.call(services, action, x, cid, msg.pollUrl)
    flowrun.apply(x, attempt, services.clock.now())
    if flowrun.pending_retry(attempt):
        entry = audit(services, opp, "executor", "flow.retry" if attempt.outcome.kind == "retry" else "flow.waiting",
                      attempt.outcome.message, cid, outputs={"status": attempt.response.status}, execution=x)
        opp = services.store.commit(opp, [x], [entry])
        flowrun.reschedule(services, "execute", opp.id, opp.revision, cid, msg.attempt, attempt)
        return attempt.outcome.kind
    return settle(services, opp, x, cid)


def settle(services: Services, opp: Opportunity, x: Any, cid: str) -> str:
    """Move the opportunity on from a finished execution, and nudge the watchdog when it succeeded."""
    outputs = {"status": x.status, "evidence": x.evidence, "message": x.message}
    if x.status == SUCCEEDED:
        moved = advance(services, opp, [Status.executed], "executor", x.message or "flow succeeded", cid,
                        executions=[x], outputs=outputs)
        messaging.send(services, [nudge("verify", moved.id, moved.revision, cid)])
        return "executed"
    advance(services, opp, [Status.failed], "executor", x.message or f"flow {x.status}", cid, executions=[x],
            outputs=outputs)
    services.store.record_incident(Incident(f"{opp.id}:{x.id}", services.clock.now(), "failed", "execute",
                                            f"{x.actionId} v{x.actionVersion} {x.status}: {x.message}", opp.id, cid))
    services.notifier.notify("escalate", opp.id, f"{opp.caseKey}: {x.actionId} {x.status}", outputs)
    return "failed"
