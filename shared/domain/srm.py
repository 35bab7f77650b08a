"""Sample-ratio check: do the cohorts hold the shares the draw gave them?

The holdout draws each case into control with probability `holdout` (a hash, domain/cohort.py), so the counts
of treated and control cases follow a binomial. When a readout's counts stray from that (outcomes lost more in
one cohort, a feed that drops held-out cases), the comparison is biased and says nothing about the action:
Pearson's chi-square goodness of fit (df 1) against the drawn shares, with p < 0.001 called a mismatch, as
Microsoft's experimentation platform does (Fabijan et al., KDD 2019). Pure.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# p below this is a sample ratio mismatch: at 0.001 a sound experiment is flagged once in 1,000 readouts.
MISMATCH_P = 0.001


@dataclass(frozen=True, slots=True)
class Srm:
    treated: int
    control: int
    expectedControlShare: float
    chi2: float
    pValue: float

    @property
    def ok(self) -> bool:
        return self.pValue >= MISMATCH_P

    def to_dict(self) -> dict[str, object]:
        return {"treated": self.treated, "control": self.control,
                "expectedControlShare": round(self.expectedControlShare, 6),
                "chi2": round(self.chi2, 4) if math.isfinite(self.chi2) else None,
                "pValue": round(self.pValue, 6), "mismatch": not self.ok}


def check(treated: int, control: int, holdout_percent: float) -> Srm:
    """The chi-square test of `treated`/`control` counts against a `holdout_percent` control share."""
    share = holdout_percent / 100.0
    n = treated + control
    if n == 0 or share <= 0.0 or share >= 1.0:
        # No draw to compare with (nobody held out, or everybody): nothing can mismatch.
        mismatch = n > 0 and ((share <= 0.0 and control > 0) or (share >= 1.0 and treated > 0))
        return Srm(treated, control, share, math.inf if mismatch else 0.0, 0.0 if mismatch else 1.0)
    expected_c, expected_t = n * share, n * (1.0 - share)
    chi2 = (control - expected_c) ** 2 / expected_c + (treated - expected_t) ** 2 / expected_t
    # The chi-square survival function with one degree of freedom: P(X > x) = erfc(sqrt(x / 2)).
    return Srm(treated, control, share, chi2, math.erfc(math.sqrt(chi2 / 2.0)))
