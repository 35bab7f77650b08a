"""The queue stages. Triage advances new → triaged and nudges the planner; the planner, executor and
watchdog consume and validate their messages but do not act yet (the agent pipeline is its own issue)."""
from __future__ import annotations

import logging

from pydantic import ValidationError

from ..domain.messages import StageMessage, nudge
from ..domain.status import Status
from ..logs import bind
from ..runtime import Services
from . import messaging

log = logging.getLogger(__name__)


def handle(services: Services, stage: str, body: bytes, delivery_count: int = 1) -> str:
    """Run one stage for one message; returns what happened. Raising makes the bus redeliver."""
    try:
        msg = StageMessage.model_validate_json(body)
    except ValidationError as exc:
        # A message that can never parse must settle, not bounce until it is dead-lettered.
        log.error("poison %s message dropped: %s", stage, exc.errors(include_url=False)[:3])
        return "poison"
    run = bind(log, msg.correlationId, opportunityId=msg.opportunityId, stage=stage, deliveryCount=delivery_count)
    if msg.type != stage:
        run.error("message of type %s arrived on the %s queue; dropped", msg.type, stage)
        return "misrouted"
    opp = services.store.get(msg.opportunityId)
    if opp is None:
        run.warning("opportunity not found; message dropped")
        return "missing"
    if stage != "triage":
        run.info("%s stage received the opportunity in status %s; this stage does not act yet", stage,
                 opp.status.value)
        return "noop"
    if opp.status is not Status.new:
        run.info("already triaged (status %s); duplicate delivery ignored", opp.status.value)
        return "duplicate"
    triaged = opp.transition(Status.triaged, "triage", "data complete enough to plan", services.clock.now())
    services.store.save(triaged)  # ConcurrencyConflict propagates: the redelivery re-reads and sees `triaged`
    messaging.send(services, [nudge("plan", triaged.id, triaged.revision, msg.correlationId)])
    run.info("triaged; plan message sent")
    return "triaged"
