"""Drift: is an action failing, breaching or guessing more now than it used to?

Per action, the recent window (last `recentMinutes`) is compared with the baseline window before it
(`baselineHours`). Rates (failures; watchdog breaches) use a one-sided two-proportion z-test with the
pooled rate; the planner's confidence uses a one-sided Welch z on the means; the whole outcome mix
(ok, failed, breached) uses a chi-square test of the 2×3 table (df 2, 13.82 at p = 0.001), run only
when every expected count is at least 5 (below that the rate tests, which need no such rule, decide). A signal
counts only when both windows hold their minimum sample sizes, z reaches `zThreshold` (3.09: one false
alarm in ~1,000 tests of a stable action) and the change is practically large (`minIncrease` for rates,
`minConfidenceDrop` for confidence): a busy action must not freeze over a statistically real but trivial
wobble. Pure: the sweep gathers the executions and acts on what this returns.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Settings:
    # Floats, counts included: they come from Policy.drift, which holds numbers as floats (policy.py).
    recentMinutes: float = 60
    baselineHours: float = 24
    minRecent: float = 20
    minBaseline: float = 50
    zThreshold: float = 3.09
    minIncrease: float = 0.10
    minConfidenceDrop: float = 0.10


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
    metric: str  # failure_rate, breach_rate, confidence
    recent: float
    baseline: float
    n_recent: int
    n_baseline: int
    z: float

    def describe(self) -> str:
        if self.metric == "outcomes":
            return (f"{self.actionId}: outcome mix shifted by {self.recent:.0%} "
                    f"(n={self.n_baseline}→{self.n_recent}, chi²={self.z:.1f})")
        return (f"{self.actionId}: {self.metric} {self.baseline:.1%} → {self.recent:.1%} "
                f"(n={self.n_baseline}→{self.n_recent}, z={self.z:.1f})" if self.metric != "confidence" else
                f"{self.actionId}: planner confidence {self.baseline:.2f} → {self.recent:.2f} "
                f"(n={self.n_baseline}→{self.n_recent}, z={self.z:.1f})")


def rate_z(k_recent: int, n_recent: int, k_base: int, n_base: int) -> float:
    """One-sided two-proportion z (pooled): large when the recent rate is above the baseline's."""
    pooled = (k_recent + k_base) / (n_recent + n_base)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_recent + 1 / n_base))
    if se == 0:
        return 0.0
    return (k_recent / n_recent - k_base / n_base) / se


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


def _outcome(x: Sample) -> int:
    return 2 if x.breached else 1 if x.failed else 0


def outcome_chi2(recent: Sequence[Sample], base: Sequence[Sample]) -> tuple[float, float] | None:
    """(chi-square of the ok/failed/breached mix, largest share shift), or None when a cell is too sparse."""
    rows = [[0, 0, 0], [0, 0, 0]]
    for i, xs in enumerate((recent, base)):
        for x in xs:
            rows[i][_outcome(x)] += 1
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


def detect(samples: Iterable[Sample], now: datetime, s: Settings = Settings()) -> list[Signal]:
    """Every drift signal, per action, in the recent window against the baseline before it."""
    recent_from = now - timedelta(minutes=s.recentMinutes)
    base_from = recent_from - timedelta(hours=s.baselineHours)
    windows: dict[str, tuple[list[Sample], list[Sample]]] = {}
    for x in samples:
        if x.at >= recent_from and x.at <= now:
            windows.setdefault(x.actionId, ([], []))[0].append(x)
        elif base_from <= x.at < recent_from:
            windows.setdefault(x.actionId, ([], []))[1].append(x)
    signals = []
    for action, (recent, base) in sorted(windows.items()):
        if len(recent) < s.minRecent or len(base) < s.minBaseline:
            continue
        for metric, flag in (("failure_rate", "failed"), ("breach_rate", "breached")):
            k_r, k_b = sum(getattr(x, flag) for x in recent), sum(getattr(x, flag) for x in base)
            p_r, p_b = k_r / len(recent), k_b / len(base)
            z = rate_z(k_r, len(recent), k_b, len(base))
            if z >= s.zThreshold and p_r - p_b >= s.minIncrease:
                signals.append(Signal(action, metric, p_r, p_b, len(recent), len(base), z))
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
