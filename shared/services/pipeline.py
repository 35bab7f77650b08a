"""The queue stages: parse the nudge, load the opportunity, let the stage's agent act on it.

Every stage is idempotent. A message for an opportunity that has already moved past the stage re-sends
the nudge its current status needs, under the same deterministic id, so a send lost in a crash after a
commit is repaired by the redelivery (and dropped by duplicate detection if it was not lost).
"""
from __future__ import annotations

import logging
import hashlib

from pydantic import ValidationError

from ..domain.messages import StageMessage, nudge
from ..domain.status import Status
from ..logs import bind
from ..ports import Incident
from ..ports import Services
from . import executor, messaging, notices, planner, triage, watchdog

log = logging.getLogger(__name__)

# The stage that moves an opportunity on from each status that waits on a queue.
RESUME = {Status.new: "triage", Status.triaged: "plan", Status.planned: "execute", Status.approved: "execute",
          Status.executing: "execute", Status.executed: "verify"}


def handle(services: Services, stage: str, body: bytes, delivery_count: int = 1) -> str:
    """Run one stage for one message; returns what happened. Raising makes the bus redeliver."""
    try:
        msg = StageMessage.model_validate_json(body)
    except ValidationError as exc:
        # A message that can never parse must settle, not bounce until it is dead-lettered.
        detail = f"unreadable {stage} message: {exc.errors(include_url=False)[:3]}"
        log.error(detail)
        # The same unreadable body is the same incident, however often it is delivered.
        incident_id = hashlib.sha256(stage.encode() + b"\0" + body).hexdigest()[:32]
        notices.incident(services, Incident(incident_id, services.clock.now(), "poison", stage,
                                            f"{detail}; body {body[:500]!r}"))
        return "poison"
    run = bind(log, msg.correlationId, opportunityId=msg.opportunityId, stage=stage, deliveryCount=delivery_count)
    if msg.type != stage:
        run.error("message of type %s arrived on the %s queue; dropped", msg.type, stage)
        return "misrouted"
    opp = services.store.get(msg.opportunityId)
    if opp is None:
        run.warning("opportunity not found; message dropped")
        return "missing"
    if stage == "triage":
        result = triage.run(services, opp, msg.correlationId, run)
    elif stage == "plan":
        result = planner.run(services, opp, msg.correlationId, run)
    elif stage == "execute":
        result = executor.run(services, opp, msg, run)
    else:
        result = watchdog.run(services, opp, msg, run)
    next_stage = RESUME.get(opp.status)
    if result.startswith(("already", "nothing")) and next_stage and next_stage != stage:
        messaging.send(services, [nudge(next_stage, opp.id, opp.revision, msg.correlationId)])
    run.info("%s: %s", stage, result)
    return result
