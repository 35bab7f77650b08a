"""What the loop learns from: a measured effect against what the miners expected, and people's answers as rates.

Calibration. For one action version × pattern × KPI the miners predicted a mean change `expected` (their `kpis`
entries on the cases the action ran on) and the control group measured `measured` with standard error `se`. The
calibration ratio is r = measured ÷ expected, with se(r) = se ÷ |expected|: the expectation is a fixed hypothesis
(the mean of what was reported), not an estimate with sampling error, so only the measured side is uncertain. The
factor a new opportunity's reported impact is multiplied by is r shrunk toward 1 (the miners are right until shown
otherwise) by a normal prior N(1, priorSd²): the posterior mean

    factor = 1 + w · (r − 1),   w = priorSd² ÷ (priorSd² + se(r)²),

clipped to [0, maxFactor]: an effect measured in the wrong direction makes the impact 0, never negative
(docs/scoring.md).

People's answers (approvals, rejections, "not helpful", recurrences) are counts k of n. Each is read as a Beta
posterior from a uniform prior, Beta(1 + k, 1 + n − k): its mean, a 90% credible interval and the probability
that the rate is above or below a policy threshold, so three rejections of four do not weigh like 300 of 400. Pure.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .stats import betainc

Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Calibration:
    """One action version × pattern × KPI: expected vs measured, the ratio with its 95% CI, and the shrunk factor."""

    processArea: str
    deviationPattern: str
    actionId: str
    actionVersion: int
    metric: str
    unit: str | None
    expected: float
    expectedN: int
    measured: float
    se: float
    treated: int
    control: int
    ratio: float
    ratioLow: float
    ratioHigh: float
    factor: float

    def describe(self) -> str:
        """'× 0.62: leads.escalate v1 measured −1.9 d vs −3.0 d expected, 362/42 cases'."""
        unit = _short(self.unit)
        return (f"× {self.factor:.2f}: {self.actionId} v{self.actionVersion} measured {_signed(self.measured)}{unit} "
                f"vs {_signed(self.expected)}{unit} expected, {self.treated}/{self.control} cases")

    def to_dict(self) -> dict[str, Any]:
        return {"processArea": self.processArea, "deviationPattern": self.deviationPattern,
                "actionId": self.actionId, "actionVersion": self.actionVersion, "metric": self.metric,
                "unit": self.unit, "expected": {"change": round(self.expected, 4), "n": self.expectedN},
                "measured": {"difference": round(self.measured, 4), "se": round(self.se, 6),
                             "treated": self.treated, "control": self.control},
                "ratio": {"value": round(self.ratio, 4), "low": round(self.ratioLow, 4),
                          "high": round(self.ratioHigh, 4), "level": 0.95},
                "factor": round(self.factor, 4), "text": self.describe()}


def _short(unit: str | None) -> str:
    if not unit:
        return ""
    return " d" if unit.casefold() in ("days", "day", "d") else f" {unit}"


def _signed(x: float) -> str:
    size = f"{abs(x):.1f}" if abs(x) >= 0.1 else f"{abs(x):.2g}"
    return f"{'−' if x < 0 else '+'}{size}"


def ratio(measured: float, se: float, expected: float) -> tuple[float, float]:
    """(measured ÷ expected, its standard error); the expectation is a fixed hypothesis, so se ÷ |expected|."""
    if expected == 0 or not math.isfinite(expected):
        raise ValueError("an expectation of 0 cannot be calibrated against")
    return measured / expected, se / abs(expected)


def shrink(r: float, se_r: float, prior_sd: float, max_factor: float) -> float:
    """The posterior mean of the ratio under a N(1, prior_sd²) prior, clipped to [0, max_factor]."""
    w = prior_sd * prior_sd / (prior_sd * prior_sd + se_r * se_r)
    return min(max(1.0 + w * (r - 1.0), 0.0), max_factor)


def calibrate(processArea: str, deviationPattern: str, actionId: str, actionVersion: int, metric: str,
              unit: str | None, expected: float, expected_n: int, measured: float, se: float, treated: int,
              control: int, prior_sd: float, max_factor: float) -> Calibration | None:
    """The calibration of one action version for one KPI, or None when nothing was expected (an expectation of 0)."""
    if expected == 0 or expected_n == 0 or not math.isfinite(se):
        return None
    r, se_r = ratio(measured, se, expected)
    return Calibration(processArea, deviationPattern, actionId, actionVersion, metric, unit, expected, expected_n,
                       measured, se, treated, control, r, r - Z95 * se_r, r + Z95 * se_r,
                       shrink(r, se_r, prior_sd, max_factor))


def beta_quantile(q: float, a: float, b: float) -> float:
    """The q-quantile of Beta(a, b), by bisection on the regularized incomplete beta function."""
    low, high = 0.0, 1.0
    for _ in range(100):
        mid = (low + high) / 2
        if betainc(a, b, mid) < q:
            low = mid
        else:
            high = mid
        if high - low < 1e-12:
            break
    return (low + high) / 2


@dataclass(frozen=True, slots=True)
class Rate:
    """k of n as a Beta(1 + k, 1 + n − k) posterior: mean and 90% credible interval."""

    k: int
    n: int

    @property
    def a(self) -> float:
        return 1.0 + self.k

    @property
    def b(self) -> float:
        return 1.0 + self.n - self.k

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)

    def interval(self, level: float = 0.9) -> tuple[float, float]:
        tail = (1 - level) / 2
        return beta_quantile(tail, self.a, self.b), beta_quantile(1 - tail, self.a, self.b)

    def p_above(self, x: float) -> float:
        """P(rate > x) under the posterior."""
        return 1.0 - betainc(self.a, self.b, x)

    def p_below(self, x: float) -> float:
        """P(rate < x) under the posterior."""
        return betainc(self.a, self.b, x)

    def to_dict(self) -> dict[str, Any]:
        low, high = self.interval()
        return {"k": self.k, "n": self.n, "mean": round(self.mean, 4),
                "interval": {"low": round(low, 4), "high": round(high, 4), "level": 0.9},
                "prior": "Beta(1, 1)"}
