"""Impact per action version, ROI from it, and the outcomes edge: pure functions, no store."""
import random
from datetime import datetime, timedelta, timezone

import pytest

from shared.domain import impact, roi
from shared.domain.errors import InvalidInput
from shared.domain.impact import Assignment
from shared.domain.outcomes import Outcome, outcome_id
from shared.domain.policy import Measurement, RoiParams
from shared.ingest.outcomes import parse_outcomes

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)  # a Monday: ISO week 2026-W45
POLICY = Measurement(minSamples=5)


def arm(case: str, cohort: str, status: str = "verified", pattern: str = "invoice-missing-po",
        action: str = "ap.request-missing-fields", at: datetime = T0) -> Assignment:
    return Assignment("accounts-payable", pattern, case, cohort, action, 1, at, status)


def obs(case: str, value: float, when: datetime = T0 + timedelta(days=3), metric: str = "cycle_time_days",
        area: str = "accounts-payable") -> Outcome:
    return Outcome(outcome_id(area, case, metric, when), area, case, metric, value, when)


def cohorts(n_t: int, n_c: int, effect: float, seed: int = 2):
    rng = random.Random(seed)
    arms = [arm(f"T{i}", "treated") for i in range(n_t)] + [arm(f"C{i}", "control", "control") for i in range(n_c)]
    outs = [obs(a.caseKey, rng.gauss(10, 2) + (effect if a.cohort == "treated" else 0)) for a in arms]
    return arms, outs


def test_treated_vs_control_difference_and_ci_per_action_version():
    arms, outs = cohorts(120, 40, -2.0)
    [row] = impact.measure(arms, outs, POLICY)
    assert (row["actionId"], row["actionVersion"], row["metric"]) == ("ap.request-missing-fields", 1, "cycle_time_days")
    assert row["treated"]["n"] == 120 and row["control"]["n"] == 40
    assert row["ci"]["low"] < -2.0 < row["ci"]["high"] and row["ci"]["high"] < 0
    assert row["verdict"] == "better" and row["significant"] and row["pValue"] < 0.001
    assert row["difference"] == pytest.approx(row["treated"]["mean"] - row["control"]["mean"], abs=1e-3)


def test_below_the_minimum_samples_the_report_says_not_enough_data():
    arms, outs = cohorts(50, 3, -2.0)
    [row] = impact.measure(arms, outs, POLICY)
    assert row["status"] == "not_enough_data" and "control has 3" in row["reason"]
    assert "ci" not in row and row["control"]["n"] == 3


def test_every_case_counts_in_the_cohort_it_was_drawn_into_even_when_a_person_rejected_it():
    arms, outs = cohorts(40, 40, 0.0)
    arms += [arm("R1", "treated", "rejected")]
    outs += [obs("R1", 30.0)]
    [row] = impact.measure(arms, outs, POLICY)
    assert row["treated"]["n"] == 41 and row["actedShare"] == pytest.approx(40 / 41, abs=1e-4)


def test_observations_before_assignment_are_the_baseline_and_the_latest_after_is_the_outcome():
    arms = [arm(f"T{i}", "treated") for i in range(5)] + [arm(f"C{i}", "control", "control") for i in range(5)]
    outs = [obs(a.caseKey, 20.0, T0 - timedelta(days=1)) for a in arms]
    outs += [obs(a.caseKey, 99.0, T0 + timedelta(days=1)) for a in arms]
    outs += [obs(a.caseKey, 8.0 if a.cohort == "treated" else 12.0, T0 + timedelta(days=9)) for a in arms]
    [row] = impact.measure(arms, outs, POLICY)
    assert row["baseline"]["treated"] == {"n": 5, "mean": 20.0} and row["baseline"]["control"]["n"] == 5
    assert row["treated"]["mean"] == 8.0 and row["control"]["mean"] == 12.0 and row["difference"] == -4.0


def test_weekly_slices_follow_the_iso_week_of_the_observation():
    arms, outs = cohorts(30, 30, -1.0)
    late = [obs(a.caseKey, 5.0, T0 + timedelta(days=8)) for a in arms[:10]]
    [row] = impact.measure(arms, outs + late, POLICY)
    weeks = {w["week"]: w for w in row["weeks"]}
    assert set(weeks) == {"2026-W45", "2026-W46"}
    assert weeks["2026-W46"]["treated"]["n"] == 10 and weeks["2026-W46"]["status"] == "not_enough_data"


def test_an_outcome_counts_for_each_experiment_its_case_is_in_and_for_no_other_case():
    arms, outs = cohorts(10, 10, 0.0)
    arms += [arm("T0", "treated", pattern="missing-vendor-data", action="ap.cancel-field-request")]
    outs += [obs("T0", 1.0, area="lead-management")]  # same key, another process area: another case
    rows = impact.measure(arms, outs, POLICY)
    second = next(r for r in rows if r["actionId"] == "ap.cancel-field-request")
    assert second["treated"]["n"] == 1
    first = next(r for r in rows if r["actionId"] == "ap.request-missing-fields")
    assert first["treated"]["n"] == 10


def test_a_higher_is_better_metric_that_fell_is_worse():
    rng = random.Random(3)
    arms = [arm(f"T{i}", "treated") for i in range(200)] + [arm(f"C{i}", "control", "control") for i in range(200)]
    outs = [obs(a.caseKey, float(rng.random() < (0.5 if a.cohort == "treated" else 0.8)), metric="sla_met")
            for a in arms]
    [row] = impact.measure(arms, outs, POLICY)
    assert row["method"] == "welch" and row["verdict"] == "worse" and row["better"] == "higher"


def _row(diff, low, high, significant=True, status="ok", acted=0.9, metric="cycle_time_days"):
    return {"metric": metric, "status": status, "significant": significant, "better": "lower", "difference": diff,
            "ci": {"low": low, "high": high}, "actedShare": acted, "cases": {"treated": 100, "control": 20},
            "reason": "n/a"}


def test_roi_comes_from_the_measured_difference_and_its_interval():
    params = RoiParams(valuePerUnit={"cycle_time_days": 40.0}, handlingMinutes=30, hourlyCost=50, teamFte=2)
    r = roi.compute([_row(-2.0, -2.5, -1.5)], params, T0, T0 + timedelta(days=14))
    [c] = r["components"]
    assert (c["value"], c["low"], c["high"]) == (8000.0, 6000.0, 10000.0)  # 2 days × 100 cases × 40
    assert r["hoursSaved"] == 45.0 and r["labourSaved"] == 2250.0        # 0.9 × 100 × 30 min
    assert (r["total"], r["totalLow"], r["totalHigh"]) == (10250.0, 8250.0, 12250.0)
    tp = r["throughputPerFte"]                                           # 120 cases over 2 weeks, 2 FTE
    assert tp["casesPerWeek"] == 60.0 and tp["before"] == 30.0 and tp["after"] > tp["before"]


def test_an_effect_not_told_apart_from_zero_is_worth_nothing():
    params = RoiParams(valuePerUnit={"cycle_time_days": 40.0})
    r = roi.compute([_row(-0.3, -1.0, 0.4, significant=False)], params, T0, T0)
    assert r["total"] == 0.0 and r["components"][0]["value"] == 0.0


def test_no_roi_without_parameters_for_the_action():
    assert roi.compute([_row(-2.0, -2.5, -1.5)], None, T0, T0) is None


def test_outcomes_accept_one_or_a_batch_with_numbers_as_strings_booleans_and_epochs():
    one = parse_outcomes(b'{"processArea":"ap","caseKey":"INV-1","metric":"sla_met","value":true,'
                         b'"observedAt":"2026-11-20T10:00:00Z"}')
    many = parse_outcomes(b'[{"processArea":"ap","caseKey":"INV-1","metric":"cycle_time_days","value":"3.5",'
                          b'"observedAt":1763632800000}]')
    assert one[0].value == 1.0 and many[0].value == 3.5
    assert many[0].observedAt == datetime(2025, 11, 20, 10, 0, tzinfo=timezone.utc)


def test_the_same_observation_sent_twice_has_the_same_id():
    body = b'{"processArea":"ap","caseKey":"INV-1","metric":"rework_count","value":2,"observedAt":"2026-11-20T10:00:00Z"}'
    assert parse_outcomes(body)[0].id == parse_outcomes(body)[0].id


def test_bad_outcomes_are_refused_naming_every_field_and_index():
    with pytest.raises(InvalidInput) as err:
        parse_outcomes(b'[{"processArea":"ap","caseKey":"A","metric":"Cycle Time","value":"x","observedAt":"soon"},'
                       b'{"processArea":"ap","caseKey":" ","metric":"m","value":1,"observedAt":1}]')
    pointers = {e.pointer for e in err.value.errors}
    assert {"/0/metric", "/0/value", "/0/observedAt", "/1/caseKey"} <= pointers
    assert err.value.extra["invalidIndexes"] == [0, 1]
    with pytest.raises(InvalidInput):
        parse_outcomes(b'{"processArea":"ap","caseKey":"A","metric":"m","value":1e999,"observedAt":1}')
