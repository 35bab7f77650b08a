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
that the rate is above or below a policy threshold, so three rejections of four do not weigh like 300 of 400.

The verdict on an action version's primary KPI (`judge`, docs/learning.md): harmful, null, helpful, srm_mismatch or
not_enough_data, from one measurement row (impact.measure); harm also on the always-valid interval (sequential.py),
since the sweep looks every 5 minutes. Pure.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from . import sequential
from .policy import Learning
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
    """The calibration of one action version for one KPI, or None when nothing was expected (an expectation of 0)
    or nothing was measured: a se ≤ 0 or not finite (a cohort without variance, e.g. sla_met 1 on every case)."""
    # se 0 would give the ratio weight 1 in the shrinkage: one uninformative cohort would set the factor alone.
    if expected == 0 or expected_n == 0 or not math.isfinite(se) or se <= 0:
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


def _direction(row: dict[str, Any]) -> int | None:
    """+1 when a positive treated − control difference is an improvement, −1 when a negative one is; the policy's
    `better` decides, else the sign the miners expected; None when neither says."""
    if row.get("better") in ("lower", "higher"):
        return -1 if row["better"] == "lower" else 1
    change = (row.get("expected") or {}).get("change")
    return None if not change else (1 if change > 0 else -1)


def _figures(row: dict[str, Any]) -> str:
    ci = row["ci"]
    return (f"{row['metric']} {row['difference']:+.3g} [{ci['low']:.3g}, {ci['high']:.3g}] treated − control, "
            f"{row['treated']['n']}/{row['control']['n']} cases with an outcome")


def _srm_text(s: dict[str, Any], what: str) -> str:
    return (f"{what}: {s['treated']} treated / {s['control']} control against a {s['expectedControlShare']:.0%} "
            f"control share, p = {s['pValue']:.2g}")


def _equivalent(row: dict[str, Any], policy: Learning) -> tuple[bool, str] | None:
    """Whether the effect is shown smaller than ±nullMargin × |expected change| (its CI inside that band), and the
    band; None without an expected change. The CI is the one on the cases acted on when estimated: the
    expectation is about those cases, and an ITT diluted by a low share acted would look null too early."""
    change = (row.get("expected") or {}).get("change")
    if not change or policy.nullMargin is None:
        return None
    acted = (row.get("acted") or {}).get("ci")
    ci = acted or row["ci"]
    margin = policy.nullMargin * abs(float(change))
    inside = -margin <= ci["low"] and ci["high"] <= margin
    return inside, (f"the {'acted' if acted else 'ITT'} CI [{ci['low']:.3g}, {ci['high']:.3g}] "
                    f"{'lies' if inside else 'is not'} within ±{margin:.3g} ({policy.nullMargin:.0%} of the "
                    f"expected {float(change):+.3g})")


def judge(row: dict[str, Any], policy: Learning) -> dict[str, Any]:
    """The verdict on one primary-KPI measurement row: harmful, null, helpful, srm_mismatch or not_enough_data,
    why (with the figures), whether it was measured (status ok), which side a significant effect is on, warnings."""
    if row["status"] != "ok":
        return {"verdict": "not_enough_data", "why": row.get("reason") or "not measured yet", "measured": False,
                "side": None, "warnings": []}
    t, c = row["treated"]["n"], row["control"]["n"]
    # Only the draw gates the verdict: an action that slows closure leaves fewer treated cases with an outcome, so
    # an outcome-count mismatch is what harm itself can cause; gating on it would let that action escape the
    # freeze. It is a warning instead. An unchecked draw (no holdout recorded with it) does not block either:
    # freezing to approval is the safe side, and old draws would otherwise never be judged.
    drawn = row.get("srmAssigned")
    if drawn is not None and drawn.get("mismatch"):
        return {"verdict": "srm_mismatch", "measured": True, "side": None, "warnings": [],
                "why": f"sample ratio mismatch ({_srm_text(drawn, 'draws')}): the comparison is not trusted"}
    outcomes = row.get("srm")
    warnings = []
    if outcomes is not None and outcomes.get("mismatch"):
        warnings.append(f"outcome counts mismatch ({_srm_text(outcomes, 'cases with an outcome')}): one cohort's "
                        "outcomes arrive less often, which the action itself may cause; the comparison may be biased")
    said = "".join(f"; warning: {w}" for w in warnings)
    figures = _figures(row)
    given = row.get("se")
    se = float(given) if given is not None else (row["ci"]["high"] - row["ci"]["low"]) / 3.92
    if not (math.isfinite(se) and se > 0):  # e.g. sla_met 1 on every case: no variance, so nothing is significant
        return {"verdict": "not_enough_data", "measured": True, "side": None, "warnings": warnings,
                "why": f"no variance measured (se {se:g}): the outcomes are all alike, so no effect can be judged: "
                       f"{figures}{said}"}
    d = _direction(row)
    side = None if not row.get("significant") or d is None else ("helpful" if row["difference"] * d > 0
                                                                    else "harmful")
    out: dict[str, Any] = {"measured": True, "side": side, "warnings": warnings}
    if side == "harmful":
        if min(t, c) < policy.harmMinCases:
            return {**out, "verdict": "not_enough_data",
                    "why": f"harmful direction, judged at {policy.harmMinCases} cases per cohort: {figures}{said}"}
        # The sweep re-judges every 5 minutes: on the fixed 95% CI a no-effect action was frozen in ~15% of seeded
        # runs over 100 looks, 1.4% on the always-valid interval (tests/unit/test_sequential.py).
        low, high = sequential.interval(row["difference"], se, sequential.effective_n(t, c))
        always = f"always-valid 95% interval [{low:.3g}, {high:.3g}]"
        if (high < 0) if d == 1 else (low > 0):  # beyond zero on the harmful side
            # with a warning too: freezing to approval is the safe side
            return {**out, "verdict": "harmful", "why": f"harmful on the {always}: {figures}{said}"}
        return {**out, "verdict": "not_enough_data", "why": f"harmful direction, but the {always} (harm is judged "
                f"on it, valid however often the sweep looks) still includes zero: {figures}{said}"}
    if side == "helpful":
        return {**out, "verdict": "helpful", "why": f"helpful: {figures}{said}"}
    if not row.get("significant"):
        if min(t, c) < policy.nullAfterCases:
            return {**out, "verdict": "not_enough_data", "why": f"no effect told apart from zero yet (null at "
                    f"{policy.nullAfterCases} per cohort): {figures}{said}"}
        band = _equivalent(row, policy)
        if band is None:  # no margin set, or nothing expected: "not told apart from zero" after enough cases
            return {**out, "verdict": "null", "why": f"no effect told apart from zero: {figures}{said}"}
        if band[0]:
            return {**out, "verdict": "null",
                    "why": f"no effect told apart from zero, and {band[1]}: {figures}{said}"}
        return {**out, "verdict": "not_enough_data", "why": f"not told apart from zero, but {band[1]}: no "
                f"evidence of no effect yet: {figures}{said}"}
    return {**out, "verdict": "not_enough_data",
            "why": f"changed, but neither the policy nor the miners say which way is better: {figures}{said}"}
