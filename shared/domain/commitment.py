"""The weekly commitment's rules: ISO weeks, one item per group or opportunity, and what became of it."""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from .status import FINISHED, Status

Outcome = Literal["done", "inFlight", "stuck"]
OUTCOMES: tuple[Outcome, ...] = ("done", "inFlight", "stuck")
MAX_ITEMS = 50
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
# Waiting on data, on a person's review, or failed: nobody's work moves it on by itself.
_STUCK = frozenset({Status.failed, Status.needs_review, Status.needs_data, Status.rejected})


def parse_week(text: object) -> str:
    """The ISO week `text` names ("2026-W49"), normalised; ValueError when it is no such week."""
    m = _WEEK.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError("an ISO week such as 2026-W49")
    year, week = int(m.group(1)), int(m.group(2))
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"{year} has no week {week}") from None
    return f"{year:04d}-W{week:02d}"


def current_week(now: datetime) -> str:
    year, week, _ = now.astimezone(UTC).isocalendar()
    return f"{year:04d}-W{week:02d}"


def week_end(week: str) -> datetime:
    """The first instant after the week (Monday 00:00 UTC of the next one)."""
    year, number = int(week[:4]), int(week[6:])
    return datetime.combine(date.fromisocalendar(year, number, 1), datetime.min.time(), UTC) + timedelta(days=7)


def item_key(item: dict[str, Any]) -> tuple[str, ...]:
    """What makes two items the same commitment: the opportunity, or the group (names compared without case)."""
    if item["kind"] == "opportunity":
        return ("opportunity", item["opportunityId"])
    return ("group", item["processArea"].casefold(), item["deviationPattern"].casefold())


def merged(existing: Sequence[dict[str, Any]], incoming: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The week's items with `incoming` added: an item committed again replaces the earlier one, in its place."""
    items = {item_key(i): i for i in existing}
    for item in incoming:
        items[item_key(item)] = item
    return list(items.values())


def outcome(status: str, updated_at: datetime, now: datetime, sla_hours: float) -> Outcome:
    """Stuck (failed, rejected, waiting on a person or data, or on an approval past its SLA), done (finished),
    else in flight."""
    # A rejected plan is finished for the backlog but not done for whoever committed to the work.
    if status in _STUCK or (status == Status.awaiting_approval and now - updated_at > timedelta(hours=sla_hours)):
        return "stuck"
    return "done" if status in FINISHED else "inFlight"


def tally(outcomes: Iterable[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    for o in outcomes:
        counts[o] += 1
    return counts
