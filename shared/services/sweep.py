"""The timer sweep: re-send nudges a stage may have lost, and escalate requests nobody answered."""
from __future__ import annotations

import logging
from datetime import timedelta

from ..domain.execution import FINAL
from ..domain.messages import nudge
from ..domain.status import Status
from ..logs import bind
from ..runtime import Services
from . import messaging
from .pipeline import RESUME

log = logging.getLogger(__name__)


def _retry_scheduled(services: Services, opportunity_id: str) -> bool:
    now = services.clock.now()
    return any(x.status not in FINAL and x.nextAttemptAt and x.nextAttemptAt > now
               for x in services.store.executions(opportunity_id))


def reconcile(services: Services, correlation_id: str) -> int:
    """Re-nudge opportunities stuck in a transient status; the deterministic message id makes a
    re-send of a message still on the queue a no-op."""
    run = bind(log, correlation_id)
    cutoff = services.clock.now() - timedelta(seconds=services.policy.reconcileAfterSeconds)
    stuck = [o for o in services.store.stale([s.value for s in RESUME], cutoff)
             if o.status not in (Status.executing, Status.executed) or not _retry_scheduled(services, o.id)]
    sent = messaging.send(services, (nudge(RESUME[o.status], o.id, o.revision, o.correlationId or correlation_id)
                                     for o in stuck))
    run.info("sweep re-sent %d message(s) for stuck opportunities", sent)
    return sent


def run(services: Services, correlation_id: str) -> dict[str, int]:
    """One sweep; idempotent (a second run right after finds nothing new to do)."""
    from .approvals import escalate_unanswered

    done = {"resent": reconcile(services, correlation_id), "escalated": escalate_unanswered(services, correlation_id)}
    bind(log, correlation_id).info("sweep done: %s", done)
    return done
