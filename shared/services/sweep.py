"""The timer sweep: re-send nudges a stage may have lost, escalate requests nobody answered, learn from what was
measured (before ramps widen on it), close cases whose observation window passed."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from ..domain.execution import FINAL
from ..domain.messages import nudge
from ..domain.opportunity import Opportunity
from ..domain.status import Status
from ..logs import bind
from ..ports import Services
from . import messaging
from .escalations import forget_undos, pending_undos
from .stage import RESUME
from .watchdog import undo_requested

log = logging.getLogger(__name__)
_STARTED = time.monotonic()


def _retry_scheduled(services: Services, opportunity_id: str) -> bool:
    now = services.clock.now()
    return any(x.status not in FINAL and x.nextAttemptAt and x.nextAttemptAt > now
               for x in services.store.executions(opportunity_id))


# Statuses whose flow call may have a retry or a poll scheduled: not stuck then.
_CALLING = (Status.executing, Status.executed)


def reconcile(services: Services, correlation_id: str) -> int:
    """Re-nudge opportunities stuck in a transient status, and undos a person asked for that have not run; the
    deterministic message id makes a re-send of a message still on the queue a no-op."""
    run = bind(log, correlation_id)
    cutoff = services.clock.now() - timedelta(seconds=services.policy.reconcileAfterSeconds)
    stuck = [o for o in services.store.stale([s.value for s in RESUME], cutoff)
             if o.status not in _CALLING or not _retry_scheduled(services, o.id)]
    resend = [(RESUME[o.status], o) for o in stuck] + [("verify", o) for o in _lost_undos(services, cutoff)]
    sent = messaging.send(services, [nudge(stage, o.id, o.revision, o.correlationId or correlation_id)
                                     for stage, o in resend])
    run.info("sweep re-sent %d message(s) for stuck opportunities", sent)
    return sent


def _lost_undos(services: Services, cutoff: datetime) -> list[Opportunity]:
    """The undos asked for before `cutoff` still pending with no retry or poll of theirs scheduled (their nudge
    may be lost). Read from the pending-undo record (services/escalations.py), so the cost follows the undos
    pending, not the verified or failed cases; an entry whose case has no undo pending (it settled, or the
    request's commit never landed) is dropped, never acted on."""
    due = [oid for oid, at in pending_undos(services).items() if at < cutoff]
    if not due:
        return []
    cases = services.store.get_many(due)
    waiting = {oid: o for oid, o in cases.items() if undo_requested(o) is not None}
    settled = [oid for oid in due if oid not in waiting]
    if settled:
        forget_undos(services, settled)
    return [o for o in waiting.values() if not _retry_scheduled(services, o.id)]


def run(services: Services, correlation_id: str) -> dict[str, object]:
    """One sweep; idempotent (a second run right after finds nothing new to do). A step that fails is
    logged and named in the heartbeat; the others still run, since each guards against different losses."""
    from .answers import tune
    from .closing import close_observed
    from .drift import check
    from .escalations import escalate_unanswered
    from .learning import learn
    from .measure import snapshot_baselines
    from .ramp import promote

    steps = (("resent", lambda: reconcile(services, correlation_id)),
             ("escalated", lambda: escalate_unanswered(services, correlation_id)),
             ("drift", lambda: len(check(services, correlation_id))),
             # Before the ramp: promotion reads the verdicts this step writes (services/ramp.py).
             ("learned", lambda: _compact(learn(services, correlation_id))),
             ("tightened", lambda: len(tune(services, correlation_id)["tightened"])),  # people's answers
             ("widened", lambda: len(promote(services))),
             ("deadLettered", lambda: surface_dead_letters(services, correlation_id)),
             ("baselines", lambda: snapshot_baselines(services, correlation_id)),
             ("closed", lambda: close_observed(services, correlation_id)))
    run_log = bind(log, correlation_id)
    done: dict[str, object] = {}
    failed = []
    for name, step in steps:
        try:
            done[name] = step()
        except Exception:
            run_log.exception("sweep step %s failed", name)
            failed.append(name)
    if failed:
        done["failed"] = failed
    # The heartbeat: GET /api/health shows a timer that stopped running, or a step that keeps failing.
    services.coordination.put_state("sweep", {"at": services.clock.now().isoformat(), **done})
    run_log.info("sweep done: %s", done)
    return done


def _compact(figures: dict[str, object]) -> dict[str, object]:
    """The learn step's figures as the heartbeat keeps them: counts, not lists."""
    return {k: len(v) if isinstance(v, list) else v for k, v in figures.items()}


def heartbeat(services: Services) -> dict[str, object]:
    """When the sweep last ran, and whether that is too long ago or a step of it failed."""
    last = services.coordination.state("sweep")
    if last is None:  # a fresh deployment: give the timer its first runs before calling it stopped
        waited = time.monotonic() - _STARTED
        ok = waited <= services.policy.sweepStaleAfterSeconds
        return {"ok": ok, "lastRun": None, "detail": "not run yet" if ok else "the timer has never run"}
    age = (services.clock.now() - datetime.fromisoformat(last["at"])).total_seconds()
    fresh = age <= services.policy.sweepStaleAfterSeconds
    failed = last.get("failed") or []
    if not fresh:
        detail = f"no sweep for {age:.0f}s (expected every 5 minutes): is the timer running?"
    elif failed:
        detail = f"the last sweep's step(s) {', '.join(failed)} failed: see its log lines"
    else:
        detail = "ok"
    return {"ok": fresh and not failed, "lastRun": last["at"], "ageSeconds": round(age), "detail": detail,
            **({"failedSteps": failed} if failed else {})}


def surface_dead_letters(services: Services, correlation_id: str) -> int:
    """One incident (and escalation) per queue per dead-letter count seen: none repeated while it holds."""
    from ..ports import Incident
    from .notices import incident

    counter = getattr(services.bus, "dead_letter_counts", None)
    if counter is None:
        return 0
    try:
        counts = counter(list(services.settings.queues.values()))
    except Exception:  # the management API may be unreachable or not permitted; the rest of the sweep goes on
        log.exception("could not read dead-letter counts")
        return 0
    now = services.clock.now()
    for queue, n in counts.items():
        if n:
            incident(services, Incident(f"dlq-{queue}-{n}", now, "dead_letter", queue,
                                        f"{n} message(s) dead-lettered on {queue}: inspect and resubmit or purge",
                                        correlationId=correlation_id))
    return sum(counts.values())
