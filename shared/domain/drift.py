"""Drift: is an action failing, breaching or guessing more now than it used to?

Failure and breach (rollback) rates, at any volume: a Bernoulli CUSUM (Page 1954; Reynolds & Stoumbos 1999)
over the action's executions in time order. p0 is the baseline's rate (executions before the last
`recentMinutes`) under a weak Beta prior, never below `minBaselineRate`; p1 = p0 + `shift`. A failure adds
log(p1/p0), a success log((1-p1)/(1-p0)), rounded to a lattice; the statistic is the largest sum over the
last n executions, n up to `longestRun`: "these last n ran at p1, not p0". The sweep recomputes it from
scratch every 5 minutes (stateless) and alarms when it stands at the alarm level h now: a burst that has
decayed by the next sweep does not count, so overlapping windows do not re-scan the same history. h is set
per p0 from the statistic's stationary distribution, so that a stable action stands above it at a given
sweep with probability `falseAlarmPerSweep`: an action that usually fails 10% is held to the same rate.

Measured by bench/drift.py, simulating the sweep (its windows, 5-20 new executions per sweep, seeded, 1,000
runs, ±1.2 points): at a stable 2%, 4.0% of runs raise a false alarm over 50 sweeps after 2 h of history (3.8%
from a cold start; 5.2% for an action stable at 10%); after a jump from 2% to 30%, 53% of runs are flagged by
the 10th execution at 30% and 82% by the 20th (62% and 88% after a day of history rather than 2 h: p0 is known
better). 10 executions carry little information: 3+ failures in 10 at 30% happen 62% of the time. 3 failures
in the last 10 after a long 2% history alarm in any order (5.78 ≥ 5.47 in the worst, failures first); 2 never
do (5.43). The price: 0.08% of a stable 2% action's sweeps alarm, about one freeze per action per 4 days at
this volume (a freeze sends plans to a person; a person lifts it).

Busy actions keep two tests of their own: the ok/failed/breached mix by chi-square of the 2×3 table (df 2,
13.82 at p = 0.001, only when every expected count is ≥ 5) and the planner's confidence by a one-sided Welch
z, each only with `minRecent` recent and `minBaseline` baseline executions and a practically large change.
Pure: the sweep gathers the executions and acts on what this returns.
"""
from __future__ import annotations

import bisect
import functools
import itertools
import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Settings:
    # Floats, counts included: they come from Policy.drift, which holds numbers as floats (policy.py).
    recentMinutes: float = 60  # executions before this are the baseline p0 is estimated from
    baselineHours: float = 24
    minRecent: float = 20  # the chi-square mix and confidence tests only
    minBaseline: float = 50
    zThreshold: float = 3.09  # confidence: one false alarm in ~1,000 tests of a stable action
    minIncrease: float = 0.10  # the smallest shift in the outcome mix worth a freeze
    minConfidenceDrop: float = 0.10
    # The CUSUM of failure and breach rates. shift: p1 = p0 + shift, the change it is tuned to catch fastest:
    # the 2% -> 30% (a smaller shift catches 2% -> 12% sooner and a jump to 30% later).
    shift: float = 0.28
    # The alarm level h is set, per p0, where a stable action's statistic stands at or above it at a given
    # sweep with this probability: 0.0015 is the least that keeps 3 failures in the last 10 after a 2% history
    # alarming (they score 5.78, in the worst order; 2 in a row score 5.43 and stand above 0.15% of the time).
    falseAlarmPerSweep: float = 0.0015
    # The run it weighs reaches back at most this many executions (a window-limited CUSUM): without the
    # limit 4 failures in 19 and 5 in 28 also alarm at 2%: 1.3 times the false alarms for 3 points of detection.
    longestRun: float = 15
    # A weak prior, 10 executions at 2%: a new action's first failure does not make p0 = 100%.
    priorRate: float = 0.02
    priorWeight: float = 10
    # An estimated p0 of 0.5% (0 failures in 100 at a true 2%: 13% likely) would make 2 failures alarm:
    # rates below 2% count as 2%; a jump to 30% is still caught as fast.
    minBaselineRate: float = 0.02


MAX_LEVEL = 20.0  # nats: no stable action's CUSUM stands this high (under e^-20 of sweeps)
_at, _action, _failed, _breached = (operator.attrgetter(f) for f in ("at", "actionId", "failed", "breached"))
_action_at = operator.attrgetter("actionId", "at")


@dataclass(frozen=True, slots=True)
class Sample:
    """One finished execution of an action, as drift sees it."""

    actionId: str
    at: datetime
    failed: bool
    breached: bool
    confidence: float | None


@dataclass(frozen=True, slots=True)
class Signal:
    actionId: str
    metric: str  # failure_rate, breach_rate, outcomes, confidence
    recent: float  # the rate (or share shift, or mean confidence) behind the signal
    baseline: float  # p0, or the baseline's mean confidence
    n_recent: int  # executions in the alarming run (rates) or the recent window
    n_baseline: int
    z: float  # the CUSUM (rates, nats), chi-square (outcomes) or Welch z (confidence)
    level: float = 0.0  # the CUSUM's alarm level for this p0 (rates)

    def describe(self) -> str:
        if self.metric == "outcomes":
            return (f"{self.actionId}: outcome mix shifted by {self.recent:.0%} "
                    f"(n={self.n_baseline}→{self.n_recent}, chi²={self.z:.1f})")
        if self.metric == "confidence":
            return (f"{self.actionId}: planner confidence {self.baseline:.2f} → {self.recent:.2f} "
                    f"(n={self.n_baseline}→{self.n_recent}, z={self.z:.1f})")
        return (f"{self.actionId}: {self.metric} {self.baseline:.1%} → {self.recent:.1%} over its last "
                f"{self.n_recent} executions (baseline of {self.n_baseline}; CUSUM {self.z:.2f} ≥ {self.level:.2f})")


def in_control_rate(k: int, n: int, s: Settings = Settings()) -> float:
    """p0: the baseline's rate under the weak prior, never below `minBaselineRate`, to 3 decimals (the
    alarm level is computed once per p0; a baseline of 2,000 executions has an se of 0.003 at 2%)."""
    p0 = max(s.minBaselineRate, (k + s.priorRate * s.priorWeight) / (n + s.priorWeight))
    return min(max(round(p0, 3), 0.001), 0.99)


STEPS = 16  # one success is -16 units: rounding moves the 3-in-10 score by under 0.1 (Reynolds & Stoumbos)


def weights(p0: float, p1: float) -> tuple[int, int, float]:
    """The CUSUM's steps in whole units, a failure +a, a success -b, and the unit in nats: the log-likelihood
    ratio of p1 against p0 rounded, so that the statistic lives on a lattice its distribution is exact on."""
    unit = math.log((1 - p0) / (1 - p1)) / STEPS
    return max(1, round(math.log(p1 / p0) / unit)), STEPS, unit


@functools.lru_cache(maxsize=512)
def alarm_level(p0: float, a: int, b: int, alpha: float, cap: int) -> int:
    """The lowest level (units) a stable action's CUSUM reaches at a given sweep with probability <= alpha:
    its stationary distribution, iterated on the lattice from 0 (Brook & Evans 1972), levels up to `cap`."""
    import numpy as np  # lazily: only a sweep with executions pays for it, once per p0

    n = cap + 1
    pi = np.zeros(n)
    pi[0] = 1.0
    for _ in range(100_000):
        nxt = np.zeros(n)
        nxt[0] = (1 - p0) * pi[:b + 1].sum()
        nxt[1:n - b] += (1 - p0) * pi[b + 1:]
        nxt[a:] += p0 * pi[:n - a]
        nxt[n - 1] += p0 * pi[n - a:].sum()
        done = float(np.abs(nxt - pi).sum()) < 1e-13
        pi = nxt
        if done:
            break
    tail = np.cumsum(pi[::-1])[::-1]  # tail[i] = P(statistic >= i)
    below = np.nonzero(tail <= alpha)[0]
    return int(below[0]) if below.size else cap


def cusum(flags: Sequence[bool], a: int, b: int, longest: int | None = None) -> tuple[int, int, int]:
    """Page's CUSUM at the last flag, in units (a failure +a, a success -b, floored at 0): the largest sum over
    any suffix, with that run's length and failures (the shortest such run: since it last stood at 0).
    Read backwards, stopping where no earlier start could win (at 2%: ~100 executions back, not 10,000)."""
    left = sum(flags)
    total = best = n_best = k_best = k = 0
    for n, flag in enumerate(reversed(flags), 1):
        if flag:
            total, k, left = total + a, k + 1, left - 1
        else:
            total -= b
        if total > best:
            best, n_best, k_best = total, n, k
        if total + a * left <= best or n == longest:
            break
    return best, n_best, k_best


def rate_signal(action: str, metric: str, flags: Sequence[bool], n_base: int, k_base: int,
                s: Settings = Settings()) -> Signal | None:
    """The CUSUM signal of one rate over an action's executions in order (the first `n_base` are the baseline)."""
    p0 = in_control_rate(k_base, n_base, s)
    p1 = min(p0 + s.shift, (1 + p0) / 2)  # an action failing 80% of the time still has a p1 below 1
    a, b, unit = weights(p0, p1)
    score, n, k = cusum(flags, a, b, int(s.longestRun) if s.longestRun else None)
    if score == 0:
        return None
    level = alarm_level(p0, a, b, s.falseAlarmPerSweep, math.ceil(MAX_LEVEL / unit))
    return Signal(action, metric, k / n, p0, n, n_base, score * unit, level * unit) if score >= level else None


def window_start(now: datetime, s: Settings = Settings()) -> datetime:
    """The oldest execution the check reads."""
    return now - timedelta(minutes=s.recentMinutes) - timedelta(hours=s.baselineHours)


def mean_drop_z(recent: Sequence[float], base: Sequence[float]) -> float:
    """One-sided Welch z: large when the recent mean is below the baseline's."""
    def mv(xs: Sequence[float]) -> tuple[float, float]:
        m = sum(xs) / len(xs)
        return m, sum((x - m) ** 2 for x in xs) / max(1, len(xs) - 1)
    (mr, vr), (mb, vb) = mv(recent), mv(base)
    se = math.sqrt(vr / len(recent) + vb / len(base))
    if se == 0:
        return math.inf if mb > mr else 0.0
    return (mb - mr) / se


CHI2_DF2_P001 = 13.816


def outcome_chi2(recent: Sequence[Sample], base: Sequence[Sample]) -> tuple[float, float] | None:
    """(chi-square of the ok/failed/breached mix, largest share shift), or None when a cell is too sparse."""
    rows = []
    for xs in (recent, base):
        breached = sum(map(_breached, xs))
        failed = sum(map(operator.gt, map(_failed, xs), map(_breached, xs)))  # failed and not breached
        rows.append([len(xs) - failed - breached, failed, breached])
    n = [sum(r) for r in rows]
    cols = [rows[0][j] + rows[1][j] for j in range(3)]
    total = sum(n)
    chi = 0.0
    for i in range(2):
        for j in range(3):
            expected = n[i] * cols[j] / total
            if cols[j] == 0:
                continue
            if expected < 5:
                return None
            chi += (rows[i][j] - expected) ** 2 / expected
    shift = max(abs(rows[0][j] / n[0] - rows[1][j] / n[1]) for j in range(3))
    return chi, shift


def _busy(action: str, recent: list[Sample], base: list[Sample], s: Settings) -> list[Signal]:
    if len(recent) < s.minRecent or len(base) < s.minBaseline:
        return []
    signals = []
    chi = outcome_chi2(recent, base)
    if chi is not None and chi[0] >= CHI2_DF2_P001 and chi[1] >= s.minIncrease:
        signals.append(Signal(action, "outcomes", chi[1], 0.0, len(recent), len(base), chi[0]))
    c_r = [x.confidence for x in recent if x.confidence is not None]
    c_b = [x.confidence for x in base if x.confidence is not None]
    if len(c_r) >= s.minRecent and len(c_b) >= s.minBaseline:
        z = mean_drop_z(c_r, c_b)
        drop = sum(c_b) / len(c_b) - sum(c_r) / len(c_r)
        if z >= s.zThreshold and drop >= s.minConfidenceDrop:
            signals.append(Signal(action, "confidence", sum(c_r) / len(c_r), sum(c_b) / len(c_b),
                                  len(c_r), len(c_b), z))
    return signals


def detect(samples: Iterable[Sample], now: datetime, s: Settings = Settings(),
           since: Mapping[str, datetime] | None = None) -> list[Signal]:
    """Every drift signal, per action, over its executions in the window; `since` an action's freeze was
    lifted by a person, only its executions after that count (the evidence that froze it was judged)."""
    recent_from, start = now - timedelta(minutes=s.recentMinutes), window_start(now, s)
    cutoffs = since or {}
    signals = []
    for action, group in itertools.groupby(sorted(samples, key=_action_at), key=_action):
        xs = list(group)
        first = bisect.bisect_left(xs, start, key=_at)
        if action in cutoffs:
            first = max(first, bisect.bisect_right(xs, cutoffs[action], key=_at))
        xs = xs[first:bisect.bisect_right(xs, now, key=_at)]
        n_base = bisect.bisect_left(xs, recent_from, key=_at)
        for metric, flags in (("failure_rate", list(map(_failed, xs))), ("breach_rate", list(map(_breached, xs)))):
            found = rate_signal(action, metric, flags, n_base, sum(flags[:n_base]), s)
            if found:
                signals.append(found)
        signals += _busy(action, xs[n_base:], xs[:n_base], s)
    return signals
