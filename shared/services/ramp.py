"""Ramp-up: an action acts alone on a growing share of its cases, widened by the sweep after enough
verified executions without a breach and, from the learn step's verdicts, never over a harmful or null effect
(with `learning.rampNeedsMeasurement`, only over a measured one); cases outside the share go to a person. Each
widening, and the first sweep a stage is held, is a `ramp` policy event naming its evidence."""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from ..domain.catalog import Action
from ..domain.execution import SUCCEEDED
from ..ports import Services
from . import policy_events
from .learning import ramp_evidence, ramp_hold, stored

log = logging.getLogger(__name__)


def stage_of(services: Services, action: Action) -> dict[str, Any]:
    return services.coordination.state(state_name(action)) or {"stage": 0, "since": None}


def state_name(action: Action) -> str:
    return f"ramp-{action.id}"


def share(services: Services, action: Action) -> float:
    """The share (%) of cases the action may act on alone now."""
    return share_at(action, stage_of(services, action) if action.ramp else None)


def share_at(action: Action, state: dict[str, Any] | None) -> float:
    """The share (%) at the ramp stage `state` records (the first stage before the sweep has looked)."""
    if not action.ramp:
        return 100.0
    return action.ramp[min((state or {"stage": 0})["stage"], len(action.ramp) - 1)]


def in_share(salt: str, action_id: str, case_key: str, percent: float) -> bool:
    """A stable draw per case: the same cases stay inside as the share widens (5% ⊂ 25% ⊂ 100%)."""
    digest = hashlib.sha256(f"{salt}|ramp|{action_id}|{case_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < percent * 100


def promote(services: Services) -> list[str]:
    """Widen each ramping action whose current stage has enough verified executions, no breach, and whose current
    version's measured effect allows it (services/learning.py ramp_hold)."""
    now = services.clock.now()
    moved = []
    record = None
    for action in services.catalog.actions.values():
        if not action.ramp:
            continue
        state = stage_of(services, action)
        if state["stage"] >= len(action.ramp) - 1:
            continue
        since = datetime.fromisoformat(state["since"]) if state.get("since") else None
        if since is None:  # first look: the stage starts counting now
            services.coordination.put_state(state_name(action), {"stage": state["stage"], "since": now.isoformat()})
            continue
        recent = services.store.executions_since(since)
        # A compensation is another action's execution (the undo): match it by what it compensates.
        undone = {x.compensates for x in recent if x.kind == "compensation"}
        runs = [x for x in recent if x.actionId == action.id and x.kind == "action"]
        good = sum(1 for x in runs if x.status == SUCCEEDED and x.id not in undone)
        if any(x.id in undone for x in runs):  # a breach at this stage: start counting again
            services.coordination.put_state(state_name(action), {**state, "since": now.isoformat()})
        elif good >= services.policy.rampPromoteAfter:
            record = stored(services) if record is None else record
            held = ramp_hold(services, action, record)
            if held is not None:  # the stage keeps counting; it widens once the evidence allows
                log.info("ramp of %s held: %s", action.id, held)
                if not state.get("held"):  # one event per stage: the figures in `held` change every sweep
                    policy_events.record(services, "ramp", "learning", f"{action.id} ramp held at "
                                         f"{action.ramp[state['stage']]:g}%: {held}", actionId=action.id,
                                         actionVersion=action.version, share=action.ramp[state["stage"]],
                                         verified=good, evidence=held)
                    services.coordination.put_state(state_name(action), {**state, "held": {
                        "at": now.isoformat(), "why": held}})
                continue
            was, wider = action.ramp[state["stage"]], action.ramp[state["stage"] + 1]
            services.coordination.put_state(state_name(action), {"stage": state["stage"] + 1, "since": now.isoformat()})
            policy_events.record(services, "ramp", "sweep", f"{action.id} ramp widened {was:g}% → {wider:g}%: "
                                 f"{good} verified executions without a breach", actionId=action.id,
                                 actionVersion=action.version, share=wider, verified=good,
                                 evidence=ramp_evidence(services, action, record))
            moved.append(f"{action.id} → {wider:g}%")
    return moved
