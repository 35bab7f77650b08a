"""The sweep's drift watch: freeze an action whose failures, breaches or confidence moved, and say so."""
from __future__ import annotations

import logging
from dataclasses import fields
from datetime import timedelta

from ..domain import drift
from ..domain.execution import FAILED, FINAL, REJECTED
from ..ports import Incident, Services
from . import autonomy, notices

log = logging.getLogger(__name__)


def settings_of(services: Services) -> drift.Settings:
    known = {f.name for f in fields(drift.Settings)}
    return drift.Settings(**{k: v for k, v in services.policy.drift.items() if k in known})


def check(services: Services, correlation_id: str) -> list[drift.Signal]:
    """Detect drift over the last day of executions; freeze the drifting actions (once) and escalate."""
    s = settings_of(services)
    now = services.clock.now()
    since = now - timedelta(minutes=s.recentMinutes) - timedelta(hours=s.baselineHours)
    executions = services.store.executions_since(since)
    undone = {x.compensates for x in executions if x.kind == "compensation" and x.compensates}
    samples = [drift.Sample(x.actionId, x.updatedAt, x.status in (FAILED, REJECTED), x.id in undone,
                            x.planner.get("confidence"))
               for x in executions if x.kind == "action" and x.status in FINAL]
    signals = drift.detect(samples, now, s)
    current = autonomy.current(services, fresh=True)
    new = sorted({sig.actionId for sig in signals} - set(current.frozenActions))
    if not new:
        return signals
    why = "; ".join(sig.describe() for sig in signals if sig.actionId in new)
    autonomy.change(services, {"freezeActions": sorted(set(current.frozenActions) | set(new)),
                               "reason": f"drift: {why}"}, None, actor="drift-watch")
    hour = now.strftime("%Y%m%d%H")
    for action in new:
        notices.incident(services, Incident(f"drift-{action}-{hour}", now, "drift", "sweep",
                                            f"{action} frozen (approval required) by drift: {why}",
                                            correlationId=correlation_id))
    log.warning("drift froze %s: %s", new, why)
    return signals
