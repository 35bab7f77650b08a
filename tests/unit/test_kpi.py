"""Named KPI impact: which KPI a finding expects to move, which way, by how much, and what it is worth."""
import pytest

from shared.bootstrap import load_aliases
from shared.domain.aliases import Aliases
from shared.domain.findings import KpiImpact
from shared.domain.kpi import describe, errors, expectations
from shared.domain.opportunity import from_finding, merge
from shared.domain.policy import Measurement
from shared.runtime import REPO_CATALOG, load_catalog, load_policy
from tests.factories import NOW, finding, validated

CATALOG = load_catalog(REPO_CATALOG, "local")
POLICY = load_policy(REPO_CATALOG)
ALIASES = load_aliases(REPO_CATALOG)
MEASUREMENT = POLICY.measurement


def expect(aliases=ALIASES, measurement=MEASUREMENT, **kpi):
    entries, money = expectations(KpiImpact(**kpi), aliases, measurement)
    return (entries[0] if entries else None), money


def opp(aliases=ALIASES, **kw):
    return from_finding(validated(finding(**kw))[0], CATALOG, POLICY.scoring, NOW, None, aliases, MEASUREMENT)


def test_the_issues_body_becomes_an_expected_cycle_time_decrease_of_four_days():
    entry, money = expect(metric="days_to_close", estimate=4.0, unit="days", valueAtStake=1200.0, currency="EUR")
    assert entry == {"metric": "cycle_time_days", "reported": "days_to_close", "estimate": 4.0, "unit": "days",
                     "direction": "decrease", "change": -4.0, "daysSaved": 4.0}
    assert money == 1200.0  # no cost of delay sent: the four days are worth nothing more


def test_days_of_a_decrease_count_as_days_saved_in_the_money():
    _, money = expect(metric="cycle_time_days", estimate=4, unit="Days", costOfDelayPerDay=80.0, valueAtStake=10.0)
    assert money == 4 * 80.0 + 10.0


def test_hours_are_days_saved_divided_by_24_and_the_change_is_in_the_metrics_days():
    entry, money = expect(metric="cycle_time_days", estimate=36, unit="H", costOfDelayPerDay=100.0)
    assert entry["daysSaved"] == 1.5 and money == 150.0
    assert entry["change"] == -1.5 and entry["changeUnit"] == "days" and entry["unit"] == "H"


def test_days_saved_when_given_wins_over_the_estimate():
    entry, money = expect(metric="cycle_time_days", estimate=4, unit="days", daysSaved=2, costOfDelayPerDay=10.0)
    assert money == 20.0 and "daysSaved" not in entry


def test_an_increase_in_days_saves_no_days_and_reports_no_money():
    entry, money = expect(metric="cycle_time_days", estimate=4, unit="days", direction="increase",
                          costOfDelayPerDay=80.0)
    assert entry["change"] == 4.0 and "daysSaved" not in entry and money is None


@pytest.mark.parametrize("kpi", [
    {"metric": "sla_met", "estimate": 5, "unit": "percent"},
    [{"metric": "rework_count", "estimate": 2, "unit": "count"}],
    {"metric": "cycle_time_days", "estimate": 2, "unit": "days", "direction": "increase"},
    {"metric": "sla_met", "estimate": 5, "unit": "percent", "costOfDelayPerDay": 80.0, "currency": "EUR"},
])
def test_a_named_kpi_without_money_keeps_the_severity_estimate(kpi):
    o = opp(severity="high", kpiImpact=kpi)
    plain = opp(severity="high", kpiImpact=None)
    assert o.kpiImpact is None and o.kpis
    assert o.scores.impact == plain.scores.impact > 0 and o.scores.basis.impact_source == "severity:high"
    assert o.scores.priority == pytest.approx(plain.scores.priority)


@pytest.mark.parametrize("kpi, money", [
    ({"metric": "cycle_time_days", "estimate": 2, "unit": "days"}, 0.0),  # days saved told, no cost of delay
    ({"metric": "sla_met", "estimate": 5, "unit": "percent", "daysSaved": 1}, 0.0),
    ({"metric": "sla_met", "estimate": 5, "unit": "percent", "valueAtStake": 0}, 0.0),
    ([{"metric": "sla_met", "estimate": 5}, {"metric": "rework", "estimate": 1, "penaltyAvoided": 30.0}], 30.0),
])
def test_a_named_kpi_carrying_money_reports_it_even_when_it_is_zero(kpi, money):
    o = opp(severity="high", kpiImpact=kpi)
    assert o.kpiImpact == money and o.scores.basis.impact_source == "reported"


@pytest.mark.parametrize("kpi, direction, change", [
    # direction as sent wins, whatever the sign or the convention
    ({"metric": "cycle_time_days", "estimate": -3, "direction": "increase"}, "increase", 3.0),
    ({"metric": "sla_met", "estimate": 0.1, "direction": "decrease"}, "decrease", -0.1),
    # else a negative estimate is a decrease
    ({"metric": "sla_met", "estimate": -0.05}, "decrease", -0.05),
    ({"metric": "unheard_of", "estimate": -7}, "decrease", -7.0),
    # else the metric's convention: where lower is better a reported gain is a decrease, where higher an increase
    ({"metric": "rework_count", "estimate": 2}, "decrease", -2.0),
    ({"metric": "sla_met", "estimate": 0.1}, "increase", 0.1),
    # an unknown metric with a positive estimate grows
    ({"metric": "unheard_of", "estimate": 7}, "increase", 7.0),
])
def test_direction_is_as_sent_else_by_sign_else_by_the_metrics_convention(kpi, direction, change):
    entry, _ = expect(**kpi)
    assert entry["direction"] == direction and entry["change"] == pytest.approx(change)
    assert entry["estimate"] == abs(kpi["estimate"])


def test_without_a_measurement_policy_a_positive_estimate_is_an_increase():
    entry, _ = expect(measurement=None, metric="cycle_time_days", estimate=4)
    assert entry["direction"] == "increase"


def test_convention_is_read_after_the_alias():
    # days_to_close is unknown to the policy; the alias makes it cycle_time_days, where lower is better.
    assert expect(metric="days_to_close", estimate=4)[0]["direction"] == "decrease"
    assert expect(aliases=Aliases(), metric="days_to_close", estimate=4)[0]["direction"] == "increase"


def test_metric_without_an_alias_is_kept_as_sent_and_not_marked_reported():
    entry, _ = expect(metric="cycle_time_days", estimate=1)
    assert entry["metric"] == "cycle_time_days" and "reported" not in entry


def test_a_zero_estimate_is_no_movement_not_minus_zero():
    entry, _ = expect(metric="cycle_time_days", estimate=0)
    assert str(entry["change"]) == "0.0"


def test_a_list_of_kpis_sums_their_money_and_keeps_each_named_one():
    kpis, money = expectations([KpiImpact(metric="days_to_close", estimate=2, unit="days", costOfDelayPerDay=50),
                                KpiImpact(valueAtStake=300.0),
                                KpiImpact(metric="rework", estimate=1, unit="count", penaltyAvoided=20.0)],
                               ALIASES, MEASUREMENT)
    assert money == 2 * 50 + 300.0 + 20.0
    assert [(k["metric"], k["change"]) for k in kpis] == [("cycle_time_days", -2.0), ("rework_count", -1.0)]


@pytest.mark.parametrize("kpi, pointer", [
    (KpiImpact(estimate=4.0), "/kpiImpact/metric"),
    (KpiImpact(metric="cycle_time_days"), "/kpiImpact/estimate"),
    (KpiImpact(unit="days"), "/kpiImpact/metric"),
    (KpiImpact(metric="cycle_time_days", estimate=1, unit="ignore previous"), "/kpiImpact/unit"),
    (KpiImpact(metric="1; DROP", estimate=1), "/kpiImpact/metric"),
    (KpiImpact(metric="cycle_time_days", estimate=4000, unit="days"), "/kpiImpact/estimate"),
    (KpiImpact(metric="cycle_time_days", estimate=24 * 3651, unit="hours"), "/kpiImpact/estimate"),
])
def test_a_named_kpi_needs_metric_and_estimate_and_a_unit_that_is_a_word(kpi, pointer):
    assert pointer in {e.pointer for e in errors(kpi, ("kpiImpact",))}


def test_money_only_and_well_named_kpis_have_no_errors_and_list_entries_are_pointed_at_by_index():
    assert errors(KpiImpact(daysSaved=2, costOfDelayPerDay=3), ("kpiImpact",)) == []
    assert errors(KpiImpact(metric="Durchlaufzeit (Tage)", estimate=-2, unit="%"), ("kpiImpact",)) == []
    found = errors([KpiImpact(metric="a", estimate=1), KpiImpact(estimate=2)], (3, "kpiImpact"))
    assert [e.pointer for e in found] == ["/3/kpiImpact/1/metric"]


def test_the_opportunity_keeps_the_expectation_and_its_rationale_names_it():
    o = opp(kpiImpact={"metric": "days_to_close", "estimate": 4.0, "unit": "days", "valueAtStake": 1200.0,
                       "currency": "EUR"})
    assert o.kpiImpact == 1200.0 and o.kpis[0]["metric"] == "cycle_time_days" and o.kpis[0]["change"] == -4.0
    assert o.explained().endswith("; expects cycle_time_days −4 days (reported as days_to_close)")


def test_findings_naming_no_kpi_have_no_expectations_and_an_unchanged_rationale():
    o = opp()
    assert o.kpis == [] and o.kpiImpact == 200.0 and "expects" not in o.explained()


def test_describe_signs_increases_and_names_converted_units():
    assert describe([{"metric": "sla_met", "change": 0.05, "unit": "share"},
                     {"metric": "cycle_time_days", "change": -1.5, "unit": "hours", "changeUnit": "days"}]) == \
        "expects sla_met +0.05 share, cycle_time_days −1.5 days"
    assert describe([]) == ""


def test_merge_keeps_the_expectation_until_a_report_names_another_and_the_rationale_follows():
    first = opp(caseKey="K-1", kpiImpact={"metric": "days_to_close", "estimate": 4, "unit": "days"})
    money_only = opp(caseKey="K-1", kpiImpact={"valueAtStake": 50.0})
    kept = merge(first, money_only, CATALOG, POLICY.scoring, NOW)
    assert kept.kpis == first.kpis and kept.kpiImpact == 50.0 and "expects cycle_time_days" in kept.explained()
    renamed = opp(caseKey="K-1", kpiImpact={"metric": "rework", "estimate": 1})
    replaced = merge(kept, renamed, CATALOG, POLICY.scoring, NOW)
    assert [k["metric"] for k in replaced.kpis] == ["rework_count"]
    assert "expects rework_count −1" in replaced.explained() and "cycle_time_days" not in replaced.explained()


def test_no_measurement_given_means_none_of_its_conventions():
    assert Measurement(metrics={}).spec("cycle_time_days") is None
    entry, _ = expect(measurement=Measurement(metrics={}), metric="cycle_time_days", estimate=4, unit="days")
    assert entry["direction"] == "increase" and "daysSaved" not in entry
