"""Ingest over a real socket: the local host serving function_app against Azurite."""
import json
import time

import pytest

from tests.factories import finding


def wait_status(api, oid, status, timeout=60.0):
    """The opportunity once it has passed through `status` (the agents may have moved it further)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = api.get(f"/opportunities/{oid}").json()
        if any(h["to"] == status for h in body["history"]):
            return body
        time.sleep(0.05)
    raise AssertionError(f"{oid} never reached {status}: {body['status']}")


def test_finding_becomes_a_scored_opportunity_and_the_agents_take_it_from_the_queue(api):
    r = api.post("/findings", json=finding(caseKey="HTTP-1"), headers={"x-correlation-id": "corr-123"})
    assert r.status_code == 202
    body = r.json()
    assert body["accepted"] == 1 and body["duplicates"] == 0 and body["correlationId"] == "corr-123"
    [item] = body["opportunities"]
    assert item["status"] == "new" and item["priorityScore"] > 0
    opp = wait_status(api, item["id"], "triaged")
    assert opp["scores"]["priority"] == item["priorityScore"]
    assert "Priority =" in opp["rationale"] and opp["correlationId"] == "corr-123"
    assert [h["to"] for h in opp["history"]][:2] == ["new", "triaged"]


def test_same_event_twice_over_http_is_reported_as_duplicate(api):
    f = finding(caseKey="HTTP-2")
    first = api.post("/findings", json=f).json()
    second = api.post("/findings", json=f).json()
    assert first["accepted"] == 1 and second == {**second, "accepted": 0, "duplicates": 1}
    assert first["opportunities"][0]["id"] == second["opportunities"][0]["id"]


def test_batch_of_a_thousand_is_accepted_in_one_request(api):
    r = api.post("/findings", json=[finding(processArea="order-to-cash", deviationPattern="delivery-sla-at-risk",
                                            attributes={"orderId": "O", "customerId": "C"}) for _ in range(1000)])
    assert r.status_code == 202 and r.json()["accepted"] == 1000


def test_batch_with_one_bad_finding_stores_nothing(api):
    items = [finding(caseKey=f"HALF-{i}") for i in range(5)]
    items[3]["detectedAt"] = "not a date"
    r = api.post("/findings", json=items)
    assert r.status_code == 422
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["invalidIndexes"] == [3] and problem["errors"][0]["pointer"] == "/3/detectedAt"
    listed = api.get("/opportunities", params={"top": 200}).json()["items"]
    assert not any(i["caseKey"].startswith("HALF-") for i in listed)


@pytest.mark.parametrize("headers,data,status", [
    ({"content-type": "text/plain"}, b"{}", 415),
    ({}, b"{}", 415),
    ({"content-type": "application/json"}, b"{not json", 400),
    ({"content-type": "application/json"}, b"", 400),
    ({"content-type": "application/json"}, b"[]", 422),
    ({"content-type": "application/json"}, b'{"eventId": 5}', 422),
    ({"content-type": "application/json; charset=utf-8"}, b"\"just a string\"", 422),
])
def test_garbage_gets_a_problem_never_a_500(api, headers, data, status):
    r = api.post("/findings", data=data, headers=headers)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == status and r.json()["correlationId"]


def test_body_over_the_limit_is_413(api):
    r = api.post("/findings", data=b"[" + b" " * (4 * 1024 * 1024 + 10) + b"]",
                 headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["errors"][0]["header"] == "Content-Length"


def test_celonis_and_process_mining_routes_store_findings_in_one_vocabulary(api):
    celonis = {"subscriberId": "sub-1", "triggerId": "trg-1", "offset": 1, "creationDate": 1763600000000,
               "event": {"id": "ev-77", "identifier": "INV-CEL-1", "fields": [
                   {"id": "INVOICE_ID", "value": "INV-CEL-1", "type": "STRING", "isIdentifier": True},
                   {"id": "VENDOR_ID", "value": "V-9", "type": "STRING", "isIdentifier": False}]}}
    r = api.post("/findings/celonis", json=celonis,
                 params={"processArea": "accounts-payable", "deviationPattern": "invoice-missing-po"})
    assert r.status_code == 202, r.text
    opp = api.get(f"/opportunities/{r.json()['opportunities'][0]['id']}").json()
    assert opp["source"] == "celonis" and opp["attributes"]["invoiceId"] == "INV-CEL-1"
    pm = {"businessRuleSummaryStatistics": {"totalCount": 1, "errorCount": 1, "warningCount": 0, "okCount": 0,
                                            "undefinedCount": 0},
          "businessRuleStatistics": [{"name": "ORD-1", "valueIndex": 0, "startDate": 1763500000, "endDate": 1763600000,
                                      "count": 7, "value": "5.5", "category": 2}]}
    r = api.post("/findings/process-mining", json=pm,
                 params={"processArea": "order-to-cash", "deviationPattern": "delivery-sla-at-risk"})
    assert r.status_code == 202, r.text
    opp = api.get(f"/opportunities/{r.json()['opportunities'][0]['id']}").json()
    assert opp["caseKey"] == "ORD-1" and opp["attributes"]["metricValue"] == 5.5


def test_process_mining_route_accepts_the_designer_csv(api):
    csv = ("Name,Index,Start Date,End Date,Event Count,Metric Value,Severity\n"
           "ORD-CSV-1,0,2026-11-01T00:00:00Z,2026-11-03T00:00:00Z,4,2.5,2\n")
    r = api.post("/findings/process-mining", data=csv.encode(), headers={"content-type": "text/csv"},
                 params={"processArea": "order-to-cash", "deviationPattern": "delivery-sla-at-risk"})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1


def test_process_mining_without_process_area_names_the_parameter(api):
    r = api.post("/findings/process-mining", json={"businessRuleStatistics": []})
    assert r.status_code in (400, 422)
    assert any(e.get("parameter") == "processArea" for e in r.json()["errors"])


def test_a_chunked_request_body_is_read_whole(api):
    import json as _json
    raw = _json.dumps([finding(caseKey="CHUNK-1"), finding(caseKey="CHUNK-2")]).encode()
    r = api.post("/findings", data=(raw[i:i + 50] for i in range(0, len(raw), 50)),
                 headers={"content-type": "application/json"})
    assert r.status_code == 202 and r.json()["accepted"] == 2


# Found by an outside attack, each of these was a 500: the body decoder now answers them all, naming the place.
_HUGE = "1" * 4401
_ADMIN = {"Catalog.Approver", "Autonomy.Admin", "Backlog.Owner"}
_PM = {"processArea": "order-to-cash", "deviationPattern": "delivery-sla-at-risk"}


def _signed_in(*roles):
    from tests.http.test_catalog_http import _principal
    return _principal("ana@contoso.com", *roles)


def _send(api, method, route, raw, params=None, headers=None):
    return api.request(method, route, data=raw, params=params,
                       headers={"content-type": "application/json", **_signed_in(*_ADMIN), **(headers or {})})


def _problem(r, status):
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()["errors"]


@pytest.mark.parametrize("method, route, raw, where", [
    ("POST", "/findings", f'{{"eventId": "e", "attributes": {{"amount": {_HUGE}}}}}', "/attributes/amount"),
    ("POST", "/findings/celonis", f'{{"eventId": "e", "kpiImpact": {_HUGE}}}', "/kpiImpact"),
    ("POST", "/outcomes", f'[{{"caseKey": "C", "value": {_HUGE}}}]', "/0/value"),
    ("PATCH", "/opportunities/0123456789abcdef0123456789abcdef", f'{{"notes": {_HUGE}}}', "/notes"),
    ("PUT", "/actions/ap.request-missing-fields", f'{{"dailyCap": {_HUGE}}}', "/dailyCap"),
    ("POST", "/autonomy", f'{{"reason": "r", "freeze": {_HUGE}}}', "/freeze"),
])
def test_an_integer_of_4401_digits_is_a_422_naming_the_field_on_every_route(api, method, route, raw, where):
    errors = _problem(_send(api, method, route, raw.encode()), 422)
    assert errors[0]["pointer"] == where and "4401 digits" in errors[0]["detail"]


@pytest.mark.parametrize("route", ["/findings", "/findings/celonis"])
def test_bytes_that_are_not_utf8_are_a_400_naming_the_field(api, route):
    errors = _problem(_send(api, "POST", route, b'{"eventId": "ev-\xff\xfe"}'), 400)
    assert errors[0]["pointer"] == "/eventId"


@pytest.mark.parametrize("method, route, raw, where", [
    ("PATCH", "/opportunities/0123456789abcdef0123456789abcdef", b'{"notes": "see \\ud800 here"}', "/notes"),
    ("POST", "/outcomes", b'{"processArea": "ap", "caseKey": "INV-\\udc00", "metric": "m", "value": 1, '
                          b'"observedAt": "2026-12-03T10:00:00Z"}', "/caseKey"),
])
def test_a_lone_surrogate_is_a_422_naming_the_field(api, method, route, raw, where):
    assert _problem(_send(api, method, route, raw), 422)[0]["pointer"] == where


@pytest.mark.parametrize("route, raw, params, where", [
    ("/findings", '{"eventId": "e", "attributes": {"deep": ' + "[" * 1000 + "]" * 1000 + "}}", None,
     "/attributes/deep"),
    ("/findings/process-mining", '{"businessRuleStatistics": ' + "[" * 1000 + "]" * 1000 + "}", _PM,
     "/businessRuleStatistics"),
])
def test_arrays_nested_a_thousand_deep_are_a_400_naming_where(api, route, raw, params, where):
    errors = _problem(_send(api, "POST", route, raw.encode(), params), 400)
    assert errors[0]["pointer"].startswith(where + "/0") and "deeper than" in errors[0]["detail"]


def test_a_principal_header_holding_a_json_list_is_a_400_naming_the_header(api):
    import base64
    forged = {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b'[{"typ": "roles", "val": "Autonomy.Admin"}]').decode()}
    errors = _problem(_send(api, "POST", "/autonomy", b'{"freeze": true, "reason": "r"}', headers=forged), 400)
    assert errors == [{"header": "X-MS-CLIENT-PRINCIPAL", "detail": "is not an object with a list of claims"}]


_CE = {"specversion": "1.0", "id": "ce-nan", "source": "https://erp.example/exports", "type": "t"}
_APPROVAL = "/approvals/0123456789abcdef0123456789abcdef-a1-0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("method, route, raw, params, kind, where", [
    ("POST", "/findings", '{"eventId": "e", "attributes": {"amount": NaN}}', None, None, "/attributes/amount"),
    ("POST", "/findings", '[{"eventId": "e", "kpiImpact": Infinity}]', None, None, "/0/kpiImpact"),
    ("POST", "/findings/celonis", '{"eventId": "e", "attributes": {"amount": -Infinity}}', None, None,
     "/attributes/amount"),
    ("POST", "/findings", json.dumps({**_CE, "data": {"eventId": "e", "attributes": {"amount": "NaN"}}})
     .replace('"NaN"', "NaN"), None, "application/cloudevents+json", "/data/attributes/amount"),
    ("POST", "/findings", json.dumps([{**_CE, "data": {"eventId": "e", "attributes": {"amount": "NaN"}}}])
     .replace('"NaN"', "NaN"), None, "application/cloudevents-batch+json", "/0/data/attributes/amount"),
    ("POST", "/findings/process-mining", '{"businessRuleStatistics": [{"name": "r", "value": NaN}]}', _PM, None,
     "/businessRuleStatistics/0/value"),
    ("POST", "/outcomes", '[{"caseKey": "C", "value": NaN}]', None, None, "/0/value"),
    ("PATCH", "/opportunities/0123456789abcdef0123456789abcdef", '{"effortHours": NaN}', None, None, "/effortHours"),
    ("PUT", "/actions/ap.request-missing-fields", '{"holdoutPercent": NaN}', None, None, "/holdoutPercent"),
    ("POST", "/autonomy", '{"reason": "r", "freeze": NaN}', None, None, "/freeze"),
    ("POST", _APPROVAL, '{"decision": "run", "token": "t", "parameters": {"amount": NaN}}', None, None,
     "/parameters/amount"),
    ("POST", _APPROVAL + "/feedback", '{"helpful": "yes", "token": "t", "score": NaN}', None, None, "/score"),
])
def test_nan_or_infinity_is_a_400_naming_where_on_every_route_that_reads_json(api, method, route, raw, params,
                                                                              kind, where):
    # Python's json takes NaN, and NaN passes every limit it is compared with (a contract's maximum, an amount
    # threshold): a body holding one is no JSON, refused before anything reads it.
    r = _send(api, method, route, raw.encode(), params, {"content-type": kind} if kind else None)
    errors = _problem(r, 400)
    assert errors[0]["pointer"] == where and "is not a JSON number" in errors[0]["detail"], errors


def test_a_number_past_floats_range_is_a_422_naming_where(api):
    errors = _problem(_send(api, "POST", "/findings", b'{"eventId": "e", "attributes": {"amount": 1e999}}'), 422)
    assert errors[0]["pointer"] == "/attributes/amount" and "range" in errors[0]["detail"]
