"""The sweep's drift watch: freeze an action whose failures, breaches or confidence moved, and say so.

A person's unfreeze is final for the evidence they judged: once a freeze is lifted, only the action's executions
after the lift count. The autonomy record keeps only its latest change, so the watch remembers which actions were
frozen at its last run (state record "drift"); one frozen then and free now was released by a person (no agent
lifts a freeze) no later than the record's changedAt, the latest change: executions up to then no longer count
(if an agent changed something after the lift, a few newer ones are left out too, never an old one kept).
"""
from __future__ import annotations

import logging
from dataclasses import fields
from datetime import datetime
from typing import Any

from ..domain import drift
from ..domain.autonomy import Autonomy
from ..domain.execution import FAILED, FINAL, REJECTED
from ..logs import Run, bind
from ..ports import Incident, Services
from . import autonomy, notices

log = logging.getLogger(__name__)
ACTOR = "drift-watch"
STATE = "drift"


def settings_of(services: Services) -> drift.Settings:
    known = {f.name for f in fields(drift.Settings)}
    return drift.Settings(**{k: v for k, v in services.policy.drift.items() if k in known})


def _lifted(doc: dict[str, Any], current: Autonomy, now: datetime, oldest: datetime,
            run_log: Run) -> dict[str, datetime]:
    """When each action's freeze was last lifted, newer than `oldest`, from the actions the last run saw frozen
    and the autonomy record now. Drift freezes per action, so the global freeze needs no memory of its own."""
    lifted = {k: datetime.fromisoformat(v) for k, v in (doc.get("lifted") or {}).items()}
    _released(lifted, set(doc.get("frozen") or ()), current, now, run_log)
    return {k: v for k, v in lifted.items() if v >= oldest}


def _released(lifted: dict[str, datetime], before: set[str], current: Autonomy, now: datetime, run_log: Run) -> None:
    """Note as lifted, no later than the record's latest change, each action frozen `before` and free now."""
    released = before - set(current.frozenActions)
    if released:
        at = datetime.fromisoformat(current.changedAt) if current.changedAt else now
        lifted.update(dict.fromkeys(released, at))
        run_log.info("drift: freeze lifted for %s at %s; earlier executions no longer count", sorted(released), at)


def _remember(services: Services, doc: dict[str, Any], current: Autonomy, lifted: dict[str, datetime]) -> None:
    new = {"frozen": sorted(current.frozenActions), "lifted": {k: v.isoformat() for k, v in sorted(lifted.items())}}
    if new != {"frozen": doc.get("frozen") or [], "lifted": doc.get("lifted") or {}}:
        services.coordination.put_state(STATE, new)


def check(services: Services, correlation_id: str) -> list[drift.Signal]:
    """Detect drift over the last day of executions; freeze the drifting actions (once) and escalate."""
    s = settings_of(services)
    now = services.clock.now()
    since = drift.window_start(now, s)
    executions = services.store.executions_since(since)
    undone = {x.compensates for x in executions if x.kind == "compensation" and x.compensates}
    samples = [drift.Sample(x.actionId, x.updatedAt, x.status in (FAILED, REJECTED), x.id in undone,
                            x.planner.get("confidence"))
               for x in executions if x.kind == "action" and x.status in FINAL]
    current = autonomy.current(services, fresh=True)
    doc = services.coordination.state(STATE) or {}
    run_log = bind(log, correlation_id)
    lifted = _lifted(doc, current, now, since, run_log)
    signals = drift.detect(samples, now, s, lifted)
    new = sorted({sig.actionId for sig in signals} - set(current.frozenActions))
    if new:
        why = "; ".join(sig.describe() for sig in signals if sig.actionId in new)
        # An addition, not the list read above: a person's freeze or unfreeze since then stands.
        read, current = current, autonomy.change(services, {"freezeAdd": new, "reason": f"drift: {why}"}, None,
                                                 actor=ACTOR)
        _released(lifted, set(read.frozenActions), current, now, run_log)  # an unfreeze that landed meanwhile
        hour = now.strftime("%Y%m%d%H")
        for action in new:
            notices.incident(services, Incident(f"drift-{action}-{hour}", now, "drift", "sweep",
                                                f"{action} frozen (approval required) by drift: {why}",
                                                correlationId=correlation_id))
        run_log.warning("drift froze %s: %s", new, why)
    _remember(services, doc, current, lifted)  # after the freeze: a lift before the next run is seen as one
    return signals
