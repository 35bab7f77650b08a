"""`POST /api/findings/celonis`: subscription events (or Action Flow findings) into normalized findings."""
import json
from pathlib import Path

import pytest

from shared.domain.errors import InvalidInput, MalformedBody
from shared.domain.findings import KpiImpact, instant
from shared.ingest import celonis, cloudevents

ROOT = Path(__file__).resolve().parents[2]
AP = {"processArea": "accounts-payable", "deviationPattern": "invoice-missing-po"}


def field(fid, value, type_="STRING", ident=False):
    return {"id": fid, "value": value, "type": type_, "isIdentifier": ident}


def event(n=1, trigger="trg-1", fields=None, **over):
    body = {"subscriberId": "sub-1", "triggerId": trigger, "offset": n, "creationDate": 1763600000000,
            "event": {"id": f"ev-{n}", "identifier": f"INV-{n}",
                      "fields": fields if fields is not None else [field("INVOICE_ID", f"INV-{n}", ident=True),
                                                                   field("VENDOR_ID", "V-9")]}}
    body.update(over)
    return body


def normalize(payload, **params):
    return celonis.normalize(json.dumps(payload).encode(), params or AP)


def rejected(payload, **params):
    with pytest.raises(InvalidInput) as exc:
        normalize(payload, **params)
    return exc.value


@pytest.fixture
def mapping(monkeypatch):
    """Swap the shipped mapping file for one written by the test."""
    def use(content):
        monkeypatch.setattr(celonis, "_mapping", lambda: content)
        celonis._settings.cache_clear()
    yield use
    celonis._settings.cache_clear()


def test_single_event_becomes_one_finding_from_celonis():
    result = normalize(event())
    (f,) = result.findings
    assert (f.source, f.caseKey, f.processArea, f.deviationPattern) == ("celonis", "INV-1", *AP.values())
    assert result.skipped == 0


def test_list_of_events_becomes_one_finding_each_in_order():
    findings = normalize([event(1), event(2), event(3)]).findings
    assert [f.caseKey for f in findings] == ["INV-1", "INV-2", "INV-3"]


def test_redelivered_celonis_event_keeps_its_event_id():
    first, again = normalize(event(7)).findings[0], normalize(event(7, offset=99)).findings[0]
    assert first.eventId == again.eventId == "celonis:sub-1:trg-1:ev-7"


def test_action_flow_posting_normalized_findings_is_parsed_as_a_generic_finding():
    finding = {"eventId": "af-1", "processArea": "ap", "deviationPattern": "late", "caseKey": "INV-1",
               "detectedAt": "2026-11-19T08:30:00Z", "source": "celonis-action-flow"}
    assert normalize(finding).findings[0].eventId == "af-1"
    assert [f.source for f in normalize([finding, dict(finding, eventId="af-2")]).findings] == \
           ["celonis-action-flow"] * 2


def test_action_flow_findings_without_a_source_are_celonis_findings():
    # Else the "celonis" pattern aliases would not apply to what an Action Flow sends in Celonis' own words.
    finding = {"eventId": "af-3", "processArea": "ap", "deviationPattern": "late", "caseKey": "INV-3",
               "detectedAt": "2026-11-19T08:30:00Z"}
    assert [f.source for f in normalize([finding]).findings] == ["celonis"]


def test_bad_normalized_finding_from_an_action_flow_is_explained_as_a_finding():
    error = rejected({"eventId": "af-1", "processArea": "ap"})
    assert {"/caseKey", "/deviationPattern", "/detectedAt"} <= {e.pointer for e in error.errors}


def test_query_parameters_win_over_the_mapping(mapping):
    mapping({"triggers": {"trg-1": {"processArea": "mapped-area", "deviationPattern": "mapped-pattern"}}})
    assert normalize(event(), processArea="query-area").findings[0].processArea == "query-area"
    f = celonis.normalize(json.dumps(event()).encode(), {}).findings[0]
    assert (f.processArea, f.deviationPattern) == ("mapped-area", "mapped-pattern")


def test_trigger_section_overrides_the_default_and_merges_aliases(mapping):
    mapping({"default": {"processArea": "ap", "deviationPattern": "default-pattern",
                         "fieldAliases": {"VENDOR_ID": "supplier"}},
             "triggers": {"trg-2": {"deviationPattern": "price-variance", "fieldAliases": {"INVOICE_ID": "doc"}}}})
    default, override = (celonis.normalize(json.dumps(event(trigger=t)).encode(), {}).findings[0]
                         for t in ("trg-1", "trg-2"))
    assert (default.deviationPattern, override.deviationPattern) == ("default-pattern", "price-variance")
    assert default.attributes == {"invoiceId": "INV-1", "supplier": "V-9"}
    assert override.attributes == {"doc": "INV-1", "supplier": "V-9"}


def test_upper_snake_field_ids_become_camel_case_attributes():
    assert celonis.camel("INVOICE_ID") == "invoiceId"
    assert celonis.camel("PURCHASE_ORDER_NUMBER") == "purchaseOrderNumber"
    assert celonis.camel("vendor_id") == "vendorId"
    assert celonis.camel("alreadyCamel") == "alreadyCamel"
    assert set(normalize(event()).findings[0].attributes) == {"invoiceId", "vendorId"}


def test_field_values_are_coerced_by_their_celonis_type():
    fields = [field("INVOICE_ID", "INV-1", ident=True), field("AMOUNT", "12.5", "FLOAT"),
              field("DAYS", "4", "INTEGER"), field("BLOCKED", "true", "boolean"), field("PAID", 0, "BOOLEAN"),
              field("DUE", 1700000000000, "DATE"), field("POSTED", "2023-11-14 22:13:20", "DATE"),
              field("NOTE", None, "FLOAT"), field("CODE", 42), field("CUSTOM", {"a": 1}, "GEOMETRY")]
    attrs = normalize(event(fields=fields)).findings[0].attributes
    assert attrs["amount"] == 12.5 and attrs["days"] == 4 and isinstance(attrs["days"], int)
    assert attrs["blocked"] is True and attrs["paid"] is False
    assert attrs["due"] == attrs["posted"] == "2023-11-14T22:13:20Z"
    assert attrs["note"] is None and attrs["code"] == "42" and attrs["custom"] == {"a": 1}


def test_value_that_cannot_be_coerced_is_named_by_its_pointer():
    fields = [field("INVOICE_ID", "INV-1", ident=True), field("AMOUNT", "twelve", "FLOAT"),
              field("DAYS", "4.5", "INTEGER"), field("DUE", "next week", "DATE")]
    error = rejected(event(fields=fields))
    assert [e.pointer for e in error.errors] == ["/event/fields/1/value", "/event/fields/2/value",
                                                 "/event/fields/3/value"]
    assert "twelve" in error.errors[0].detail


def test_missing_process_area_names_the_query_parameter_and_the_trigger():
    error = rejected(event(trigger="unmapped-trigger"), deviationPattern="late")
    (problem,) = error.errors
    assert problem.pointer == "?processArea" and "unmapped-trigger" in problem.detail
    assert problem.to_dict()["parameter"] == "processArea"


def test_blank_query_parameter_is_rejected_not_replaced_by_the_mapping():
    error = rejected(event(trigger="ap-invoice-blocked"), processArea="  ")
    assert [e.pointer for e in error.errors] == ["?processArea"]


def test_missing_event_id_points_into_the_envelope():
    body = event()
    del body["event"]["id"]
    del body["subscriberId"]
    assert {e.pointer for e in rejected(body).errors} == {"/event/id", "/subscriberId"}


def test_list_with_one_bad_event_rejects_all_and_names_its_index():
    bad = event(3)
    del bad["event"]["id"]
    bad["event"]["fields"][1]["isIdentifier"] = "maybe"
    error = rejected([event(1), event(2), bad, event(4)])
    assert error.extra["invalidIndexes"] == [2]
    assert {e.pointer for e in error.errors} == {"/2/event/id", "/2/event/fields/1/isIdentifier"}


def test_bad_values_in_several_events_are_reported_together():
    bad = [field("INVOICE_ID", "INV-1", ident=True), field("AMOUNT", "x", "FLOAT")]
    error = rejected([event(1, fields=bad), event(2), event(3, fields=bad)])
    assert error.extra["invalidIndexes"] == [0, 2]


def test_creation_date_in_epoch_seconds_or_milliseconds_is_the_same_instant():
    dates = [instant(normalize(event(creationDate=v)).findings[0].detectedAt)
             for v in (1763600000, 1763600000000, "2025-11-20T00:53:20Z")]
    assert dates[0] == dates[1] == dates[2]


def test_more_than_a_thousand_events_are_rejected_and_an_empty_list_too():
    with pytest.raises(InvalidInput, match="at most 1000"):
        normalize([event(n) for n in range(1001)])
    with pytest.raises(InvalidInput, match="empty"):
        normalize([])


def test_case_key_comes_from_identifier_fields_else_from_event_identifier():
    two = [field("COMPANY", "1000", ident=True), field("DOC", "51", ident=True)]
    assert normalize(event(fields=two)).findings[0].caseKey == "1000|51"
    assert normalize(event(9, fields=[field("VENDOR_ID", "V-1")])).findings[0].caseKey == "INV-9"
    nothing = event(fields=[])
    nothing["event"]["identifier"] = None
    assert [e.pointer for e in rejected(nothing).errors] == ["/event/identifier"]


def test_mapped_case_key_field_must_be_present(mapping):
    mapping({"default": {"caseKeyFields": ["DOC_NO"], **AP}})
    assert [e.pointer for e in rejected(event()).errors] == ["/event/fields"]


def test_kpi_impact_comes_from_mapped_fields_and_constants(mapping):
    mapping({"default": {**AP, "kpiImpact": {"valueAtStake": "AMOUNT", "daysSaved": "daysBlocked",
                                             "costOfDelayPerDay": 30, "currency": {"value": "EUR"}}}})
    fields = [field("INVOICE_ID", "INV-1", ident=True), field("AMOUNT", "100.5", "FLOAT"),
              field("DAYS_BLOCKED", "2", "INTEGER")]
    f = celonis.normalize(json.dumps(event(fields=fields)).encode(), {}).findings[0]
    assert f.kpiImpact == KpiImpact(daysSaved=2, costOfDelayPerDay=30, valueAtStake=100.5, currency="EUR")
    assert f.impact_money() == 160.5
    without_amounts = celonis.normalize(json.dumps(event()).encode(), {}).findings[0]
    assert without_amounts.kpiImpact is None


def test_a_named_kpi_estimate_alone_is_sent_as_the_kpi_impact(mapping):
    mapping({"default": {**AP, "kpiImpact": {"metric": {"value": "days_to_close"}, "estimate": "DAYS_LATE",
                                             "unit": {"value": "days"}}}})
    fields = [field("INVOICE_ID", "INV-1", ident=True), field("DAYS_LATE", "4", "FLOAT")]
    f = celonis.normalize(json.dumps(event(fields=fields)).encode(), {}).findings[0]
    assert (f.kpiImpact.metric, f.kpiImpact.estimate, f.kpiImpact.unit) == ("days_to_close", 4.0, "days")
    # A metric named by a constant, with no estimate in the event, claims nothing.
    assert celonis.normalize(json.dumps(event()).encode(), {}).findings[0].kpiImpact is None


def test_each_subscription_event_is_handed_back_with_its_offset_and_creation_time():
    received = normalize([event(41), event(43, offset=None)])
    assert [(d.subscription, d.offset, d.where) for d in received.deliveries] == [
        ("sub-1", 41, "/0/creationDate"), ("sub-1", None, "/1/creationDate")]
    assert received.deliveries[0].at == instant(1763600000000)
    assert normalize({"eventId": "af-1", "processArea": "ap", "deviationPattern": "late", "caseKey": "C",
                      "detectedAt": "2026-11-19T08:30:00Z"}).deliveries == []


def test_strict_reading_refuses_an_action_flow_typo_the_tolerant_one_keeps():
    sent = {"eventId": "af-1", "processArea": "ap", "deviationPattern": "late", "caseKey": "INV-1",
            "detectedAt": "2026-11-19T08:30:00Z", "severty": "high"}
    assert celonis.normalize(json.dumps(sent).encode(), {}).findings[0].extensions == {"severty": "high"}
    with pytest.raises(InvalidInput) as exc:
        celonis.normalize(json.dumps(sent).encode(), {}, strict=True)
    assert [e.pointer for e in exc.value.errors] == ["/severty"]


def test_impact_out_of_range_points_at_the_field_it_came_from(mapping):
    mapping({"default": {**AP, "kpiImpact": {"valueAtStake": "AMOUNT"}}})
    fields = [field("INVOICE_ID", "INV-1", ident=True), field("AMOUNT", "-5", "FLOAT")]
    error = rejected([event(1), event(2, fields=fields)])
    assert [e.pointer for e in error.errors] == ["/1/event/fields/1/value"]
    assert error.extra["invalidIndexes"] == [1]


def test_severity_and_root_cause_come_from_their_fields():
    fields = [field("INVOICE_ID", "INV-1", ident=True), field("SEVERITY", "Warning"),
              field("ROOT_CAUSE", "PO not referenced")]
    f = normalize(event(fields=fields)).findings[0]
    assert (f.severity, f.rootCause) == ("medium", "PO not referenced")
    fields[1]["value"] = "apocalyptic"
    assert [e.pointer for e in rejected(event(fields=fields)).errors] == ["/event/fields/1/value"]


def test_shipped_mapping_turns_the_sample_into_accounts_payable_findings():
    result = celonis.normalize((ROOT / "samples" / "celonis-ap-invoice-blocked.json").read_bytes(), {})
    assert len(result.findings) == 12
    f = result.findings[1]
    assert (f.processArea, f.deviationPattern, f.caseKey) == ("accounts-payable", "invoice-missing-po", "INV-40101")
    assert f.attributes["missingFields"] == ["poNumber"] and f.attributes["invoiceAmount"] == 3795.48
    assert f.impact_money() == 2 * 25


def test_body_that_is_not_json_is_malformed():
    with pytest.raises(MalformedBody):
        celonis.normalize(b'{"subscriberId": ', AP)


def test_a_body_signed_subscription_event_may_not_take_its_pattern_from_the_unsigned_query():
    body = json.dumps(event(trigger="ap-invoice-blocked")).encode()
    with pytest.raises(InvalidInput) as exc:
        celonis.normalize(body, {"deviationPattern": "price-variance"}, signed=True)
    assert [e.to_dict()["parameter"] for e in exc.value.errors] == ["deviationPattern"]
    assert "not signed" in exc.value.errors[0].detail
    assert celonis.normalize(body, {"deviationPattern": "price-variance"}).findings[0].deviationPattern == \
        "price-variance"


@pytest.mark.parametrize("created", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+05:00"])
def test_a_creation_date_outside_the_years_1_to_9999_in_utc_is_refused_naming_it(created):
    # Read for the subscription's offsets before the findings are validated: its OverflowError was a 500.
    sent = event(trigger="ap-invoice-blocked", creationDate=created)
    for body, where in ((sent, "/creationDate"), ([event(trigger="ap-invoice-blocked"), sent], "/1/creationDate")):
        with pytest.raises(InvalidInput) as exc:
            celonis.normalize(json.dumps(body).encode(), {})
        assert [e.pointer for e in exc.value.errors] == [where]
        assert "outside the years 1 to 9999" in exc.value.errors[0].detail
    doc = {"specversion": "1.0", "id": "e1", "source": "/s", "type": "t", "data": sent}
    events, batch = cloudevents.read(cloudevents.STRUCTURED, {}.get, json.dumps(doc).encode())
    with pytest.raises(InvalidInput) as exc:
        celonis.from_events(events, batch, {}, instant(1763600000))
    assert [e.pointer for e in exc.value.errors] == ["/data/creationDate"]
