"""CloudEvents, subscription offsets and strict reading over a real socket: the local host on Azurite, without a
Celonis signing secret (tests/http/test_signed_events_http.py has the signed host)."""
import json
import uuid
from datetime import timedelta

import pytest
import requests

from tests.factories import celonis_envelope, finding, iso_now, post_celonis

AP = {"processArea": "accounts-payable", "deviationPattern": "invoice-missing-po"}


now = iso_now


@pytest.fixture(scope="module")
def plain(host):
    return host.base_url


def stored(base: str, case_key: str) -> bool:
    items = requests.get(f"{base}/opportunities", params={"top": 200}, timeout=30).json()["items"]
    return any(i["caseKey"] == case_key for i in items)


def oe_event(case_key: str, time: str | None = None, **headers: str) -> tuple[bytes, dict[str, str]]:
    """An Orchestration Engine CloudEvent in binary mode: finding fields as data, the type mapped to AP."""
    body = json.dumps({"caseKey": case_key, "attributes": {"invoiceId": case_key, "vendorId": "V-9",
                                                           "missingFields": ["poNumber"]}}).encode()
    sent = {"content-type": "application/json", "ce-specversion": "1.0", "ce-id": str(uuid.uuid4()),
            "ce-source": "/celonis/oe/src_w34a", "ce-type": "ap.invoice.blocked", "ce-time": time or now(),
            **headers}
    return body, sent


envelope = celonis_envelope



def test_without_a_secret_the_celonis_route_takes_unsigned_events_of_any_age(plain):
    assert post_celonis(plain, envelope("sub-open", 1, now(-timedelta(days=2)))).status_code == 202
    body, headers = oe_event("OE-OPEN-1", time=now(-timedelta(days=2)))
    r = requests.post(f"{plain}/findings/celonis", data=body, headers=headers, timeout=30)
    assert r.status_code == 202, r.text
    opp = requests.get(f"{plain}/opportunities/{r.json()['opportunities'][0]['id']}", timeout=30).json()
    # The event's type is mapped (mappings/celonis.json cloudEventTypes), its time is when it was detected.
    assert (opp["processArea"], opp["deviationPattern"]) == ("accounts-payable", "invoice-missing-po")
    assert opp["detectedAt"].startswith(now(-timedelta(days=2))[:10])


# Offsets

def test_offsets_are_shown_per_subscription_and_a_skip_is_one_incident(plain):
    for offsets in ([1, 2], [5], [2], [4]):
        r = post_celonis(plain, [envelope("sub-gap", n) for n in offsets])
        assert r.status_code == 202, r.text
    [item] = [i for i in requests.get(f"{plain}/sources", timeout=30).json()["items"] if i["subscription"] == "sub-gap"]
    assert (item["source"], item["highestOffset"], item["gaps"], item["redelivered"]) == ("celonis", 5, 1, 1)
    assert item["missing"] == [{"from": 3, "to": 3}] and item["events"] == 4 and item["lastEventAt"]
    incidents = [i for i in requests.get(f"{plain}/incidents", timeout=30).json()["items"]
                 if "sub-gap" in i["detail"]]
    assert [(i["kind"], i["detail"]) for i in incidents] == [
        ("lost_events", "offsets 3..4 missing for subscription sub-gap (celonis); replay from Celonis")]


def test_the_sources_view_is_a_bounded_list_like_the_others(plain):
    for sub in ("sub-top-1", "sub-top-2"):
        assert post_celonis(plain, envelope(sub, 1)).status_code == 202
    [newest] = requests.get(f"{plain}/sources", params={"top": 1}, timeout=30).json()["items"]
    assert newest["subscription"] == "sub-top-2"
    for bad in ("0", "1001", "ten"):
        r = requests.get(f"{plain}/sources", params={"top": bad}, timeout=30)
        assert r.status_code == 422 and r.json()["errors"][0]["parameter"] == "top", r.text


def test_a_refused_batch_advances_no_offset(plain):
    assert post_celonis(plain, envelope("sub-refused", 1)).status_code == 202
    bad = envelope("sub-refused", 9)
    bad["event"]["fields"][1]["value"] = "two"  # not an INTEGER
    r = post_celonis(plain, [envelope("sub-refused", 2), bad])
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/1/event/fields/1/value"
    [item] = [i for i in requests.get(f"{plain}/sources", timeout=30).json()["items"]
              if i["subscription"] == "sub-refused"]
    assert (item["highestOffset"], item["gaps"]) == (1, 0)


# CloudEvents

def ce_headers(**over: str) -> dict[str, str]:
    return {"content-type": "application/json", "ce-specversion": "1.0", "ce-id": str(uuid.uuid4()),
            "ce-source": "https://erp.example/exports", "ce-type": "com.example.finding", **over}


def test_binary_structured_and_batch_cloudevents_are_accepted_on_the_generic_route(plain):
    r = requests.post(f"{plain}/findings", json=finding(caseKey="CE-BIN-1"), headers=ce_headers(), timeout=30)
    assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
    one = {"specversion": "1.0", "id": "s-1", "source": "https://erp.example/exports", "type": "t",
           "data": finding(caseKey="CE-STR-1")}
    r = requests.post(f"{plain}/findings", data=json.dumps(one), timeout=30,
                      headers={"content-type": "application/cloudevents+json"})
    assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
    batch = [{**one, "id": f"b-{k}", "data": finding(caseKey=f"CE-BATCH-{k}")} for k in range(3)]
    r = requests.post(f"{plain}/findings", data=json.dumps(batch), timeout=30,
                      headers={"content-type": "application/cloudevents-batch+json"})
    assert r.status_code == 202 and r.json()["accepted"] == 3, r.text
    assert all(stored(plain, k) for k in ("CE-BIN-1", "CE-STR-1", "CE-BATCH-0", "CE-BATCH-2"))


def test_the_same_event_id_and_source_posted_twice_is_a_duplicate(plain):
    headers = ce_headers(**{"ce-id": "dup-1"})
    first = requests.post(f"{plain}/findings", json=finding(caseKey="CE-DUP"), headers=headers, timeout=30).json()
    again = requests.post(f"{plain}/findings", json=finding(caseKey="CE-DUP"), headers=headers, timeout=30).json()
    assert (first["accepted"], again["accepted"], again["duplicates"]) == (1, 0, 1)
    other = requests.post(f"{plain}/findings", json=finding(caseKey="CE-DUP"), timeout=30,
                          headers={**headers, "ce-source": "https://elsewhere.example"}).json()
    assert other["duplicates"] == 0  # the same id from another source is another event


@pytest.mark.parametrize("route", ["/findings", "/findings/celonis"])
def test_a_malformed_cloudevent_is_refused_naming_the_attribute(plain, route):
    headers = ce_headers()
    del headers["ce-id"]
    r = requests.post(plain + route, json=finding(caseKey="CE-BAD-1"), headers=headers, timeout=30)
    assert r.status_code == 422 and r.json()["errors"] == [
        {"header": "ce-id", "detail": "required CloudEvents attribute missing"}]
    batch = [{"specversion": "0.3", "id": "x", "source": "s", "type": "t", "data": finding(caseKey="CE-BAD-2")}]
    r = requests.post(plain + route, data=json.dumps(batch), timeout=30, params=AP,
                      headers={"content-type": "application/cloudevents-batch+json"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/0/specversion"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert not stored(plain, "CE-BAD-1") and not stored(plain, "CE-BAD-2")


def test_a_subscription_envelope_in_a_structured_cloudevent_records_its_offset(plain):
    event = {"specversion": "1.0", "id": "env-1", "source": "celonis://team/sub-ce", "type": "celonis.trigger",
             "time": now(), "data": envelope("sub-ce", 7)}
    r = requests.post(f"{plain}/findings/celonis", data=json.dumps(event), timeout=30,
                      headers={"content-type": "application/cloudevents+json"})
    assert r.status_code == 202, r.text
    [item] = [i for i in requests.get(f"{plain}/sources", timeout=30).json()["items"] if i["subscription"] == "sub-ce"]
    assert item["highestOffset"] == 7


# Strict reading

def test_strict_is_asked_per_call(plain):
    typo = finding(caseKey="STRICT-1", severty="high")
    r = requests.post(f"{plain}/findings", json=typo, timeout=30)
    assert r.status_code == 202 and stored(plain, "STRICT-1")
    r = requests.post(f"{plain}/findings", json=dict(typo, eventId="s-2"), params={"strict": "true"}, timeout=30)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/severty"
    r = requests.post(f"{plain}/findings", json=dict(typo, eventId="s-3"), params={"strict": "yes"}, timeout=30)
    assert r.status_code == 422 and r.json()["errors"] == [{"parameter": "strict", "detail": "expected true or false"}]
