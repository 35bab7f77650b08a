"""Treated-vs-control statistics: Welch's t interval and a percentile bootstrap, with no SciPy.

Both compare two independent samples (one value per case) and answer the difference of means
(treated − control), its 95% confidence interval and a two-sided p-value. docs/measurement.md says
which one a metric gets and why.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256

WELCH, BOOTSTRAP = "welch", "bootstrap"
BOOTSTRAP_ROUNDS = 4000
# Above this sample skewness (either cohort) a mean's sampling distribution is far from normal at the
# sample sizes operations teams have, and Welch's interval under-covers: the bootstrap is used instead.
SKEWED = 1.0


@dataclass(frozen=True, slots=True)
class Estimate:
    difference: float
    low: float
    high: float
    p_value: float
    method: str
    df: float | None = None


def mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def variance(xs: Sequence[float]) -> float:
    """Sample variance (n − 1)."""
    m = mean(xs)
    return math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def skewness(xs: Sequence[float]) -> float:
    """Sample skewness g1; 0 for a constant sample."""
    m, n = mean(xs), len(xs)
    m2 = math.fsum((x - m) ** 2 for x in xs) / n
    if m2 == 0:
        return 0.0
    return math.fsum((x - m) ** 3 for x in xs) / n / m2 ** 1.5


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| ≥ |t|) for Student's t with `df` degrees of freedom."""
    return betainc(df / 2, 0.5, df / (df + t * t))


def t_quantile(q: float, df: float) -> float:
    """The q-quantile (q > 0.5) of Student's t, by bisection on the two-sided tail."""
    tail = 2 * (1 - q)
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > tail:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if t_two_sided_p(mid, df) > tail:
            low = mid
        else:
            high = mid
        if high - low < 1e-12:
            break
    return (low + high) / 2


def welch(treated: Sequence[float], control: Sequence[float], level: float = 0.95) -> Estimate:
    """Welch's unequal-variance t interval for mean(treated) − mean(control); each needs ≥ 2 values."""
    n1, n2 = len(treated), len(control)
    diff = mean(treated) - mean(control)
    a, b = variance(treated) / n1, variance(control) / n2
    se = math.sqrt(a + b)
    if se == 0:
        return Estimate(diff, diff, diff, 1.0 if diff == 0 else 0.0, WELCH, None)
    df = (a + b) ** 2 / ((a * a / (n1 - 1) if a else 0.0) + (b * b / (n2 - 1) if b else 0.0))
    half = t_quantile(1 - (1 - level) / 2, df) * se
    return Estimate(diff, diff - half, diff + half, t_two_sided_p(diff / se, df), WELCH, df)


def bootstrap(treated: Sequence[float], control: Sequence[float], level: float = 0.95,
              rounds: int = BOOTSTRAP_ROUNDS, seed: str = "") -> Estimate:
    """Percentile bootstrap of the difference of means, resampling each cohort on its own.

    Seeded from `seed` and the data, so the same figures come back on every read of the same data.
    The p-value is twice the share of resampled differences on the far side of zero.
    """
    import numpy as np  # lazily: only a KPI read pays for it

    t, c = np.asarray(treated, dtype=float), np.asarray(control, dtype=float)
    digest = sha256(seed.encode() + t.tobytes() + c.tobytes()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    diffs = (rng.choice(t, (rounds, t.size)).mean(axis=1) - rng.choice(c, (rounds, c.size)).mean(axis=1))
    alpha = (1 - level) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    diff = float(t.mean() - c.mean())
    if diff == 0 and low == high:
        p = 1.0
    else:
        far = min(float((diffs <= 0).mean()), float((diffs >= 0).mean()))
        p = min(1.0, 2 * far)
    return Estimate(diff, float(low), float(high), p, BOOTSTRAP)


def is_binary(xs: Sequence[float]) -> bool:
    return all(x in (0.0, 1.0) for x in xs)


def choose(method: str, treated: Sequence[float], control: Sequence[float]) -> str:
    """"auto": Welch for 0/1 metrics and near-symmetric samples, the bootstrap for skewed ones."""
    if method != "auto":
        return method
    if is_binary(treated) and is_binary(control):
        return WELCH
    if max(abs(skewness(treated)), abs(skewness(control))) > SKEWED:
        return BOOTSTRAP
    return WELCH


def compare(treated: Sequence[float], control: Sequence[float], method: str = "auto", seed: str = "") -> Estimate:
    """The treated-vs-control estimate by the method asked for (see `choose`)."""
    chosen = choose(method, treated, control)
    if chosen == BOOTSTRAP:
        return bootstrap(treated, control, seed=seed)
    return welch(treated, control)
