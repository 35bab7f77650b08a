"""The sample-ratio check against scipy's chi-square test, and its error rates by seeded simulation."""
import random

import pytest
from scipy.stats import chisquare

from shared.domain import srm


@pytest.mark.parametrize("treated,control,holdout", [(900, 100, 10), (880, 120, 10), (4350, 650, 13),
                                                      (31, 2, 10), (10, 10, 50), (5, 0, 30)])
def test_srm_matches_scipy_chisquare(treated, control, holdout):
    got = srm.check(treated, control, holdout)
    n = treated + control
    ref = chisquare([control, treated], [n * holdout / 100, n * (1 - holdout / 100)])
    assert got.chi2 == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
    assert got.pValue == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-15)


def _draw(rng: random.Random, n: int, share: float) -> tuple[int, int]:
    control = sum(rng.random() < share for _ in range(n))
    return n - control, control


def test_balanced_draws_are_flagged_at_most_half_a_percent_of_the_time():
    rng = random.Random(22)
    flagged = sum(not srm.check(*_draw(rng, 5000, 0.10), 10).ok for _ in range(2000))
    assert flagged / 2000 <= 0.005


def test_a_13_percent_control_share_against_a_10_percent_draw_is_flagged_in_99_percent_of_runs():
    rng = random.Random(23)
    flagged = sum(not srm.check(*_draw(rng, 5000, 0.13), 10).ok for _ in range(500))
    assert flagged / 500 >= 0.99


def test_nobody_held_out_cannot_mismatch_unless_a_control_case_appears():
    assert srm.check(100, 0, 0).ok
    assert not srm.check(100, 3, 0).ok
    assert srm.check(0, 0, 10).ok


def test_a_control_case_where_nobody_was_held_out_serializes_as_json():
    import json

    doc = srm.check(100, 3, 0).to_dict()
    assert json.loads(json.dumps(doc, allow_nan=False))["chi2"] is None and doc["mismatch"] is True
