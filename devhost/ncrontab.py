"""NCRONTAB (six fields, seconds first) as the Functions timer trigger reads it."""
from __future__ import annotations

from datetime import datetime, timedelta

_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


def _field(text: str, lo: int, hi: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step = part.partition("/")
        if body == "*":
            start, end = lo, hi
        elif "-" in body:
            a, b = body.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = end = int(body)
            if step:
                end = hi
        if not (lo <= start <= hi and lo <= end <= hi):
            raise ValueError(f"{part!r} is outside {lo}-{hi}")
        values.update(range(start, end + 1, int(step) if step else 1))
    return frozenset(values)


class Schedule:
    def __init__(self, expression: str):
        fields = expression.split()
        if len(fields) != 6:
            raise ValueError(f"NCRONTAB needs 6 fields (second minute hour day month weekday): {expression!r}")
        (self.seconds, self.minutes, self.hours, self.days, self.months,
         self.weekdays) = (_field(f, lo, hi) for f, (lo, hi) in zip(fields, _RANGES, strict=True))

    def next_after(self, moment: datetime) -> datetime:
        """The first matching second strictly after `moment` (searched within a year)."""
        t = moment.replace(microsecond=0) + timedelta(seconds=1)
        for _ in range(366 * 24 * 60):
            if (t.month in self.months and t.day in self.days and (t.weekday() + 1) % 7 in self.weekdays
                    and t.hour in self.hours and t.minute in self.minutes):
                for s in sorted(self.seconds):
                    if s >= t.second:
                        return t.replace(second=s)
            t = (t + timedelta(minutes=1)).replace(second=0)
        raise ValueError("schedule never fires")
