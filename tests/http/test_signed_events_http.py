"""Signed Celonis events over a real socket: the local host on Azurite holding a Celonis signing secret (passed in
its settings dict, os.environ untouched). One host per module: the local host serves the services it installed last."""
import base64
import hashlib
import hmac
import json
import uuid
from datetime import timedelta

import pytest
import requests

from tests.conftest import hosted
from tests.factories import celonis_envelope, finding, iso_now, post_celonis

SECRET = "oe-webhook-secret"


now = iso_now


def hmac_of(body: bytes, secret: str = SECRET) -> str:
    """As the README's snippet (and the Celonis docs) compute it: Base64(HMAC-SHA256(secret, raw body))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture(scope="module")
def signed(azurite):
    with hosted(azurite, CELONIS_SIGNING_SECRET=SECRET, INGEST_STRICT_SOURCES="generic") as server:
        yield server.base_url


def stored(base: str, case_key: str) -> bool:
    items = requests.get(f"{base}/opportunities", params={"top": 200}, timeout=30).json()["items"]
    return any(i["caseKey"] == case_key for i in items)


def oe_event(case_key: str | None, time: str | None = None, data: dict | None = None,
             **headers: str) -> tuple[bytes, dict[str, str]]:
    """An Orchestration Engine CloudEvent in binary mode: the finding's identity in its (signed) data."""
    body = json.dumps(data if data is not None else {
        "caseKey": case_key, "processArea": "accounts-payable", "deviationPattern": "invoice-missing-po",
        "detectedAt": now(-timedelta(minutes=1)),
        "attributes": {"invoiceId": case_key, "vendorId": "V-9", "missingFields": ["poNumber"]}}).encode()
    sent = {"content-type": "application/json", "ce-specversion": "1.0", "ce-id": str(uuid.uuid4()),
            "ce-source": "/celonis/oe/src_w34a", "ce-type": "ap.invoice.blocked", "ce-time": time or now(),
            **headers}
    return body, sent


envelope = celonis_envelope



def unauthorized(r: requests.Response) -> dict:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


# Signatures

def test_an_orchestration_engine_event_signed_with_the_secret_is_stored(signed):
    body, headers = oe_event("SIG-OE-1")
    headers["x-emporix-hmac"] = hmac_of(body)
    r = requests.post(f"{signed}/findings/celonis", data=body, headers=headers, timeout=30)
    assert r.status_code == 202, r.text
    opp = requests.get(f"{signed}/opportunities/{r.json()['opportunities'][0]['id']}", timeout=30).json()
    assert (opp["caseKey"], opp["processArea"], opp["source"]) == ("SIG-OE-1", "accounts-payable", "celonis")


@pytest.mark.parametrize("case_key, signature", [
    ("SIG-MISSING", None),
    ("SIG-WRONG", hmac_of(b"{}", "another-secret")),
    ("SIG-TAMPERED", "of the body before it was changed"),
])
def test_a_missing_wrong_or_tampered_signature_is_a_401_and_nothing_is_stored(signed, case_key, signature):
    body, headers = oe_event(case_key)
    if signature == "of the body before it was changed":
        signature = hmac_of(body)
        body = body.replace(b"V-9", b"V-6")
    if signature is not None:
        headers["x-emporix-hmac"] = signature
    problem = unauthorized(requests.post(f"{signed}/findings/celonis", data=body, headers=headers, timeout=30))
    assert problem["errors"] == [{"header": "x-emporix-hmac", "detail": "missing or wrong"}]
    assert not stored(signed, case_key)


def test_a_captured_signed_event_sent_again_with_fresh_headers_is_a_duplicate(signed):
    # x-emporix-hmac signs only the body: a new ce-id and ce-time are anyone's to write, so the event is its bytes.
    body, headers = oe_event("SIG-REPLAY")
    headers["x-emporix-hmac"] = hmac_of(body)
    first = requests.post(f"{signed}/findings/celonis", data=body, headers=headers, timeout=30)
    assert first.status_code == 202 and first.json()["accepted"] == 1, first.text
    fresh = {**headers, "ce-id": str(uuid.uuid4()), "ce-time": now(timedelta(seconds=30))}
    again = requests.post(f"{signed}/findings/celonis", data=body, headers=fresh, timeout=30).json()
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    opp = requests.get(f"{signed}/opportunities/{again['opportunities'][0]['id']}", timeout=30).json()
    assert opp["sourceEventIds"] == ["oe:" + hashlib.sha256(body).hexdigest()[:40]] and opp["occurrences"] == 1


@pytest.mark.parametrize("data, headers, params, named", [
    ({"processArea": "accounts-payable", "deviationPattern": "invoice-missing-po"}, {"ce-subject": "SIG-PICKED"},
     None, {"header": "ce-subject"}),
    ({"caseKey": "SIG-TYPE", "detectedAt": now()}, {}, None, {"header": "ce-type"}),
    ({"caseKey": "SIG-QUERY", "processArea": "accounts-payable", "deviationPattern": "invoice-missing-po",
      "detectedAt": now()}, {}, {"deviationPattern": "delivery-sla-breached"}, {"parameter": "deviationPattern"}),
    ({"caseKey": "SIG-TIME", "processArea": "accounts-payable", "deviationPattern": "invoice-missing-po"}, {}, None,
     {"header": "ce-time"}),
])
def test_a_body_signed_event_takes_nothing_from_unsigned_headers_or_the_query(signed, data, headers, params, named):
    body, sent = oe_event(None, data=data, **headers)
    sent["x-emporix-hmac"] = hmac_of(body)
    r = requests.post(f"{signed}/findings/celonis", data=body, headers=sent, params=params, timeout=30)
    assert r.status_code == 422, r.text
    assert named.items() <= r.json()["errors"][0].items() and "not signed" in r.json()["errors"][0]["detail"]
    assert not any(stored(signed, k) for k in ("SIG-PICKED", "SIG-TYPE", "SIG-QUERY", "SIG-TIME"))


def test_the_secret_itself_vouches_for_headers_and_query_too(signed):
    body, sent = oe_event(None, data={"attributes": {"invoiceId": "SIG-HDR-OE"}}, **{"ce-subject": "SIG-HDR-OE"})
    r = requests.post(f"{signed}/findings/celonis", data=body, headers={**sent, "x-closedloop-secret": SECRET},
                      timeout=30)
    assert r.status_code == 202, r.text
    opp = requests.get(f"{signed}/opportunities/{r.json()['opportunities'][0]['id']}", timeout=30).json()
    assert (opp["caseKey"], opp["deviationPattern"]) == ("SIG-HDR-OE", "invoice-missing-po")


def test_a_signed_event_whose_time_is_past_the_window_is_a_replay(signed):
    body, headers = oe_event("SIG-STALE", time=now(-timedelta(minutes=6)))
    headers["x-emporix-hmac"] = hmac_of(body)
    problem = unauthorized(requests.post(f"{signed}/findings/celonis", data=body, headers=headers, timeout=30))
    assert problem["errors"][0]["header"] == "ce-time" and "replay" in problem["detail"]
    assert not stored(signed, "SIG-STALE")


def test_a_subscription_proves_itself_with_the_secret_in_its_callback_header(signed):
    r = post_celonis(signed, envelope("sub-hdr", 1), {"x-closedloop-secret": SECRET})
    assert r.status_code == 202, r.text
    unauthorized(post_celonis(signed, envelope("sub-hdr", 2), {"x-closedloop-secret": "guess"}))
    assert not stored(signed, "sub-hdr-2")


def test_a_stale_subscription_event_is_refused_as_a_replay_only_once_its_offset_was_seen(signed):
    key = {"x-closedloop-secret": SECRET}
    assert post_celonis(signed, envelope("sub-late", 10), key).status_code == 202
    hours_ago = now(-timedelta(hours=3))
    # Celonis redelivering offset 11 after an outage keeps its first creationDate: late, not a replay.
    assert post_celonis(signed, envelope("sub-late", 11, hours_ago), key).status_code == 202
    problem = unauthorized(post_celonis(signed, envelope("sub-late", 11, hours_ago), key))
    assert problem["errors"][0]["pointer"] == "/creationDate"


def test_a_source_in_ingest_strict_sources_refuses_unknown_fields_whatever_the_query_says(signed):
    typo = finding(caseKey="STRICT-SRC", severty="high")
    for params in ({}, {"strict": "false"}):
        r = requests.post(f"{signed}/findings", json=typo, params=params, timeout=30)
        assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/severty"
    assert not stored(signed, "STRICT-SRC")


# The unsigned generic route cannot speak for the signed one

def test_with_a_secret_the_generic_route_refuses_findings_in_the_signed_routes_name(signed):
    r = requests.post(f"{signed}/findings", json=[finding(caseKey="CLAIM-1"), finding(caseKey="CLAIM-2",
                                                                                      source="celonis")], timeout=30)
    assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["/1/source"], r.text
    r = requests.post(f"{signed}/findings", json=finding(caseKey="CLAIM-3", eventId="oe:" + "0" * 40), timeout=30)
    assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["/eventId"], r.text
    assert not any(stored(signed, k) for k in ("CLAIM-1", "CLAIM-2", "CLAIM-3"))


def test_an_unsigned_generic_post_cannot_make_a_signed_celonis_event_a_duplicate(signed):
    # The same CloudEvent (id + source, case, pattern) posted first to the unsigned route: on the Celonis route
    # its id is namespaced, so the genuine event still lands.
    data = {"caseKey": "PREEMPT-1", "processArea": "accounts-payable", "deviationPattern": "invoice-missing-po",
            "attributes": {"invoiceId": "PREEMPT-1", "vendorId": "V-9"}}
    event = {"specversion": "1.0", "id": "oe-1", "source": "/celonis/oe/src_w34a", "type": "ap.invoice.blocked",
             "time": now(), "data": data}
    body = json.dumps(event).encode()
    kind = {"content-type": "application/cloudevents+json"}
    assert requests.post(f"{signed}/findings", data=body, headers=kind, timeout=30).status_code == 202
    r = requests.post(f"{signed}/findings/celonis", data=body, headers={**kind, "x-emporix-hmac": hmac_of(body)},
                      timeout=30)
    assert r.status_code == 202 and r.json()["opportunities"][0]["outcome"] != "duplicate", r.text


# A Key Vault reference App Service could not resolve is the reference's text: it must open nothing. The whole app
# refuses while one is unresolved (tests/http/test_unresolved_secrets_http.py); the ingest guard refuses it on its own
# too, whatever built the settings.

def test_a_secret_that_is_an_unresolved_key_vault_reference_fails_closed_with_a_503(azurite, caplog):
    from shared.api.http import require_resolved
    from shared.domain.errors import Unavailable

    reference = "@Microsoft.KeyVault(SecretUri=https://kv-closedloop.vault.azure.net/secrets/celonis-signing/)"
    payload = json.dumps(envelope("sub-kv", 1)).encode()
    with hosted(azurite, CELONIS_SIGNING_SECRET=reference, INGEST_API_KEY=reference) as server:
        for route, headers in (("/findings/celonis", {"x-api-key": reference, "x-closedloop-secret": reference}),
                               ("/findings", {"x-api-key": reference})):
            for _ in range(2):
                r = requests.post(server.base_url + route, data=payload, timeout=30,
                                  headers={"content-type": "application/json", **headers})
                assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, r.text
                assert r.json()["unresolved"] == ["CELONIS_SIGNING_SECRET", "INGEST_API_KEY"]
                assert "Key Vault" in r.json()["detail"]
    for setting in ("CELONIS_SIGNING_SECRET", "INGEST_API_KEY"):
        for _ in range(2):
            with pytest.raises(Unavailable) as refused:
                require_resolved(setting, " " + reference.lower())
            assert refused.value.extra["setting"] == setting and refused.value.retry_after > 0
    said = [r for r in caplog.records if "is an unresolved Key Vault reference" in r.getMessage()]
    assert sorted(r.getMessage().split()[0] for r in said) == ["CELONIS_SIGNING_SECRET", "INGEST_API_KEY"]
