"""Echoes and recurrences: what a finding on a case the agent already acted on means.

A miner reads its event log on its own schedule (Celonis data jobs every few hours, Process Mining on a
refresh), so for a while after the agent acted it still reports the deviation the action fixed. Such a
finding, detected at most `policy.echoWindowHours` after the action's move to `executed`, is an **echo**:
counted on the opportunity, its event id remembered (a redelivery stays a duplicate), nothing else
changed: no rescoring, no new attributes, no status change, not even `revision` or `updatedAt` (the sweep
re-nudges cases by those, and an echo is no change of the case).

Later, on a **verified** case (or one closed after it was verified), the deviation came back: a
**recurrence**. Its detection time is recorded
(newest last, at most MAX_RECURRENCES), it counts as an occurrence, and a person is offered it on a review
card; the agent never acts on it by itself (no status change, no stage message). The miner keeps reporting
a deviation that is back, so a finding within the echo window after the last recorded recurrence is the same
recurrence seen again (`REPEAT`): counted as an occurrence, no second entry and no second card.

Any other case is merged as before: statuses the agent has not acted in (no move to `executed`), and after
the window the ones whose action did not end verified (`executing` again after a failure, `executed` with
the verification still pending, `compensated`, `failed`, `closed`): the watchdog or a person settles those,
and a finding there changes no status either.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from .opportunity import MAX_EVENT_IDS, Opportunity
from .status import Status

ECHO, RECURRENCE, REPEAT = "echo", "recurrence", "repeat"
MAX_RECURRENCES = 20
# Only these statuses can follow a move to `executed` (shared/domain/status.py): any other case skips the
# history scan, so ingest's merges of untouched cases cost what they did.
AFTER_ACTION = frozenset({Status.executing, Status.executed, Status.verified, Status.compensated, Status.failed,
                          Status.closed})


def acted_at(opp: Opportunity) -> datetime | None:
    """When the agent's action last reached the system of record: its latest move to `executed`."""
    if opp.status not in AFTER_ACTION:
        return None
    for entry in reversed(opp.history):
        if entry.get("to") == Status.executed.value:
            return datetime.fromisoformat(entry["at"])
    return None


def verified(opp: Opportunity) -> bool:
    """Verified, or closed after it was (services/escalations.py `ended` keeps the status it ended in)."""
    return opp.status is Status.verified or (
        opp.status is Status.closed and (opp.plan or {}).get("closedFrom") == Status.verified.value)


def classify(existing: Opportunity, incoming: Opportunity, window: timedelta) -> str | None:
    """ECHO, RECURRENCE or REPEAT for a new finding on `existing`, or None when it is an ordinary update.

    The finding's time is its detection time (the newest when a batch held several on the case), at most
    findings.MAX_AHEAD after the clock: ingest refuses later ones, since one dated 2099 would be the recurrence
    every real one until 2099 repeats."""
    acted = acted_at(existing)
    if acted is None:
        return None
    seen = incoming.lastDetectedAt
    if seen <= acted + window:
        return ECHO
    if not verified(existing):
        return None
    if existing.recurrences and seen <= datetime.fromisoformat(existing.recurrences[-1]) + window:
        return REPEAT
    return RECURRENCE


def apply(kind: str, existing: Opportunity, fresh: list[str], incoming: Opportunity, now: datetime) -> Opportunity:
    """`existing` with the `fresh` event ids of `incoming` folded in as an echo, a recurrence or a repeat."""
    events = (existing.sourceEventIds + fresh)[-MAX_EVENT_IDS:]
    if kind == ECHO:
        return replace(existing, sourceEventIds=events, echoes=existing.echoes + len(fresh))
    recurrences = existing.recurrences
    if kind == RECURRENCE:
        recurrences = [*recurrences, incoming.lastDetectedAt.isoformat()][-MAX_RECURRENCES:]
    return replace(existing, sourceEventIds=events, occurrences=existing.occurrences + len(fresh),
                   lastDetectedAt=max(existing.lastDetectedAt, incoming.lastDetectedAt), recurrences=recurrences,
                   revision=existing.revision + 1, updatedAt=now)
