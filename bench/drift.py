"""Drift at small volumes, simulated the way the sweep runs it: a clock, a sweep every 5 minutes reading
its window (shared/domain/drift.window_start) and calling drift.detect on it, 5-20 new executions per sweep.

drift_false_alarm_50_sweeps  runs with any alarm over 50 sweeps at a stable 2%, after 2 h of history (≤ 0.05)
drift_false_alarm_cold       the same from a cold start (no history: p0 from the prior until an hour has passed)
drift_false_alarm_at_10pct   the same for an action that fails 10% of the time (the alarm level follows p0)
drift_detected_by_10, _20    after 2 h at 2% the rate jumps to 30%: runs flagged by a sweep that ran when at most
                             10 (20) executions at 30% had happened, or right after the 10th (20th)
"""
from __future__ import annotations

import bisect
import json
import random
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.domain import drift

T0 = datetime(2026, 11, 26, 8, tzinfo=UTC)
SWEEP = timedelta(minutes=5)
ACTION = "leads.reassign"


class Run:
    """One action's executions in time order, and sweeps over them exactly as services/drift.check reads them."""

    def __init__(self, rng: random.Random, s: drift.Settings) -> None:
        self.rng, self.s = rng, s
        self.samples: list[drift.Sample] = []
        self.times: list[datetime] = []
        self.now = T0

    def interval(self, rate: float, per_sweep: tuple[int, int] = (5, 20)) -> list[drift.Sample]:
        """One 5-minute interval's executions (at uniform times), ending at the next sweep."""
        n = self.rng.randint(*per_sweep)
        ats = sorted(self.now + SWEEP * self.rng.random() for _ in range(n))
        new = [drift.Sample(ACTION, at, self.rng.random() < rate, False, None) for at in ats]
        self.samples += new
        self.times += ats
        self.now += SWEEP
        return new

    def sweep(self, at: datetime | None = None) -> bool:
        """Does the sweep at `at` (default: now) find drift, reading what executions_since would return?"""
        at = at or self.now
        first = bisect.bisect_left(self.times, drift.window_start(at, self.s))
        last = bisect.bisect_right(self.times, at)
        return bool(drift.detect(self.samples[first:last], at, self.s))


def false_alarms(runs: int = 400, sweeps: int = 50, history_sweeps: int = 24, rate: float = 0.02,
                 seed: int = 21, s: drift.Settings | None = None) -> float:
    """Share of runs with any alarm over `sweeps` sweeps at a stable `rate`."""
    rng, alarmed = random.Random(seed), 0
    for _ in range(runs):
        run = Run(rng, s or drift.Settings())
        for _ in range(history_sweeps):
            run.interval(rate)
        alarm = False
        for _ in range(sweeps):
            run.interval(rate)
            alarm = run.sweep() or alarm
        alarmed += alarm
    return alarmed / runs


def detection(runs: int = 400, by: Sequence[int] = (10, 20), before: float = 0.02, after: float = 0.30,
              history_sweeps: int = 24, seed: int = 22, s: drift.Settings | None = None) -> dict[int, float]:
    """Share of runs flagged by the time `by[i]` executions at the new rate have happened."""
    rng, flagged = random.Random(seed), dict.fromkeys(by, 0)
    for _ in range(runs):
        run = Run(rng, s or drift.Settings())
        for _ in range(history_sweeps):
            run.interval(before)
        seen, first_alarm = 0, None
        while first_alarm is None and seen < max(by):
            new = run.interval(after)
            for k in by:  # a sweep that ran right after the k-th execution at the new rate
                if seen < k <= seen + len(new) and run.sweep(new[k - seen - 1].at):
                    first_alarm = k if first_alarm is None else min(first_alarm, k)
            seen += len(new)
            if first_alarm is None and run.sweep():
                first_alarm = seen
        for k in by:
            flagged[k] += first_alarm is not None and first_alarm <= k
    return {k: flagged[k] / runs for k in by}


def run(runs: int = 1000) -> dict:
    """The figures `make bench` prints (seeded; ~1 minute)."""
    found = detection(runs)
    return {"drift_false_alarm_50_sweeps": false_alarms(runs),
            "drift_false_alarm_cold": false_alarms(runs, history_sweeps=0, seed=23),
            "drift_false_alarm_at_10pct": false_alarms(runs, rate=0.10, seed=24),
            "drift_detected_by_10": found[10], "drift_detected_by_20": found[20]}


if __name__ == "__main__":
    print(json.dumps(run()))
