"""Calling one execution's flow and settling what the answer means; shared by executor and watchdog."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .. import telemetry
from ..domain.catalog import Action
from ..domain.execution import WAITING, Execution
from ..domain.flow_contracts import ActionRef, ChildFlowRequest
from ..domain.flowcall import DONE, GIVE_UP, RETRY, WAIT, FlowResponse, Outcome, classify
from ..domain.messages import StageMessage, nudge
from ..domain.opportunity import Opportunity
from ..ports import Services
from . import stage
from .stage import Send


@dataclass
class Attempt:
    outcome: Outcome
    response: FlowResponse


def _refusal(services: Services, response: FlowResponse) -> str | None:
    """Why a 202's Location must not be polled (off the flows' hosts), or None; adapters without a list poll."""
    judge = getattr(services.flows, "refusal", None)
    if response.status != 202 or not response.location or judge is None:
        return None
    return judge(response.location)


def _not_polled(reason: str) -> Attempt:
    # The flow may have accepted the work: a person must check it; polling elsewhere would be SSRF.
    return Attempt(Outcome(GIVE_UP, "failed", message=f"{reason}; not polled, a person must check the flow's outcome"),
                   FlowResponse(0, error="PollRefused"))


def call(services: Services, action: Action, x: Execution, cid: str, poll_url: str | None) -> Attempt:
    """One call (or poll) of the flow; the idempotency key makes a repeat replay, not act again. A Location off
    the poll allowlist fails the execution at once: it is never requested."""
    from ..ports import FlowNotConfigured, PollRefused

    policy = services.policy
    x.attempts += 1
    try:
        flows = services.flows
        if flows is None:
            raise FlowNotConfigured("no child flows are configured")
        if poll_url:
            response = flows.poll(poll_url, cid, policy.flowTimeoutSeconds)
        else:
            payload = ChildFlowRequest(idempotencyKey=x.idempotencyKey, correlationId=cid,
                                       opportunityId=x.opportunityId,
                                       action=ActionRef(id=x.actionId, version=x.actionVersion),
                                       parameters=x.parameters).model_dump(mode="json")
            started = time.perf_counter()
            response = flows.call(action.flow.setting, payload, x.idempotencyKey, cid,
                                           policy.flowTimeoutSeconds)
            telemetry.flow_latency(x.actionId, x.actionVersion, (time.perf_counter() - started) * 1000)
    except FlowNotConfigured as exc:
        response = FlowResponse(404, {"status": "failed", "message": str(exc)})
    except PollRefused as exc:
        return _not_polled(str(exc))
    refused = _refusal(services, response)
    if refused:
        return _not_polled(refused)
    waited = (services.clock.now() - x.createdAt).total_seconds()
    outcome = classify(response, x.attempts, policy.maxAttempts, policy.backoffBaseSeconds,
                       policy.backoffMaxSeconds, services.rng, waited, policy.flowMaxWaitSeconds)
    return Attempt(outcome, response)


def apply(x: Execution, attempt: Attempt, now: Any) -> None:
    """Record the answer on the execution (before anything is acknowledged)."""
    o = attempt.outcome
    x.updatedAt = now
    x.message = o.message or x.message
    # The sweep leaves an execution alone until then, so it never pre-empts a Retry-After.
    x.nextAttemptAt = now + timedelta(seconds=o.delay) if o.kind in (RETRY, WAIT) else None
    if o.kind == DONE or o.status:
        x.status = o.status or x.status
        x.evidence = o.evidence or x.evidence
        telemetry.execution_ended(x.actionId, x.actionVersion, x.status)
    elif o.kind == WAIT:
        x.status = WAITING


def later(services: Services, stage: str, opportunity_id: str, revision: int, cid: str, attempt_no: int,
          attempt: Attempt) -> Send:
    """The next try of this message: after Retry-After, or backoff with jitter (a 202 polls its Location)."""
    o = attempt.outcome
    poll = attempt.response.location if o.kind == WAIT else None
    at = services.clock.now() + timedelta(seconds=o.delay)
    return Send((nudge(stage, opportunity_id, revision, cid, attempt=attempt_no + 1, poll_url=poll),), at)


def pending_retry(attempt: Attempt) -> bool:
    return attempt.outcome.kind in (RETRY, WAIT)


def held(services: Services, x: Execution, poll_url: str | None) -> bool:
    """True when a message without a poll URL finds its recorded execution waiting for a retry or poll that is
    scheduled for later: calling now would pre-empt a Retry-After (or re-POST a 202's work); only the scheduled
    message, which arrives at `nextAttemptAt`, calls. A WAITING execution whose poll is overdue (its message
    lost: the sweep's nudge) is posted again, its idempotency key replaying the flow's answer and Location."""
    return (bool(x.etag) and not x.final and not poll_url and x.nextAttemptAt is not None
            and x.nextAttemptAt > services.clock.now())


def hold(opp: Opportunity, x: Execution, msg: StageMessage) -> stage.Outcome:
    """No call: the nudge again at `nextAttemptAt`, under the id the scheduled retry has (attempt + 1), so a
    copy of the message that scheduled it is dropped as a duplicate."""
    result = stage.Result.WAIT if x.status == WAITING else stage.Result.RETRY
    again = nudge(msg.type, opp.id, opp.revision, msg.correlationId, attempt=msg.attempt + 1)
    return stage.Outcome(result).send(again, at=x.nextAttemptAt)


def again(x: Execution, attempt: Attempt) -> Attempt:
    """The answer a call already got, for the execution as re-read after its commit was refused (unchanged since
    the call): counted as that call was, and applied instead of calling again."""
    x.attempts += 1
    return attempt
