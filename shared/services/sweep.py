"""The timer sweep's reconciler: messages are only nudges, so re-send those a stage may have lost."""
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
