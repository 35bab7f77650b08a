"""Cases end: a verified (or compensated) case is closed once the policy's observation window has passed."""
from __future__ import annotations

from datetime import timedelta

from ..domain.status import Status
from ..ports import Services
from .escalations import ended, note_undos
from .lifecycle import step
from .watchdog import undo_requested

# Cases closed per sweep at most: the sweep runs every 5 minutes and shares its time with the other steps, so a
# backlog of thousands (the first sweep after this shipped) drains over a few runs instead of one long one.
BATCH = 500


def close_observed(services: Services, correlation_id: str, limit: int = BATCH) -> int:
    """Close verified and compensated cases that sat longer than `policy.observationDays`; returns how many.
    Idempotent: a closed case is not stale in those statuses any more, and a refused commit is left for the
    next sweep (someone moved the case meanwhile)."""
    days = services.policy.observationDays
    cutoff = services.clock.now() - timedelta(days=days)
    # A case whose undo a person asked for is not closed under it: the sweep re-sends that undo's nudge instead
    # (sweep.reconcile), and the case settles compensated (or failed) when the undo answered.
    stale = services.store.stale([Status.verified.value, Status.compensated.value], cutoff)
    due = [o for o in stale if undo_requested(o) is None]
    # One asked for before the sweep read undos from their own record (or whose entry was dropped in a race with
    # its commit) is noted there again: otherwise a lost nudge would leave it verified for good.
    held = {o.id: o.updatedAt.isoformat() for o in stale if undo_requested(o) is not None}
    if held:
        note_undos(services, held)
    # updatedAt is the last change, so a recurrence or an undo request restarts the window: the newest
    # evidence on the case is what must have been watched for `days`.
    due = sorted(due, key=lambda o: o.updatedAt)[:limit]
    why = f"observation window of {days:g} days passed"
    commits = [step(services, o, [Status.closed], "sweep", why, correlation_id, **ended(o)) for o in due]
    results = services.store.commit_many(commits) if commits else []
    return sum(1 for r in results if r is None)
