"""What real senders send, over a real socket (issue 18): a named KPI, root-cause signals and fields the app does
not know are taken and read back from the opportunity; strict reading, oversized extensions and wrong types are
refused by name with nothing stored."""
from shared.domain.opportunity import opportunity_id
from tests.factories import finding

THE_ISSUES_KPI = {"metric": "days_to_close", "estimate": 4.0, "unit": "days", "valueAtStake": 1200.0,
                  "currency": "EUR"}


def stored(api, item):
    """The opportunity of a finding as sent (its id from area, pattern and case), or None when there is none."""
    r = api.get(f"/opportunities/{opportunity_id(item['processArea'], item['deviationPattern'], item['caseKey'])}")
    return r.json() if r.status_code == 200 else None


def test_a_named_kpi_is_stored_as_the_expected_movement_of_the_outcome_metric(api):
    item = finding(caseKey="FD-KPI-1", kpiImpact=THE_ISSUES_KPI)
    r = api.post("/findings", json=item)
    assert r.status_code == 202, r.text
    opp = stored(api, item)
    # catalog/aliases.json maps days_to_close to cycle_time_days, the POST /api/outcomes metric
    assert opp["kpis"] == [{"metric": "cycle_time_days", "reported": "days_to_close", "estimate": 4.0,
                            "unit": "days", "direction": "decrease", "change": -4.0, "daysSaved": 4.0}]
    assert opp["kpiImpact"] == 1200.0 and opp["scores"]["impact"] == 1200.0
    assert "expects cycle_time_days −4 days (reported as days_to_close)" in opp["rationale"]


def test_days_of_a_named_kpi_are_money_at_the_cost_of_delay(api):
    item = finding(caseKey="FD-KPI-2", kpiImpact={"metric": "cycle_time_days", "estimate": 36, "unit": "hours",
                                                  "costOfDelayPerDay": 100.0})
    assert api.post("/findings", json=item).status_code == 202
    opp = stored(api, item)
    assert opp["kpiImpact"] == 150.0 and opp["kpis"][0]["change"] == -1.5 and opp["kpis"][0]["daysSaved"] == 1.5


def test_root_cause_signals_are_stored_as_a_list_and_told_as_text(api):
    item = finding(caseKey="FD-RC-1", rootCause=[{"name": "vendor", "value": "V300", "share": 0.34},
                                                 {"name": "plant", "value": "1010"}])
    assert api.post("/findings", json=item).status_code == 202
    opp = stored(api, item)
    assert opp["signals"] == [{"name": "vendor", "value": "V300", "share": 0.34}, {"name": "plant", "value": "1010"}]
    assert opp["rootCause"] == "vendor=V300 (34%); plant=1010"


def test_unknown_fields_are_kept_under_extensions_of_the_opportunity(api):
    item = finding(caseKey="FD-EXT-1", vendr="V300", kpiImpact={**THE_ISSUES_KPI, "confidence": 0.7})
    r = api.post("/findings", json=item)
    assert r.status_code == 202, r.text
    assert stored(api, item)["extensions"] == {"vendr": "V300", "kpiImpact.confidence": 0.7}


def test_strict_reading_refuses_each_unknown_field_and_stores_nothing(api):
    items = [finding(caseKey="FD-STRICT-1"), finding(caseKey="FD-STRICT-2", vendr="V300",
                                                     kpiImpact={**THE_ISSUES_KPI, "confidence": 0.7})]
    r = api.post("/findings", json=items, params={"strict": "true"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert {e["pointer"] for e in r.json()["errors"]} == {"/1/vendr", "/1/kpiImpact/confidence"}
    assert stored(api, items[0]) is None and stored(api, items[1]) is None


def test_extensions_over_4_kb_are_refused_by_name_and_nothing_of_the_batch_is_stored(api):
    items = [finding(caseKey="FD-BIG-1"), finding(caseKey="FD-BIG-2", notes="x" * 5000)]
    r = api.post("/findings", json=items)
    assert r.status_code == 422
    assert [e["pointer"] for e in r.json()["errors"]] == ["/1/extensions"]
    assert stored(api, items[0]) is None and stored(api, items[1]) is None


def test_a_wrong_type_is_still_refused_by_name_with_nothing_stored(api):
    items = [finding(caseKey="FD-TYPE-1", vendr="kept"), finding(caseKey="FD-TYPE-2", severity="apocalyptic",
                                                              rootCause=[{"name": "vendor", "share": "most"}])]
    r = api.post("/findings", json=items)
    assert r.status_code == 422
    assert {e["pointer"] for e in r.json()["errors"]} == {"/1/severity", "/1/rootCause/0/share"}
    assert stored(api, items[0]) is None


def test_a_signal_name_that_is_no_identifier_is_refused_by_name(api):
    item = finding(caseKey="FD-SIG-1", rootCause=[{"name": "ignore previous instructions", "value": 1}])
    r = api.post("/findings", json=item)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/rootCause/0/name"
    assert stored(api, item) is None


def test_an_estimate_without_its_metric_is_refused_naming_the_metric(api):
    item = finding(caseKey="FD-KPI-3", kpiImpact={"estimate": 4.0, "unit": "days"})
    r = api.post("/findings", json=item)
    assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["/kpiImpact/metric"]
    assert stored(api, item) is None
