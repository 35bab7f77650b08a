"""Executor: run the planned action's child flow at most once, and record the evidence before moving on."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Optional, Union

from ..domain.catalog import Action
from ..domain.execution import FINAL, SUCCEEDED, Execution, new_execution
from ..domain.messages import StageMessage, nudge
from ..domain.opportunity import Opportunity
from ..domain.rate_limit import Rule, Verdict, rules_for
from ..domain.status import Status
from ..ports import Incident
from ..ports import Services
from . import flowrun, messaging, notices
from .lifecycle import advance, audit


@dataclass
class Prepared:
    """An opportunity ready for its flow call: its execution is recorded, so the call may happen."""

    opp: Opportunity
    action: Action
    execution: Execution


def planned_execution(services: Services, opp: Opportunity, cid: str, action: Action) -> Execution:
    plan = opp.plan or {}
    return new_execution(opp.id, action.id, action.version, plan["parameters"], services.clock.now(), cid,
                         {"method": plan.get("method"), "confidence": plan.get("confidence"),
                          "promptVersion": plan.get("promptVersion")})


def prepare(services: Services, opp: Opportunity, msg: StageMessage,
            known: Optional[Execution] = None, looked_up: bool = False) -> Union[str, Prepared]:
    """Record the execution (and status executing) before any call: a crash after the call is then
    redelivered here and replays the same idempotency key instead of acting again."""
    cid = msg.correlationId
    if opp.status not in (Status.planned, Status.approved, Status.executing) or not opp.plan:
        return "nothing to execute"
    plan = opp.plan
    action = services.catalog.versions.get((plan["actionId"], plan["actionVersion"]))
    if action is None or not services.catalog.allows(action.id):
        # The allowlist is checked again here: an action disabled or withdrawn from this environment after
        # it was planned (or approved) never runs.
        path = [Status.failed] if opp.status is Status.executing else [Status.executing, Status.failed]
        why = "is gone" if action is None else f"is not allowed in {services.catalog.environment}"
        advance(services, opp, path, "executor", f"action {plan['actionId']} v{plan['actionVersion']} {why}", cid)
        return "failed"
    x = planned_execution(services, opp, cid, action)
    if not looked_up:
        known = services.store.execution(opp.id, x.id)
    x = known or x
    if opp.status is not Status.executing:
        opp = advance(services, opp, [Status.executing], "executor", f"calling {action.id} v{action.version}", cid,
                      executions=[] if x.etag else [x], inputs={"parameters": x.parameters})
    return Prepared(opp, action, x)


def finish(services: Services, p: Prepared, msg: StageMessage, attempt: Optional[flowrun.Attempt]) -> str:
    """Record what the flow answered, then move on: settle, or schedule the retry or poll."""
    opp, x, cid = p.opp, p.execution, msg.correlationId
    if attempt is not None:
        flowrun.apply(x, attempt, services.clock.now())
        if flowrun.pending_retry(attempt):
            kind = attempt.outcome.kind
            entry = audit(services, opp, "executor", "flow.retry" if kind == "retry" else "flow.waiting",
                          attempt.outcome.message, cid, outputs={"status": attempt.response.status}, execution=x)
            opp = services.store.commit(opp, [x], [entry])
            flowrun.reschedule(services, "execute", opp.id, opp.revision, cid, msg.attempt, attempt)
            return kind
    return settle(services, opp, x, cid)


def needs_call(p: Prepared) -> bool:
    return p.execution.status not in FINAL


def rules_of(p: Prepared, polling: bool) -> list[Rule]:
    """The rate limits this call must pass (a poll of a running flow changes nothing: none). The entity
    and cap grants are held by the execution's idempotency key: a retry after a 429 or 5xx, or a replay
    after a crash between grant and commit, reuses them instead of waiting 24 h behind its own grant."""
    if polling:
        return []
    return rules_for(p.action.id, p.action.flow.connector, p.action.rateLimit, p.execution.parameters,
                     p.action.dailyCap, holder=p.execution.idempotencyKey)


def throttled(services: Services, p: Prepared, msg: StageMessage, verdict: Verdict) -> str:
    """Over a rate limit: no call; the message comes back when a grant is possible (no busy loop)."""
    x, cid = p.execution, msg.correlationId
    wait = max(0.0, (verdict.retry_at or 0) / 1000 - services.clock.now().timestamp())
    x.updatedAt = services.clock.now()
    x.nextAttemptAt = services.clock.now() + timedelta(seconds=wait)  # the sweep leaves it alone until then
    entry = audit(services, p.opp, "executor", "rate.limited", f"over a rate limit of {x.actionId}; retry in "
                  f"{wait:.1f}s", cid, outputs={"retryAt": x.nextAttemptAt.isoformat()}, execution=x)
    opp = services.store.commit(p.opp, [x], [entry])
    # attempt + 1 only names a new message; the execution's own attempts (flow calls) are unchanged.
    messaging.send(services, [nudge("execute", opp.id, opp.revision, cid, attempt=msg.attempt + 1)],
                   at=x.nextAttemptAt)
    return "throttled"


def admitted(services: Services, calls: list[tuple[Prepared, bool]]) -> list[Verdict]:
    """One limiter round for many calls, in order: each granted or told when to come back."""
    rules = [rules_of(p, polling) for p, polling in calls]
    if not any(rules):
        return [Verdict(granted_at=0)] * len(calls)
    return services.coordination.acquire_many(rules, int(services.clock.now().timestamp() * 1000))


def run(services: Services, opp: Opportunity, msg: StageMessage, run_log: Any) -> str:
    p = prepare(services, opp, msg)
    if isinstance(p, str):
        return p
    if not needs_call(p):
        return finish(services, p, msg, None)
    [verdict] = admitted(services, [(p, bool(msg.pollUrl))])
    if not verdict.granted:
        return throttled(services, p, msg, verdict)
    return finish(services, p, msg, flowrun.call(services, p.action, p.execution, msg.correlationId, msg.pollUrl))


def settle(services: Services, opp: Opportunity, x: Execution, cid: str) -> str:
    """Move the opportunity on from a finished execution, and nudge the watchdog when it succeeded."""
    outputs = {"status": x.status, "evidence": x.evidence, "message": x.message}
    if x.status == SUCCEEDED:
        moved = advance(services, opp, [Status.executed], "executor", x.message or "flow succeeded", cid,
                        executions=[x], outputs=outputs)
        messaging.send(services, [nudge("verify", moved.id, moved.revision, cid)])
        return "executed"
    advance(services, opp, [Status.failed], "executor", x.message or f"flow {x.status}", cid, executions=[x],
            outputs=outputs)
    services.reference.record_incident(Incident(f"{opp.id}:{x.id}", services.clock.now(), "failed", "execute",
                                            f"{x.actionId} v{x.actionVersion} {x.status}: {x.message}", opp.id, cid))
    notices.escalate(services, "escalate", opp, f"{opp.caseKey}: {x.actionId} {x.status}",
                     {"action": f"{x.actionId} v{x.actionVersion}", "status": x.status, "message": x.message or ""})
    return "failed"
