"""ROI in four terms (cost of delay, throughput, deflection, leakage), each saying what its figure comes from."""
from datetime import datetime, timedelta, timezone

import pytest

from shared.domain import roi
from shared.domain.impact import Volume
from shared.domain.policy import RoiParams

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def volume(treated=100, control=20, acted=80, deflected=50, days=14) -> Volume:
    return Volume(treated, control, acted, deflected, T0, T0 + timedelta(days=days))


def row(diff=-2.0, low=-2.5, high=-1.5, significant=True, status="ok", metric="cycle_time_days", acted=None,
        better="lower"):
    """A metric row as impact.measure makes it; `acted` is (difference, low, high) on the cases the action ran on."""
    out = {"metric": metric, "status": status, "significant": significant, "better": better, "unit": "days",
           "difference": diff, "ci": {"low": low, "high": high}, "reason": "needs 30 cases; control has 3",
           "acted": None}
    if acted:
        out["acted"] = {"difference": acted[0], "ci": {"low": acted[1], "high": acted[2]}, "share": 0.8}
    return out


def terms(r, name):
    return [t for t in r["terms"] if t["term"] == name]


def test_cost_of_delay_is_the_effect_on_cases_the_action_ran_on_times_those_cases_times_the_value_per_day():
    params = RoiParams(valuePerUnit={"cycle_time_days": 40.0})
    r = roi.compute([row(acted=(-2.5, -3.0, -2.0))], params, volume())
    [cod] = terms(r, "costOfDelay")
    # 2.5 days × 80 cases × 40 EUR, its range from the CI on those cases
    assert (cod["basis"], cod["value"], cod["low"], cod["high"]) == ("measured", 8000.0, 6400.0, 9600.0)
    assert cod["inTotal"] and "cases the action ran on × 80 cases" in cod["formula"]


def test_without_an_effect_on_acted_cases_cost_of_delay_is_intention_to_treat_over_every_treated_case():
    r = roi.compute([row()], RoiParams(valuePerUnit={"cycle_time_days": 40.0}), volume())
    [cod] = terms(r, "costOfDelay")
    assert (cod["value"], cod["low"], cod["high"]) == (8000.0, 6000.0, 10000.0)  # 2 × 100 treated × 40
    assert "intention to treat" in cod["formula"]


def test_a_difference_not_told_apart_from_zero_has_no_value_and_keeps_its_range():
    params = RoiParams(valuePerUnit={"cycle_time_days": 40.0})
    r = roi.compute([row(-0.3, -1.0, 0.4, significant=False)], params, volume(deflected=0))
    [cod] = terms(r, "costOfDelay")
    assert (cod["basis"], cod["value"], cod["inTotal"]) == ("no_effect", None, False)
    assert (cod["low"], cod["high"]) == (-1600.0, 4000.0)  # a range across zero, never a point
    assert r["total"] == {"value": None, "low": None, "high": None}  # nothing valued: not a total of 0


def test_too_few_cases_is_not_enough_data_with_the_reason():
    r = roi.compute([row(status="not_enough_data")], RoiParams(valuePerUnit={"cycle_time_days": 40.0}), volume())
    [cod] = terms(r, "costOfDelay")
    assert cod["basis"] == "not_enough_data" and cod["value"] is None and "control has 3" in cod["why"]
    [none_yet] = terms(roi.compute([], RoiParams(valuePerUnit={"dso_days": 9.0}), volume()), "costOfDelay")
    assert none_yet["basis"] == "not_enough_data" and "no outcomes" in none_yet["why"]


def test_deflection_counts_cases_resolved_with_no_person_touching_them_and_is_exact():
    params = RoiParams(handlingMinutes=30, hourlyCost=50)
    r = roi.compute([], params, volume(deflected=50))
    [d] = terms(r, "deflection")
    assert (d["basis"], d["value"], d["low"], d["high"], d["inTotal"]) == ("counted", 1250.0, 1250.0, 1250.0, True)
    assert r["total"] == {"value": 1250.0, "low": 1250.0, "high": 1250.0}


def test_the_hours_freed_count_once_as_labour_or_as_throughput():
    labour = roi.compute([], RoiParams(handlingMinutes=30, hourlyCost=50, valuePerResolvedCase=90.0), volume())
    [d], [t] = terms(labour, "deflection"), terms(labour, "throughput")
    assert d["inTotal"] and not t["inTotal"] and t["value"] == 4500.0  # 25 h over 2 weeks ÷ 0.5 h = 25 cases/week
    assert "counted once" in t["why"] and labour["total"]["value"] == 1250.0
    through = roi.compute([], RoiParams(handlingMinutes=30, hourlyCost=50, valuePerResolvedCase=90.0,
                                        freedHoursAs="throughput"), volume())
    assert [t["inTotal"] for t in through["terms"] if t["term"] in ("deflection", "throughput")] == [False, True]
    assert through["total"]["value"] == 4500.0


def test_throughput_without_a_value_per_resolved_case_is_shown_not_valued():
    r = roi.compute([], RoiParams(handlingMinutes=30, hourlyCost=50), volume())
    [t] = terms(r, "throughput")
    assert (t["basis"], t["value"], t["inTotal"]) == ("not_valued", None, False)
    assert "25.00 extra cases a week" in t["formula"] and "valuePerResolvedCase" in t["why"]


def test_leakage_comes_only_from_the_metrics_the_policy_declares_valued_one_to_one():
    rows = [row(-120.0, -150.0, -90.0, metric="recovered_amount"), row(-5.0, -6.0, -4.0, metric="leak_count")]
    r = roi.compute(rows, RoiParams(leakageMetrics=["recovered_amount"]), volume())
    [leak] = terms(r, "leakage")
    assert (leak["basis"], leak["value"], leak["low"], leak["high"]) == ("measured", 12000.0, 9000.0, 15000.0)
    assert "recovered_amount" in leak["label"]
    assert [t["basis"] for t in terms(r, "costOfDelay")] == ["not_valued"]  # leak_count is no leakage by its name
    assert terms(roi.compute(rows, RoiParams(), volume()), "leakage")[0]["basis"] == "not_valued"


def test_a_harmful_effect_is_a_negative_term_and_lowers_the_total():
    params = RoiParams(valuePerUnit={"cycle_time_days": 40.0}, handlingMinutes=30, hourlyCost=50)
    r = roi.compute([row(1.0, 0.5, 1.5)], params, volume())
    [cod] = terms(r, "costOfDelay")
    assert (cod["value"], cod["low"], cod["high"]) == (-4000.0, -6000.0, -2000.0)
    assert r["total"] == {"value": -2750.0, "low": -4750.0, "high": -750.0}  # + 1,250 deflection


def test_the_period_comes_from_the_assignments_and_the_annual_figure_is_labelled_a_projection():
    r = roi.compute([row()], RoiParams(valuePerUnit={"cycle_time_days": 40.0}), volume(days=28))
    assert r["period"] == {"from": T0.isoformat(), "to": (T0 + timedelta(days=28)).isoformat(), "weeks": 4.0}
    a = r["annualized"]
    assert a["label"].startswith("projection: ") and a["value"] == pytest.approx(8000.0 * 13)
    assert (a["low"], a["high"]) == (6000.0 * 13, 10000.0 * 13) and r["population"]


def test_throughput_per_fte_uses_the_hours_freed_by_deflected_cases():
    r = roi.compute([], RoiParams(handlingMinutes=30, hourlyCost=50, teamFte=2), volume(deflected=80))
    tp = r["throughputPerFte"]  # 120 cases over 2 weeks, 2 FTE; 40 h freed = 0.5 FTE a week
    assert tp == {"before": 30.0, "after": 40.0, "fteFreed": 0.5, "casesPerWeek": 60.0}
    assert roi.compute([], RoiParams(), volume())["throughputPerFte"] is None


def test_no_roi_without_parameters_for_the_action():
    assert roi.compute([row()], None, volume()) is None
