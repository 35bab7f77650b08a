"""Executor: run the planned action's child flow at most once, and record the evidence before moving on.

Two phases: the execution (and status executing) is committed before any call, so a crash after the call
is redelivered here, finds that execution by id and replays the same idempotency key instead of acting again.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ..domain.catalog import Action
from ..domain.execution import SUCCEEDED, Execution, new_execution, plan_key
from ..domain.messages import StageMessage, nudge
from ..domain.opportunity import Opportunity
from ..domain.rate_limit import Verdict, rules_for
from ..domain.status import Status
from ..ports import Commit, Incident, Services
from . import flowrun, notices
from .lifecycle import audit, step
from .stage import Call, Found, Needs, Outcome, Result

ACTING = (Status.planned, Status.approved, Status.executing)


def execution_id(opp: Opportunity) -> str | None:
    """The id of the execution the opportunity's plan makes (its idempotency key), or None with nothing to run.
    A retry a person asked for moved the case back to executing with a new attempt, so a new key."""
    plan = opp.plan
    if not plan or opp.status not in ACTING:
        return None
    return plan_key(opp.id, plan)


def needs(opp: Opportunity) -> Needs:
    """The plan's execution, if it was recorded already (a redelivery, a retry, a crash after the call)."""
    key = execution_id(opp)
    return Needs(executions=[(opp.id, key)]) if key else Needs()


def planned_execution(services: Services, opp: Opportunity, cid: str, action: Action) -> Execution:
    plan = opp.plan or {}
    return new_execution(opp.id, action.id, action.version, plan["parameters"], services.clock.now(), cid,
                         {"method": plan.get("method"), "confidence": plan.get("confidence"),
                          "promptVersion": plan.get("promptVersion"),
                          **({"attempt": plan["attempt"], "retriedBy": plan.get("retriedBy")}
                             if plan.get("attempt") else {})},
                         key=plan_key(opp.id, plan))


def decide(services: Services, opp: Opportunity, msg: StageMessage, found: Found) -> Outcome:
    """Record the execution (status executing), then call its flow: the runner calls only once that landed."""
    cid = msg.correlationId
    key, plan = execution_id(opp), opp.plan
    if key is None or plan is None:
        return Outcome(Result.NOTHING_TO_EXECUTE)
    action = services.catalog.versions.get((plan["actionId"], plan["actionVersion"]))
    if action is None or not services.catalog.allows(action.id):
        # The allowlist is checked again here: an action disabled or withdrawn from this environment after
        # it was planned (or approved) never runs.
        path = [Status.failed] if opp.status is Status.executing else [Status.executing, Status.failed]
        why = "is gone" if action is None else f"is not allowed in {services.catalog.environment}"
        return Outcome(Result.FAILED, [step(services, opp, path, "executor",
                                            f"action {plan['actionId']} v{plan['actionVersion']} {why}", cid)])
    x = found.executions.get((opp.id, key)) or planned_execution(services, opp, cid, action)
    if flowrun.held(services, x, msg.pollUrl):  # a copy of a message whose retry or poll is scheduled already
        return flowrun.hold(opp, x, msg)
    commits = []
    if opp.status is not Status.executing or not x.etag:
        # An execution not on record is written before its call, even when the opportunity is executing
        # already (its plan's execution was never recorded): a crash after the call then replays the key.
        path = [] if opp.status is Status.executing else [Status.executing]
        commits = [step(services, opp, path, "executor", f"calling {action.id} v{action.version}",
                        cid, executions=[] if x.etag else [x], inputs={"parameters": x.parameters})]
        opp = commits[0].opportunity  # the runner writes it before the call; its ETag is updated in place
    # The entity and cap grants are held by the idempotency key: a retry after a 429 or 5xx, or a replay after
    # a crash between grant and commit, reuses them instead of waiting 24 h behind its own grant. A poll of a
    # running flow changes nothing: no limits.
    # A person's retry holds them by the first attempt's key: the failed attempt did not act on the entity, and
    # the retry must not wait a day behind its own case's grant.
    holder = plan_key(opp.id, {**plan, "attempt": 0}) if plan.get("attempt") else x.idempotencyKey
    rules = [] if msg.pollUrl else rules_for(action.id, action.flow.connector, action.rateLimit, x.parameters,
                                             action.dailyCap, holder=holder)
    return Outcome(Result.CALLING, commits, call=Call(action, x, msg.pollUrl, rules,
                                                      lambda attempt: finish(services, opp, x, msg, attempt),
                                                      lambda verdict: throttled(services, opp, x, msg, verdict)))


def finish(services: Services, opp: Opportunity, x: Execution, msg: StageMessage,
           attempt: flowrun.Attempt | None) -> Outcome:
    """Record what the flow answered, then move on: settle, or schedule the retry or poll."""
    cid = msg.correlationId
    if attempt is not None:
        flowrun.apply(x, attempt, services.clock.now())
        if flowrun.pending_retry(attempt):
            kind = attempt.outcome.kind
            entry = audit(services, opp, "executor", "flow.retry" if kind == "retry" else "flow.waiting",
                          attempt.outcome.message, cid, outputs={"status": attempt.response.status}, execution=x)
            later = flowrun.later(services, "execute", opp.id, opp.revision, cid, msg.attempt, attempt)
            return Outcome(Result(kind), [Commit(opp, [x], [entry])], [later])
    return settle(services, opp, x, cid)


def throttled(services: Services, opp: Opportunity, x: Execution, msg: StageMessage, verdict: Verdict) -> Outcome:
    """Over a rate limit: no call; the message comes back when a grant is possible (no busy loop)."""
    cid, now = msg.correlationId, services.clock.now()
    wait = max(0.0, (verdict.retry_at or 0) / 1000 - now.timestamp())
    x.updatedAt = now
    x.nextAttemptAt = now + timedelta(seconds=wait)  # the sweep leaves it alone until then
    entry = audit(services, opp, "executor", "rate.limited", f"over a rate limit of {x.actionId}; retry in "
                  f"{wait:.1f}s", cid, outputs={"retryAt": x.nextAttemptAt.isoformat()}, execution=x)
    # attempt + 1 only names a new message; the execution's own attempts (flow calls) are unchanged.
    return Outcome(Result.THROTTLED, [Commit(opp, [x], [entry])]).send(
        nudge("execute", opp.id, opp.revision, cid, attempt=msg.attempt + 1), at=x.nextAttemptAt)


def settle(services: Services, opp: Opportunity, x: Execution, cid: str) -> Outcome:
    """Move the opportunity on from a finished execution, and nudge the watchdog when it succeeded."""
    outputs = {"status": x.status, "evidence": x.evidence, "message": x.message}
    if x.status == SUCCEEDED:
        moved = step(services, opp, [Status.executed], "executor", x.message or "flow succeeded", cid,
                     executions=[x], outputs=outputs)
        return Outcome(Result.EXECUTED, [moved]).send(nudge("verify", opp.id, moved.opportunity.revision, cid))
    moved = step(services, opp, [Status.failed], "executor", x.message or f"flow {x.status}", cid, executions=[x],
                 outputs=outputs)
    found = Incident(f"{opp.id}:{x.id}", services.clock.now(), "failed", "execute",
                     f"{x.actionId} v{x.actionVersion} {x.status}: {x.message}", opp.id, cid)
    told, asked = notices.answerable(services, "escalate", moved.opportunity, f"{opp.caseKey}: {x.actionId} {x.status}",
                                     {"action": f"{x.actionId} v{x.actionVersion}", "status": x.status,
                                      "message": x.message or ""}, [x], cid)
    if asked is not None:  # answerable from the moment the failure is on record: committed with it
        moved = replace(moved, approvals=[*moved.approvals, asked])
    return Outcome(Result.FAILED, [moved], notes=[told], incidents=[found])
