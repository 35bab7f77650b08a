"""Offsets of Celonis event subscriptions: the highest one seen, and the ranges that never arrived.

Celonis numbers the events of a subscription by `offset`, "the position of the event in the subscription queue"
(developer.celonis.com, Event Subscription API); consecutive events have consecutive offsets. An offset more than
one past the highest seen means events were lost on the way (a SKIP_ERRORS subscription drops what failed): the
range in between is recorded as missing until a replay from Celonis fills it. A lower offset is a redelivery, or a
replayed one filling a missing range. The first offset seen opens the record: what came before it is unknown. A
restart (far below the highest, or 0 again) or a jump (over a million past it) opens it again there.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Missing ranges kept per subscription, newest last: an operator replays from the oldest; past 20 the oldest are
# dropped (their incidents stay), so a flapping subscription cannot grow its record past one state row.
MAX_MISSING = 20
# Offsets are whole numbers from 0 below 2^53: past it a JSON reader (JavaScript's, Power Automate's) rounds them,
# and one offset of 2^64 - 1 once left every later event "redelivered" for good.
MAX_OFFSET = 2**53
# A restart rather than a redelivery: an offset more than 10,000 below the highest (a replay an operator starts goes
# back to the missing ranges, at most 20 of them, not that far), or 0 once the highest passed 1,000 (a subscription
# recreated in Celonis counts from 0 again; early on, 0 is the first event redelivered).
RESTART_DROP = 10_000
RESTART_FROM_ZERO = 1_000
# A jump rather than lost events: more than a million past the highest (a million events lost between two
# deliveries is a queue that was reset, or an offset that is wrong; either way a gap that size names nothing an
# operator could replay).
MAX_JUMP = 1_000_000


@dataclass(frozen=True, slots=True)
class Delivery:
    """One subscription event as received: its subscription, offset (None when Celonis sent none), creation time,
    and where that time sits in the body (a JSON Pointer, for a refusal to name)."""

    subscription: str
    offset: int | None
    at: datetime
    where: str = "/creationDate"


def _missing(doc: dict[str, Any] | None) -> list[list[int]]:
    return [list(r) for r in (doc or {}).get("missing") or ()]


def is_new(doc: dict[str, Any] | None, offset: int) -> bool:
    """Has the subscription's record not seen `offset` yet (above the highest, or in a missing range)?"""
    highest = (doc or {}).get("highestOffset")
    return highest is None or offset > highest or any(lo <= offset <= hi for lo, hi in _missing(doc))


def _fill(missing: list[list[int]], offset: int) -> bool:
    for k, (lo, hi) in enumerate(missing):
        if lo <= offset <= hi:
            missing[k:k + 1] = [r for r in ([lo, offset - 1], [offset + 1, hi]) if r[0] <= r[1]]
            return True
    return False


def reset(highest: int, offset: int) -> bool:
    """Is `offset` after `highest` a restart or a jump (the record starts over there) rather than a redelivery or
    a gap?"""
    return offset < highest - RESTART_DROP or (offset == 0 and highest > RESTART_FROM_ZERO) or \
        offset - highest > MAX_JUMP


def advance(doc: dict[str, Any] | None, source: str, subscription: str, deliveries: Sequence[Delivery],
            now: datetime) -> tuple[dict[str, Any], list[tuple[int, int]], list[tuple[int, int]]]:
    """The subscription's record once `deliveries` were ingested, the offset ranges they show missing, and the
    restarts and jumps (highest before, offset after) that started the record over.

    Lowers the highest offset only on a restart: a redelivered or out-of-order offset is counted, nothing else."""
    out = dict(doc or {"source": source, "subscription": subscription, "highestOffset": None, "events": 0,
                       "redelivered": 0, "gaps": 0, "missing": []})
    missing, found, resets = _missing(out), [], []
    highest = out.get("highestOffset")
    # Sorted: a batch holding 43 before 42 lost nothing.
    for offset in sorted({d.offset for d in deliveries if d.offset is not None}):
        if highest is None or offset == highest + 1:
            highest = offset
        elif reset(highest, offset):
            # The old ranges belong to the old numbering: their incidents stay, the record starts over.
            resets.append((highest, offset))
            missing, highest = [], offset
        elif offset > highest:
            found.append((highest + 1, offset - 1))
            missing.append([highest + 1, offset - 1])
            highest = offset
        elif not _fill(missing, offset):
            out["redelivered"] = out.get("redelivered", 0) + 1
            continue
        out["events"] = out.get("events", 0) + 1
    out["events"] += sum(1 for d in deliveries if d.offset is None)
    latest = max(d.at for d in deliveries) if deliveries else None
    before = out.get("lastEventAt")
    if latest is not None and (before is None or latest > datetime.fromisoformat(before)):
        out["lastEventAt"] = latest.isoformat()
    out.update(highestOffset=highest, gaps=out.get("gaps", 0) + len(found), missing=missing[-MAX_MISSING:],
               lastReceivedAt=now.isoformat())
    if resets:
        out["resets"] = out.get("resets", 0) + len(resets)
    return out, found, resets


def _bounded(parts: list[str]) -> list[str]:
    if len(parts) <= MAX_MISSING:
        return parts
    half = MAX_MISSING // 2
    return [*parts[:half], f"… {len(parts) - 2 * half} more …", *parts[-half:]]


def restarts(resets: Sequence[tuple[int, int]]) -> str:
    """`restarted at 0 after 60000, jumped from 2 to 3000000`: what an incident says of a record started over."""
    return ", ".join(_bounded([f"restarted at {to} after {was}" if to < was else f"jumped from {was} to {to}"
                               for was, to in resets]))


def spans(ranges: Sequence[tuple[int, int]]) -> str:
    """`offset 7`, `offsets 41..44`, `offsets 41..44, 46`: what an incident names for an operator to replay. Past
    MAX_MISSING ranges only the first and last ten are named (one request skipping every other offset named 999,
    and raised an incident and a Teams card for each)."""
    parts = _bounded([str(lo) if lo == hi else f"{lo}..{hi}" for lo, hi in ranges])
    single = len(ranges) == 1 and ranges[0][0] == ranges[0][1]
    return ("offset " if single else "offsets ") + ", ".join(parts)
