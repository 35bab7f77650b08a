"""CloudEvents 1.0 (binary, structured, batch) into findings: the event's id + source become the eventId, its
time and subject fill in what the data leaves out, and a malformed event is refused naming the attribute."""
import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest

from shared.domain.errors import InvalidInput, MalformedBody
from shared.ingest import celonis, cloudevents
from tests.factories import finding

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
ATTRS = {"specversion": "1.0", "id": "A234-1234-1234", "source": "/celonis/oe/src_w34a", "type": "ap.invoice.blocked"}


def binary(data, **headers):
    sent = {f"ce-{k}": v for k, v in {**ATTRS, **headers}.items() if v is not None}
    return cloudevents.read("application/json", sent.get, json.dumps(data).encode())


def structured(doc, kind=cloudevents.STRUCTURED):
    return cloudevents.read(kind, {}.get, json.dumps(doc).encode())


def carried(read, source="generic", strict=False):
    events, batch = read
    return cloudevents.findings(events, batch, source, NOW, strict)


def refused(call, *args, **kwargs):
    with pytest.raises(InvalidInput) as exc:
        call(*args, **kwargs)
    return [e.to_dict() for e in exc.value.errors]


def test_a_request_without_ce_headers_or_a_cloudevents_type_is_no_cloudevent():
    assert cloudevents.read("application/json", {}.get, b"{}") is None


def test_binary_mode_is_recognised_by_ce_specversion_alone():
    # A proxy's stray ce-id (or a half-set of ce-* headers) is no CloudEvent: the HTTP binding's marker is
    # ce-specversion, so the plain body is read as it would be without them.
    stray = {"ce-id": "from-a-proxy", "ce-source": "s", "ce-type": "t"}
    assert cloudevents.read("application/json", stray.get, b"{}") is None


def test_binary_mode_takes_the_attributes_from_headers_and_the_body_as_data():
    [f] = carried(binary(finding(eventId="ignored")))
    assert f.eventId == "ce:/celonis/oe/src_w34a:A234-1234-1234" and f.processArea == "accounts-payable"


def test_structured_mode_takes_one_event_object():
    [f] = carried(structured({**ATTRS, "data": finding()}))
    assert f.eventId == "ce:/celonis/oe/src_w34a:A234-1234-1234"


def test_a_batch_is_an_array_of_structured_events_each_with_its_own_id():
    found = carried(structured([{**ATTRS, "id": "e1", "data": finding()}, {**ATTRS, "id": "e2", "data": finding()}],
                               cloudevents.BATCH))
    assert [f.eventId for f in found] == ["ce:/celonis/oe/src_w34a:e1", "ce:/celonis/oe/src_w34a:e2"]


def test_data_holding_several_findings_suffixes_each_with_its_index():
    found = carried(structured({**ATTRS, "id": "e1", "data": [finding(), finding()]}))
    assert [f.eventId for f in found] == ["ce:/celonis/oe/src_w34a:e1:0", "ce:/celonis/oe/src_w34a:e1:1"]


def test_data_base64_holding_json_is_the_data():
    encoded = base64.b64encode(json.dumps(finding(caseKey="B64-1")).encode()).decode()
    [f] = carried(structured({**ATTRS, "data_base64": encoded}))
    assert f.caseKey == "B64-1"


def test_the_same_id_from_another_source_is_another_event():
    ids = {cloudevents.event_id(s, i) for s, i in [("a:b", "c"), ("a", "b:c"), ("a", "b"), ("a%3Ab", "c")]}
    assert len(ids) == 4


def test_an_event_id_past_256_characters_is_hashed_deterministically():
    long = cloudevents.event_id("https://example.com/" + "s" * 300, "id-1", 3)
    assert long.startswith("ceh:") and long.endswith(":3") and len(long) <= 256
    assert long == cloudevents.event_id("https://example.com/" + "s" * 300, "id-1", 3)


def test_time_and_subject_fill_in_detected_at_and_case_key():
    data = {k: v for k, v in finding().items() if k not in ("detectedAt", "caseKey")}
    [f] = carried(binary(data, time="2026-12-03T09:58:00Z", subject="INV-CE-1"))
    assert (f.caseKey, f.detectedAt) == ("INV-CE-1", datetime(2026, 12, 3, 9, 58, tzinfo=UTC))


def test_without_a_time_the_finding_was_detected_when_received():
    data = {k: v for k, v in finding().items() if k != "detectedAt"}
    assert carried(binary(data))[0].detectedAt == NOW


@pytest.mark.parametrize("missing", ["id", "source", "type"])
def test_binary_mode_without_a_required_attribute_names_its_header(missing):
    assert refused(binary, finding(), **{missing: None}) == [
        {"header": f"ce-{missing}", "detail": "required CloudEvents attribute missing"}]


def test_a_specversion_other_than_1_0_is_refused():
    assert refused(binary, finding(), specversion="0.3")[0]["header"] == "ce-specversion"
    assert refused(structured, {**ATTRS, "specversion": "v1.0", "data": {}})[0]["pointer"] == "/specversion"


def test_binary_data_that_is_not_json_is_a_400():
    with pytest.raises(MalformedBody):
        cloudevents.read("application/json", {"ce-id": "1", "ce-source": "s", "ce-type": "t",
                                              "ce-specversion": "1.0"}.get, b"<xml/>")


def test_a_bad_time_names_the_attribute():
    assert refused(binary, finding(), time="yesterday")[0]["header"] == "ce-time"


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+05:00"])
def test_a_time_outside_the_years_1_to_9999_in_utc_is_named_as_such(when):
    [error] = refused(binary, finding(), time=when)
    assert error["header"] == "ce-time" and "outside the years 1 to 9999" in error["detail"]
    [error] = refused(structured, [{**ATTRS, "time": when, "data": finding()}], cloudevents.BATCH)
    assert error["pointer"] == "/0/time" and "outside the years 1 to 9999" in error["detail"]


def test_a_malformed_event_in_a_batch_is_named_by_its_index():
    errors = refused(structured, [{**ATTRS, "data": finding()}, {**ATTRS, "specversion": "2.0", "id": ""}],
                     cloudevents.BATCH)
    assert {e["pointer"] for e in errors} == {"/1/id", "/1/specversion", "/1/data"}


@pytest.mark.parametrize("doc, where", [
    ({**ATTRS, "data": {}, "data_base64": "e30="}, "/data_base64"),
    ({**ATTRS, "data_base64": "not base64!"}, "/data_base64"),
    ({**ATTRS, "data_base64": base64.b64encode(b"not json").decode()}, "/data_base64"),
    ({**ATTRS, "datacontenttype": "text/csv", "data": "a,b"}, "/datacontenttype"),
    ({**ATTRS, "time": 1764756000, "data": {}}, "/time"),
])
def test_structured_data_that_is_not_json_is_refused_naming_the_attribute(doc, where):
    assert where in {e["pointer"] for e in refused(structured, doc)}


def test_events_carrying_more_than_1000_findings_are_refused_before_their_data_is_read():
    # Counted per event (a list's length, else 1) as the events are read: expanding 1,000 events of 1,300 findings
    # each before counting took 11 s to reach the same 422.
    batch = [{**ATTRS, "id": "e1", "data": [{}] * 600}, {**ATTRS, "id": "e2", "data": [{}] * 401}]
    assert refused(structured, batch, cloudevents.BATCH) == [
        {"pointer": "", "detail": "at most 1000 findings per request"}]
    assert refused(binary, [{}] * 1001) == [{"pointer": "", "detail": "at most 1000 findings per request"}]


def test_an_empty_batch_is_refused():
    assert refused(structured, [], cloudevents.BATCH) == [{"pointer": "", "detail":
                                                           "expected an array of at least one event"}]


def test_a_bad_finding_in_an_event_is_named_where_the_sender_put_it():
    errors = refused(carried, structured([{**ATTRS, "data": finding()}, {**ATTRS, "data": finding(severity=7)}],
                                         cloudevents.BATCH))
    assert errors[0]["pointer"] == "/1/data/severity"


def test_a_bad_subject_is_named_as_the_attribute_it_came_from():
    data = {k: v for k, v in finding().items() if k != "caseKey"}
    errors = refused(carried, binary(data, subject="x" * 300))
    assert errors[0]["header"] == "ce-subject" and "caseKey" in errors[0]["detail"]


def test_strict_refuses_unknown_fields_in_the_data():
    data = finding(vendr="V-1")
    assert carried(binary(data))[0].extensions == {"vendr": "V-1"}
    assert refused(carried, binary(data), "generic", True)[0]["pointer"] == "/vendr"


# On the Celonis route: subscription envelopes as data, and Orchestration Engine data completed by query or mapping.

def envelope(n=1):
    return {"subscriberId": "sub-1", "triggerId": "ap-invoice-blocked", "offset": n,
            "creationDate": "2026-12-03T09:59:00Z",
            "event": {"id": f"ev-{n}", "fields": [{"id": "INVOICE_ID", "value": f"INV-{n}", "type": "STRING"}]}}


def test_a_subscription_envelope_as_event_data_keeps_its_offset_and_its_subscription_event_id():
    events, batch = structured({**ATTRS, "data": [envelope(41), envelope(42)]})
    received = celonis.from_events(events, batch, {}, NOW)
    assert [f.eventId for f in received.findings] == ["celonis:sub-1:ap-invoice-blocked:ev-41",
                                                      "celonis:sub-1:ap-invoice-blocked:ev-42"]
    assert [(d.subscription, d.offset, d.where) for d in received.deliveries] == [
        ("sub-1", 41, "/data/0/creationDate"), ("sub-1", 42, "/data/1/creationDate")]


def test_a_subscription_event_sent_plain_and_inside_a_cloudevent_is_one_event():
    plain = celonis.normalize(json.dumps(envelope(43)).encode(), {})
    wrapped = celonis.from_events(*structured({**ATTRS, "data": envelope(43)}), {}, NOW)
    assert [f.eventId for f in wrapped.findings] == [f.eventId for f in plain.findings]


def test_cloudevent_ids_on_the_celonis_route_are_never_ids_the_generic_route_gives():
    # The generic route is unsigned: were the ids the same, anyone could post an event's id + source there first
    # and the genuine signed event would be dropped as its duplicate.
    data = {"caseKey": "INV-NS-1", "attributes": {"invoiceId": "INV-NS-1"}}
    doc = {**ATTRS, "data": {**data, "processArea": "accounts-payable", "deviationPattern": "invoice-missing-po"}}
    [generic] = carried(structured(doc))
    [signed] = celonis.from_events(*structured(doc), {}, NOW).findings
    assert generic.eventId == "ce:/celonis/oe/src_w34a:A234-1234-1234"
    assert signed.eventId == "celonis-ce:/celonis/oe/src_w34a:A234-1234-1234"
    long = celonis.from_events(*structured({**doc, "source": "s" * 300}), {}, NOW).findings[0].eventId
    assert long.startswith("celonis-ceh:") and len(long) <= 256


@pytest.mark.parametrize("data, where", [
    (finding(source="celonis"), "/data/source"),
    ([finding(), finding(source=" Celonis ")], "/data/1/source"),
])
def test_with_a_signing_secret_the_generic_route_refuses_findings_claiming_to_be_celonis(data, where):
    events, batch = structured({**ATTRS, "data": data})
    errors = refused(cloudevents.findings, events, batch, "generic", NOW, reserved=True)
    assert [e["pointer"] for e in errors] == [where] and "signed" in errors[0]["detail"]
    assert carried(structured({**ATTRS, "data": data}))  # without a secret, nothing is reserved


def test_orchestration_engine_data_takes_area_and_pattern_from_the_type_mapping():
    data = {"caseKey": "INV-OE-1", "attributes": {"invoiceId": "INV-OE-1"}}
    events, batch = binary(data, time="2026-12-03T09:58:00Z")
    [f] = celonis.from_events(events, batch, {}, NOW).findings
    assert (f.source, f.processArea, f.deviationPattern) == ("celonis", "accounts-payable", "invoice-missing-po")


def test_the_query_wins_over_the_type_mapping_and_the_data_over_both():
    events, batch = binary({"caseKey": "C-1", "deviationPattern": "price-variance"}, type="unmapped")
    [f] = celonis.from_events(events, batch, {"processArea": "ap", "deviationPattern": "q"}, NOW).findings
    assert (f.processArea, f.deviationPattern) == ("ap", "price-variance")


def test_an_unmapped_type_without_query_says_how_to_name_the_pattern():
    events, batch = binary({"caseKey": "C-1"}, type="com.example.unknown")
    errors = refused(celonis.from_events, events, batch, {}, NOW)
    assert {e["pointer"] for e in errors} == {"/processArea", "/deviationPattern"}
    assert "cloudEventTypes" in errors[0]["detail"] and "com.example.unknown" in errors[0]["detail"]


def test_a_batch_item_that_is_no_object_is_named_alone():
    assert refused(structured, [{**ATTRS, "data": finding()}, 7], cloudevents.BATCH) == [
        {"pointer": "/1", "detail": "expected an object (a structured CloudEvent)"}]


# Proven by x-emporix-hmac, which signs only the body: in binary mode the headers and the query are anyone's, so the
# finding is what the body says, and its eventId is the body's.

AP = {"processArea": "accounts-payable", "deviationPattern": "invoice-missing-po"}


def signed_binary(data, params=None, **headers):
    body = json.dumps(data).encode()
    sent = {f"ce-{k}": v for k, v in {**ATTRS, **headers}.items() if v is not None}
    events, batch = cloudevents.read("application/json", sent.get, body)
    return celonis.from_events(events, batch, params or {}, NOW, signed_body=body), body


def test_a_body_signed_event_is_identified_by_its_bytes_not_its_ce_id():
    data = {"caseKey": "INV-S-1", **AP, "detectedAt": "2026-12-03T09:00:00Z", "attributes": {"invoiceId": "INV-S-1"}}
    (first, body), (again, _) = signed_binary(data), signed_binary(data, id="fresh-id", time="2026-12-03T09:59:00Z")
    digest = hashlib.sha256(body).hexdigest()[:40]
    assert [f.eventId for f in first.findings] == [f.eventId for f in again.findings] == [f"oe:{digest}"]
    many, body = signed_binary([data, {**data, "caseKey": "INV-S-2"}])
    assert [f.eventId for f in many.findings] == [f"oe:{hashlib.sha256(body).hexdigest()[:40]}:{k}" for k in (0, 1)]


def test_a_body_signed_event_is_detected_when_its_data_says_else_when_received_never_at_ce_time():
    received, _ = signed_binary({"caseKey": "INV-S-3", **AP, "detectedAt": "2026-12-03T09:00:00Z"},
                                time="2026-12-03T09:58:00Z")
    assert received.findings[0].detectedAt == datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    assert signed_binary({"caseKey": "INV-S-3", **AP})[0].findings[0].detectedAt == NOW
    errors = refused(signed_binary, {"caseKey": "INV-S-3", **AP}, None, time="2026-12-03T09:58:00Z")
    assert [e["header"] for e in errors] == ["ce-time"] and "send detectedAt in the body" in errors[0]["detail"]


@pytest.mark.parametrize("data, params, headers, named", [
    ({**AP}, {}, {"subject": "INV-S-4"}, [{"header": "ce-subject"}]),
    ({"caseKey": "INV-S-5"}, {}, {"type": "ap.invoice.blocked"}, [{"header": "ce-type"}, {"header": "ce-type"}]),
    ({"caseKey": "INV-S-6", **AP}, {"processArea": "order-to-cash"}, {}, [{"parameter": "processArea"}]),
    ({"caseKey": "INV-S-7", "processArea": "accounts-payable"}, {"deviationPattern": "price-variance"},
     {"type": "unmapped"}, [{"parameter": "deviationPattern"}]),
])
def test_what_only_an_unsigned_header_or_the_query_would_say_is_refused_naming_it(data, params, headers, named):
    errors = refused(signed_binary, data, params, **headers)
    assert [{k: v for k, v in e.items() if k != "detail"} for e in errors] == named
    assert all("not signed" in e["detail"] for e in errors)


def test_signed_structured_events_keep_their_attributes_which_are_in_the_body():
    doc = {**ATTRS, "subject": "INV-S-8", "time": "2026-12-03T09:58:00Z", "data": {"attributes": {}}}
    body = json.dumps(doc).encode()
    events, batch = cloudevents.read(cloudevents.STRUCTURED, {}.get, body)
    [f] = celonis.from_events(events, batch, {}, NOW, signed_body=body).findings
    assert (f.caseKey, f.processArea, f.eventId) == ("INV-S-8", "accounts-payable",
                                                     "celonis-ce:/celonis/oe/src_w34a:A234-1234-1234")
    assert refused(celonis.from_events, events, batch, AP, NOW, signed_body=body)[0]["parameter"] == "processArea"
