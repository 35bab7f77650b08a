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


def test_when_another_action_ran_too_the_term_is_intention_to_treat_and_says_why():
    mixed = {**row(), "actedWhy": "another action ran on 50% of treated cases: the effect of this action alone is "
                                  "not identified"}
    [cod] = terms(roi.compute([mixed], RoiParams(valuePerUnit={"cycle_time_days": 40.0}), volume()), "costOfDelay")
    assert (cod["basis"], cod["value"]) == ("measured", 8000.0) and "intention to treat" in cod["formula"]
    assert cod["why"].startswith("intention to treat: another action ran on 50%")


def test_a_difference_not_told_apart_from_zero_has_no_value_and_keeps_its_range():
    params = RoiParams(valuePerUnit={"cycle_time_days": 40.0})
    r = roi.compute([row(-0.3, -1.0, 0.4, significant=False)], params, volume(deflected=0))
    [cod] = terms(r, "costOfDelay")
    assert (cod["basis"], cod["value"], cod["inTotal"]) == ("no_effect", None, False)
    assert (cod["low"], cod["high"]) == (-1600.0, 4000.0)  # a range across zero, never a point
    assert r["total"] == {"value": None, "low": None, "high": None, "label": "nothing valued yet"}  # not a total of 0


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
    assert r["total"] == {"value": 1250.0, "low": 1250.0, "high": 1250.0, "label": "measured and counted terms"}


def test_the_hours_freed_count_once_as_labour_or_as_throughput():
    labour = roi.compute([], RoiParams(handlingMinutes=30, hourlyCost=50, valuePerResolvedCase=90.0), volume())
    [d], [t] = terms(labour, "deflection"), terms(labour, "throughput")
    assert d["inTotal"] and not t["inTotal"] and t["value"] == 4500.0  # 25 h over 2 weeks ÷ 0.5 h = 25 cases/week
    assert "counted once" in t["why"] and labour["total"]["value"] == 1250.0
    assert labour["total"]["label"] == "measured and counted terms"
    through = roi.compute([], RoiParams(handlingMinutes=30, hourlyCost=50, valuePerResolvedCase=90.0,
                                        freedHoursAs="throughput"), volume())
    assert [t["inTotal"] for t in through["terms"] if t["term"] in ("deflection", "throughput")] == [False, True]
    assert through["total"]["value"] == 4500.0


def test_throughput_is_a_projection_of_what_the_freed_hours_could_resolve_and_the_total_says_it_holds_one():
    params = RoiParams(handlingMinutes=30, hourlyCost=50, valuePerResolvedCase=90.0, freedHoursAs="throughput")
    r = roi.compute([], params, volume())
    [t] = terms(r, "throughput")
    # 50 cases × 0.5 h = 25 h ÷ 0.5 h = 50 cases × 90 EUR: no case was counted resolving, so no point interval.
    assert (t["basis"], t["value"], t["low"], t["high"], t["inTotal"]) == ("projected", 4500.0, 0.0, 4500.0, True)
    assert t["why"].startswith("projected, not measured: what the freed hours could resolve")
    assert (r["total"]["value"], r["total"]["low"], r["total"]["high"]) == (4500.0, 0.0, 4500.0)
    assert "includes a projected term" in r["total"]["label"]
    [shown] = terms(roi.compute([], RoiParams(handlingMinutes=30, hourlyCost=50, valuePerResolvedCase=90.0),
                                volume()), "throughput")
    assert shown["basis"] == "projected" and not shown["inTotal"] and "projected, not measured" in shown["why"]


def test_a_period_of_a_few_days_is_worded_in_days_and_projected_as_one_week_not_scaled_up_further():
    params = RoiParams(handlingMinutes=30, hourlyCost=50, valuePerResolvedCase=90.0)
    r = roi.compute([], params, volume(days=3))
    assert (r["period"]["days"], r["period"]["weeks"]) == (3.0, 1.0)
    label = r["annualized"]["label"]
    assert label.startswith("projection: the total over 3 days, counted as 1 week") and "weeks" not in label
    assert r["annualized"]["value"] == pytest.approx(1250.0 * 52)  # × 52, never × 365 ÷ 3
    [t] = terms(r, "throughput")
    assert "over 3 days" in t["formula"] and "weeks" not in t["formula"]
    week = roi.compute([], params, volume(days=7))
    assert week["annualized"]["label"].startswith("projection: the total over 1 week × 52 ÷ 1,")


def with_action(r, action, version):
    return {"actionId": action, "actionVersion": version, "roi": r}


def test_the_portfolio_adds_every_versions_total_but_projects_only_each_actions_latest_version():
    params = RoiParams(handlingMinutes=30, hourlyCost=50)
    v1, v2 = roi.compute([], params, volume(deflected=40)), roi.compute([], params, volume(deflected=20))
    other = roi.compute([], params, volume(deflected=10, days=7))
    [p] = roi.portfolio([with_action(v1, "a", 1), with_action(v2, "a", 2), with_action(other, "b", 1),
                         with_action(None, "c", 1)])
    assert (p["versions"], p["valued"], p["projected"]) == (3, 3, 2)
    assert p["total"]["value"] == 1000.0 + 500.0 + 250.0  # v1 retired: its value happened
    assert p["annualized"]["value"] == pytest.approx(500.0 * 26 + 250.0 * 52)  # v2 and b only, not v1 again
    assert "latest version" in p["annualized"]["label"] and "superseded" in p["total"]["label"]


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
    assert (r["total"]["value"], r["total"]["low"], r["total"]["high"]) == (-2750.0, -4750.0, -750.0)  # + 1,250


def test_the_period_comes_from_the_assignments_and_the_annual_figure_is_labelled_a_projection():
    r = roi.compute([row()], RoiParams(valuePerUnit={"cycle_time_days": 40.0}), volume(days=28))
    assert r["period"] == {"from": T0.isoformat(), "to": (T0 + timedelta(days=28)).isoformat(), "days": 28.0,
                           "weeks": 4.0}
    a = r["annualized"]
    assert a["label"].startswith("projection: the total over 4 weeks × 52 ÷ 4")
    assert a["value"] == pytest.approx(8000.0 * 13)
    assert (a["low"], a["high"]) == (6000.0 * 13, 10000.0 * 13) and r["population"]


def test_throughput_per_fte_uses_the_hours_freed_by_deflected_cases():
    r = roi.compute([], RoiParams(handlingMinutes=30, hourlyCost=50, teamFte=2), volume(deflected=80))
    tp = r["throughputPerFte"]  # 120 cases over 2 weeks, 2 FTE; 40 h freed = 0.5 FTE a week
    assert tp == {"before": 30.0, "after": 40.0, "fteFreed": 0.5, "casesPerWeek": 60.0}
    assert roi.compute([], RoiParams(), volume())["throughputPerFte"] is None


def test_no_roi_without_parameters_for_the_action():
    assert roi.compute([row()], None, volume()) is None
