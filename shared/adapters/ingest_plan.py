"""Store-independent bookkeeping of one ingest batch: fold in-batch repeats, then name each item's outcome."""
from __future__ import annotations

from collections.abc import Sequence

from ..domain.opportunity import Opportunity
from ..ports import IngestOutcome, IngestResult, MergeFn


def fold(incoming: Sequence[Opportunity], merge: MergeFn) -> dict[str, Opportunity]:
    """One pending opportunity per id: several findings on one case in a batch become one write."""
    pending: dict[str, Opportunity] = {}
    for opp in incoming:
        current = pending.get(opp.id)
        if current is None:
            pending[opp.id] = opp
        else:
            merged = merge(current, opp)
            if merged is not None:
                pending[opp.id] = merged
    return pending


def outcomes(incoming: Sequence[Opportunity], final: dict[str, Opportunity],
             known_events: dict[str, set[str] | None]) -> list[IngestResult]:
    """Per input item: created, updated, or duplicate (its event was already known).

    `known_events[id]` holds the event ids stored before this batch, or None if the id was new.
    """
    seen: dict[str, set[str]] = {}
    results = []
    for opp in incoming:
        before = known_events.get(opp.id)
        events = seen.get(opp.id)
        if events is None:
            events = seen[opp.id] = set(before) if before else set()
            first_new = before is None
        else:
            first_new = False
        event = opp.sourceEventIds[0]
        outcome: IngestOutcome
        if event in events:
            outcome = "duplicate"
        else:
            outcome = "created" if first_new else "updated"
            events.add(event)
        results.append(IngestResult(final[opp.id], outcome))
    return results
