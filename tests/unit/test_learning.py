"""Calibration (measured ÷ expected, shrunk toward 1) and people's answers as Beta posteriors: checked against scipy
and by seeded simulation; the calibrated impact in scoring and its rationale."""
import random

import pytest
from scipy.stats import beta

from shared.domain import learning, stats
from shared.domain.catalog import Action, Catalog
from shared.domain.policy import ScoringPolicy
from shared.domain.scoring import Calibrations, calibrated, score


@pytest.mark.parametrize("k,n", [(0, 0), (3, 4), (0, 12), (30, 40), (300, 400), (7, 1000)])
def test_rate_posterior_matches_scipy_beta(k, n):
    rate = learning.Rate(k, n)
    ref = beta(1 + k, 1 + n - k)
    low, high = rate.interval(0.9)
    assert (low, high) == pytest.approx(tuple(ref.ppf([0.05, 0.95])), abs=1e-7)
    assert rate.mean == pytest.approx(ref.mean())
    assert rate.p_above(0.3) == pytest.approx(ref.sf(0.3), abs=1e-9)
    assert rate.p_below(0.05) == pytest.approx(ref.cdf(0.05), abs=1e-9)


def test_three_rejections_of_four_weigh_less_than_three_hundred_of_four_hundred():
    few, many = learning.Rate(3, 4), learning.Rate(300, 400)
    assert few.p_above(0.3) < 0.99 < many.p_above(0.3)


def test_shrinkage_is_the_normal_posterior_mean_precision_weighted_toward_one():
    r, se_r, tau = 0.4, 0.3, 0.5
    posterior = (1 / tau**2 * 1.0 + 1 / se_r**2 * r) / (1 / tau**2 + 1 / se_r**2)
    assert learning.shrink(r, se_r, tau, 2.0) == pytest.approx(posterior)
    assert learning.shrink(0.4, 1e-6, tau, 2.0) == pytest.approx(0.4, abs=1e-6)  # precise evidence wins
    assert learning.shrink(0.4, 100.0, tau, 2.0) == pytest.approx(1.0, abs=1e-4)  # no evidence: as reported
    assert learning.shrink(-1.5, 0.01, tau, 2.0) == 0.0  # the wrong direction: worth nothing, never negative
    assert learning.shrink(9.0, 0.01, tau, 2.0) == 2.0


def test_calibration_ratio_interval_covers_the_true_ratio_in_95_percent_of_seeded_experiments():
    """Cycle time ~ N(9, 2); the action saves 2 days where the miners expected 3: the true ratio is 2/3."""
    rng = random.Random(21)
    runs, covered = 400, 0
    for _ in range(runs):
        treated = [rng.gauss(7.0, 2.0) for _ in range(120)]
        control = [rng.gauss(9.0, 2.0) for _ in range(40)]
        e = stats.welch(treated, control)
        se = (e.high - e.low) / (2 * stats.t_quantile(0.975, e.df))
        c = learning.calibrate("AP", "late", "ap.fix", 1, "cycle_time_days", "days", -3.0, 120, e.difference, se,
                               120, 40, 0.5, 2.0)
        covered += c.ratioLow <= 2 / 3 <= c.ratioHigh
    assert 0.93 <= covered / runs <= 0.97


def test_nothing_expected_is_not_calibrated():
    assert learning.calibrate("AP", "late", "ap.fix", 1, "m", None, 0.0, 5, -1.0, 0.1, 50, 50, 0.5, 2.0) is None


@pytest.mark.parametrize("se", [0.0, -0.1, float("nan"), float("inf")])
def test_nothing_measured_is_not_calibrated(se):
    """sla_met 1 on every case of both cohorts: Welch's se is 0, which would weigh the ratio as certain."""
    assert learning.calibrate("AP", "late", "ap.fix", 1, "sla_met", None, 0.2, 50, 0.0, se, 50, 50, 0.5, 2.0) is None


def _action(version=1):
    return Action.model_validate(dict(id="leads.escalate", version=version, name="Escalate",
                                      matches={"processArea": "LM", "deviationPatterns": ["stale"]},
                                      dataContract={"required": ["leadId"]}, flow={"setting": "FLOW_X"},
                                      riskTier="low", complexity=0.0))


def _table(version=1, metric="cycle_time_days", factor=0.62):
    text = "× 0.62: leads.escalate v1 measured −1.9 d vs −3.0 d expected, 362/42 cases"
    return Calibrations({("LM", "stale", "leads.escalate", version): {metric: (factor, text)}},
                        lambda action_id: "cycle_time_days")


def test_a_reported_impact_is_multiplied_by_its_actions_calibration_and_the_rationale_names_it():
    catalog, policy = Catalog([_action()]), ScoringPolicy()
    plain = score("LM", "stale", {"leadId": "L1"}, 1000.0, None, [], catalog, policy)
    scores = calibrated(score("LM", "stale", {"leadId": "L1"}, 1000.0, None, [], catalog, policy), _table(),
                        "LM", "stale", [{"metric": "cycle_time_days", "change": -3.0}])
    assert scores.impact == pytest.approx(620.0)
    assert scores.priority == pytest.approx(plain.priority * 0.62)
    assert scores.risk == pytest.approx(plain.risk)  # the money at stake is what was reported
    assert "Impact 620.00 = reported 1,000.00 × 0.62: leads.escalate v1 measured −1.9 d vs −3.0 d expected, " \
           "362/42 cases" in scores.rationale()


def test_no_calibration_for_a_severity_default_another_version_or_an_unmeasured_kpi():
    catalog, policy = Catalog([_action()]), ScoringPolicy()
    by_severity = calibrated(score("LM", "stale", {"leadId": "L1"}, None, "high", [], catalog, policy), _table(),
                             "LM", "stale")
    assert by_severity.impact == 2000.0
    other_version = calibrated(score("LM", "stale", {"leadId": "L1"}, 1000.0, None, [], catalog, policy),
                               _table(version=2), "LM", "stale")
    assert other_version.impact == 1000.0
    unmeasured = calibrated(score("LM", "stale", {"leadId": "L1"}, 1000.0, None, [], catalog, policy),
                            _table(metric="sla_met"), "LM", "stale", [{"metric": "dso_days"}])
    assert unmeasured.impact == 1000.0


def test_the_primary_kpi_calibrates_a_finding_that_names_none():
    catalog, policy = Catalog([_action()]), ScoringPolicy()
    scores = calibrated(score("LM", "stale", {"leadId": "L1"}, 1000.0, None, [], catalog, policy), _table(),
                        "LM", "stale")
    assert scores.impact == pytest.approx(620.0)


def test_calibrating_twice_starts_from_the_reported_impact():
    catalog, policy = Catalog([_action()]), ScoringPolicy()
    scores = score("LM", "stale", {"leadId": "L1"}, 1000.0, None, [], catalog, policy)
    scores.calibrate(0.5, "× 0.50")
    scores.calibrate(0.8, "× 0.80")
    assert scores.impact == pytest.approx(800.0)
