"""The sandbox's demo child flows, called over a real socket exactly as the executor calls Power Automate."""
from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from devhost.sandbox import Sandbox

CATALOG = Path(__file__).resolve().parents[2] / "catalog" / "actions"


@pytest.fixture(scope="module")
def server():
    with Sandbox(seed=42) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(server):
    server.reset()
    return server


@pytest.fixture(scope="module")
def http():
    with requests.Session() as session:
        yield session


def call(http, sandbox, action_id, params, key=None, headers=None, version=1, **body_overrides):
    """POST the child-flow contract body to an action's signed URL."""
    key = key or uuid.uuid4().hex
    body = {"idempotencyKey": key, "correlationId": "corr-1", "opportunityId": "opp-1",
            "action": {"id": action_id, "version": version}, "parameters": params, **body_overrides}
    return http.post(sandbox.flow_url(action_id), json=body,
                     headers={"Idempotency-Key": key, "x-correlation-id": "corr-1", **(headers or {})}, timeout=5)


def read(http, sandbox, **params):
    return http.post(sandbox.settings()["FLOW_READ_RECORD"], json={"parameters": params}, timeout=5)


def verify_policy(action_id):
    return json.loads((CATALOG / f"{action_id}.v1.json").read_text())["verify"]


def verify_passes(policy, evidence_after):
    """The catalog's verify policy ("invoice.status" equals/notEquals) evaluated on a flow's evidence."""
    label, field = policy["field"].split(".", 1)
    value = evidence_after[label][field]
    return value == policy["equals"] if "equals" in policy else value != policy["notEquals"]


FORWARD = {
    "ap.request-missing-fields": ({"invoiceId": "INV-40100", "vendorId": "V-200", "missingFields": ["poNumber"]},
                                  "invoice", "INV-40100", "status", "blocked", "awaiting_vendor"),
    "ap.post-gl-adjustment": ({"invoiceId": "INV-40102", "vendorId": "V-202", "amount": 42.5, "glAccount": "5400"},
                              "invoice", "INV-40102", "matchStatus", "price-variance", "matched"),
    "leads.reassign": ({"leadId": "LD-5100", "region": "EMEA"}, "lead", "LD-5100", "ownerId", None, "ana"),
    "leads.escalate": ({"leadId": "LD-5102", "ownerId": "carla"}, "lead", "LD-5102", "escalated", False, True),
    "o2c.open-case": ({"orderId": "SO-77001", "customerId": "C-1"}, "case", None, "status", None, "open"),
    "o2c.credit-expedited-shipping": ({"orderId": "SO-78000", "customerId": "C-2", "shippingCost": 35.0},
                                      "order", "SO-78000", "shippingMethod", "standard", "expedited"),
}


@pytest.mark.parametrize("action_id", sorted(FORWARD))
def test_each_flow_applies_its_side_effect_and_reports_before_and_after(http, sandbox, action_id):
    params, kind, record_id, field, before, after = FORWARD[action_id]
    r = call(http, sandbox, action_id, params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "succeeded" and body["message"]
    evidence = body["evidence"]
    assert (evidence["before"][kind] or {}).get(field) == before
    assert evidence["after"][kind][field] == after
    record_id = record_id or evidence["after"][kind]["id"]
    assert record_id in evidence["recordIds"]
    assert sandbox.record(kind, record_id)[field] == after
    assert verify_passes(verify_policy(action_id), evidence["after"]) if verify_policy(action_id) else True
    assert sandbox.effects == {action_id: 1}
    assert r.headers["x-correlation-id"] == "corr-1"


def test_reassign_deals_each_regions_owners_in_turn(http, sandbox):
    owners = [call(http, sandbox, "leads.reassign", {"leadId": f"LD-51{n:02d}", "region": region}).json()
              ["evidence"]["after"]["lead"]["ownerId"] for n, region in enumerate(["EMEA", "EMEA", "EMEA", "AMER"])]
    assert owners == ["ana", "ben", "ana", "carla"]


def test_request_for_missing_fields_records_a_vendor_request(http, sandbox):
    call(http, sandbox, "ap.request-missing-fields",
         {"invoiceId": "INV-40101", "vendorId": "V-201", "missingFields": ["poNumber", "taxId"]})
    [request] = sandbox.find("notification", kind="vendor-request", invoiceId="INV-40101")
    assert request["missingFields"] == ["poNumber", "taxId"] and request["status"] == "open"
    assert sandbox.record("vendor", "V-201") is not None


def test_the_same_idempotency_key_replays_the_stored_response_and_applies_once(http, sandbox):
    params = {"invoiceId": "INV-40103", "vendorId": "V-203", "amount": 10, "glAccount": "5400"}
    first = call(http, sandbox, "ap.post-gl-adjustment", params, key="same-key")
    second = call(http, sandbox, "ap.post-gl-adjustment", params, key="same-key")
    assert first.json() == second.json()
    assert second.headers["x-idempotent-replay"] == "true"
    assert sandbox.effects["ap.post-gl-adjustment"] == 1
    assert len(sandbox.find("glEntry", invoiceId="INV-40103")) == 1


def test_the_body_idempotency_key_counts_when_the_header_is_missing(http, sandbox):
    body = {"idempotencyKey": "body-key", "action": {"id": "leads.escalate", "version": 1},
            "parameters": {"leadId": "LD-5103", "ownerId": "dev"}}
    codes = [http.post(sandbox.flow_url("leads.escalate"), json=body).status_code for _ in range(2)]
    assert codes == [200, 200]
    assert sandbox.effects["leads.escalate"] == 1


def test_concurrent_twins_with_one_key_apply_once(sandbox):
    def twin():
        with requests.Session() as s:
            call(s, sandbox, "o2c.open-case", {"orderId": "SO-77002", "customerId": "C-3"}, key="twin")
    threads = [threading.Thread(target=twin) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sandbox.effects["o2c.open-case"] == 1
    assert len(sandbox.find("case", orderId="SO-77002")) == 1


def test_a_call_without_idempotency_key_is_rejected_with_400(http, sandbox):
    r = http.post(sandbox.flow_url("leads.reassign"), json={"parameters": {"leadId": "LD-5100", "region": "EMEA"}})
    assert r.status_code == 400
    assert r.json()["status"] == "rejected" and "Idempotency-Key" in r.json()["message"]
    assert sandbox.effects == {}


@pytest.mark.parametrize("mangle", [
    lambda url: url[:-1] + ("0" if url[-1] != "0" else "1"),
    lambda url: url.split("?")[0],
    lambda url: url.replace("leads.reassign", "leads.escalate"),
], ids=["tampered", "missing", "signed-for-another-flow"])
def test_a_wrong_or_missing_signature_is_401(http, sandbox, mangle):
    r = http.post(mangle(sandbox.flow_url("leads.reassign")), json={"parameters": {}},
                  headers={"Idempotency-Key": "k"})
    assert r.status_code == 401
    assert sandbox.effects == {}


def test_an_unknown_action_is_404(http, sandbox):
    assert call(http, sandbox, "no.such-action", {}).status_code == 404


def test_throttle_knob_answers_429_with_retry_after_and_applies_nothing(http, sandbox):
    sandbox.configure(throttle_rate=1.0, throttle_retry_after=2)
    params = {"leadId": "LD-5104", "region": "APAC"}
    r = call(http, sandbox, "leads.reassign", params, key="k-429")
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert sandbox.effects == {}
    sandbox.configure(throttle_rate=0)
    assert call(http, sandbox, "leads.reassign", params, key="k-429").status_code == 200
    assert sandbox.effects["leads.reassign"] == 1
    assert [code for _, key, code in sandbox.requests if key == "k-429"] == [429, 200]


def test_a_scripted_429_comes_first_then_normal_handling(http, sandbox):
    sandbox.script("leads.reassign", [429, 200])
    params = {"leadId": "LD-5105", "region": "AMER"}
    first = call(http, sandbox, "leads.reassign", params, key="scripted")
    assert first.status_code == 429 and first.headers["Retry-After"].isdigit()
    second = call(http, sandbox, "leads.reassign", params, key="scripted")
    assert second.status_code == 200 and second.json()["status"] == "succeeded"
    assert sandbox.effects["leads.reassign"] == 1


def test_failure_knob_answers_500_and_leaves_the_record_untouched(http, sandbox):
    sandbox.put("lead", {"id": "LD-5106", "region": "EMEA", "ownerId": None, "escalated": False})
    sandbox.configure(failure_rate=1.0)
    r = call(http, sandbox, "leads.reassign", {"leadId": "LD-5106", "region": "EMEA"}, key="k-500")
    assert r.status_code == 500
    assert sandbox.record("lead", "LD-5106")["ownerId"] is None
    assert sandbox.effects == {}
    sandbox.configure(failure_rate=0)  # a 500 is not stored: the retry with the same key acts
    assert call(http, sandbox, "leads.reassign", {"leadId": "LD-5106", "region": "EMEA"}, key="k-500").ok
    assert sandbox.record("lead", "LD-5106")["ownerId"] == "ana"


def test_rate_knobs_are_deterministic_for_a_seed(http, sandbox):
    def codes():
        sandbox.reset()
        sandbox.configure(seed=7, throttle_rate=0.5)
        return [call(http, sandbox, "leads.escalate", {"leadId": f"LD-52{n:02d}", "ownerId": "eli"}).status_code
                for n in range(20)]
    first = codes()
    assert first == codes()
    assert {200, 429} == set(first)


def test_an_async_action_answers_202_and_location_polls_to_the_final_body(http, sandbox):
    sandbox.configure(async_actions={"o2c.open-case"}, async_polls=2, async_retry_after=0)
    params = {"orderId": "SO-77003", "customerId": "C-4"}
    r = call(http, sandbox, "o2c.open-case", params, key="async")
    assert r.status_code == 202 and r.headers["Retry-After"] == "0"
    location = r.headers["Location"]
    assert sandbox.find("case", orderId="SO-77003") == []
    assert http.get(location[:-2]).status_code == 401
    assert http.get(location).status_code == 202
    final = http.get(location)
    assert final.status_code == 200 and final.json()["status"] == "succeeded"
    assert final.json()["evidence"]["after"]["case"]["status"] == "open"
    replay = call(http, sandbox, "o2c.open-case", params, key="async")
    assert replay.status_code == 200 and replay.json() == final.json()
    assert sandbox.effects["o2c.open-case"] == 1


@pytest.mark.parametrize("action_id,params", [
    ("leads.reassign", {"leadId": "LD-5100"}),
    ("leads.reassign", {"leadId": 5100, "region": "EMEA"}),
    ("ap.post-gl-adjustment", {"invoiceId": "INV-1", "vendorId": "V-1", "amount": 1000.01, "glAccount": "5400"}),
    ("ap.post-gl-adjustment", {"invoiceId": "INV-1", "vendorId": "V-1", "amount": 0, "glAccount": "5400"}),
    ("ap.post-gl-adjustment", {"invoiceId": "INV-1", "vendorId": "V-1", "amount": "12", "glAccount": "5400"}),
    ("o2c.credit-expedited-shipping", {"orderId": "SO-1", "customerId": "C-1", "shippingCost": True}),
    ("ap.request-missing-fields", {"invoiceId": "INV-1", "vendorId": "V-1", "missingFields": "poNumber"}),
], ids=["missing", "wrong-type", "above-maximum", "not-above-exclusive-minimum", "string-number", "bool-number",
        "string-for-array"])
def test_invalid_parameters_are_rejected_with_400(http, sandbox, action_id, params):
    r = call(http, sandbox, action_id, params)
    assert r.status_code == 400 and r.json()["status"] == "rejected"
    assert "parameters." in r.json()["message"]
    assert sandbox.effects == {}


def test_a_body_naming_another_action_or_version_is_rejected(http, sandbox):
    params = {"leadId": "LD-5100", "region": "EMEA"}
    other = {"id": "leads.escalate", "version": 1}
    assert call(http, sandbox, "leads.reassign", params, action=other).status_code == 400
    assert call(http, sandbox, "leads.reassign", params, version=9).status_code == 400


COMPENSATIONS = [
    ("ap.request-missing-fields", {"invoiceId": "INV-40104", "vendorId": "V-204", "missingFields": ["poNumber"]},
     "ap.cancel-field-request", {"invoiceId": "INV-40104"}, "invoice", "INV-40104", "status"),
    ("ap.post-gl-adjustment", {"invoiceId": "INV-40105", "vendorId": "V-205", "amount": 99, "glAccount": "5400"},
     "ap.reverse-gl-adjustment", {"invoiceId": "INV-40105", "amount": 99, "glAccount": "5400"},
     "invoice", "INV-40105", "matchStatus"),
    ("leads.reassign", {"leadId": "LD-5107", "region": "APAC"}, "leads.restore-owner", {"leadId": "LD-5107"},
     "lead", "LD-5107", "ownerId"),
    ("o2c.credit-expedited-shipping", {"orderId": "SO-78001", "customerId": "C-5", "shippingCost": 20},
     "o2c.reverse-credit", {"orderId": "SO-78001"}, "order", "SO-78001", "shippingMethod"),
]


@pytest.mark.parametrize("forward,params,undo,undo_params,kind,record_id,field", COMPENSATIONS,
                         ids=[c[0] for c in COMPENSATIONS])
def test_compensation_restores_the_state_before_the_action(http, sandbox, forward, params, undo, undo_params,
                                                           kind, record_id, field):
    done = call(http, sandbox, forward, params).json()
    before = done["evidence"]["before"][kind][field]
    assert done["evidence"]["after"][kind][field] != before
    undone = call(http, sandbox, undo, undo_params).json()
    assert undone["status"] == "succeeded"
    assert undone["evidence"]["after"][kind][field] == before
    assert sandbox.record(kind, record_id)[field] == before
    assert sandbox.effects == {forward: 1, undo: 1}


def test_closing_a_case_finds_it_by_order_and_reversals_leave_a_trail(http, sandbox):
    case = call(http, sandbox, "o2c.open-case", {"orderId": "SO-77004", "customerId": "C-6"}).json()
    assert call(http, sandbox, "o2c.close-case", {"orderId": "SO-77004"}).json()["status"] == "succeeded"
    assert sandbox.record("case", case["evidence"]["after"]["case"]["id"])["status"] == "closed"
    call(http, sandbox, "ap.post-gl-adjustment", {"invoiceId": "INV-40106", "vendorId": "V-206", "amount": 5,
                                                  "glAccount": "5400"})
    call(http, sandbox, "ap.reverse-gl-adjustment", {"invoiceId": "INV-40106", "amount": 5, "glAccount": "5400"})
    assert sorted(e["amount"] for e in sandbox.find("glEntry", invoiceId="INV-40106")) == [-5, 5]


BREACHES = {"leads.reassign": None, "o2c.open-case": "pending", "ap.request-missing-fields": "blocked",
            "ap.post-gl-adjustment": "price-variance", "o2c.credit-expedited-shipping": "standard"}


@pytest.mark.parametrize("action_id", sorted(BREACHES))
def test_a_breach_answers_succeeded_but_leaves_a_state_the_verify_policy_rejects(http, sandbox, action_id):
    params, kind, _, field, _, _ = FORWARD[action_id]
    sandbox.configure(breach_actions={action_id})
    body = call(http, sandbox, action_id, params).json()
    assert body["status"] == "succeeded"
    assert body["evidence"]["after"][kind][field] == BREACHES[action_id]
    assert not verify_passes(verify_policy(action_id), body["evidence"]["after"])


def test_the_read_flow_returns_a_record_without_a_key_or_a_side_effect(http, sandbox):
    call(http, sandbox, "o2c.open-case", {"orderId": "SO-77005", "customerId": "C-7"})
    lead = read(http, sandbox, type="lead", id="LD-5108").json()
    assert lead["status"] == "succeeded" and lead["evidence"]["after"]["ownerId"] is None
    case = read(http, sandbox, type="case", orderId="SO-77005").json()
    assert case["evidence"]["after"]["status"] == "open"
    missing = read(http, sandbox, type="case", orderId="SO-99999")
    assert missing.status_code == 200 and missing.json()["status"] == "failed"
    assert read(http, sandbox, type="spaceship", id="X").status_code == 400
    assert sandbox.effects == {"o2c.open-case": 1}


def test_settings_name_a_signed_url_for_every_catalog_flow_and_the_read_flow(http, sandbox):
    expected = {json.loads(p.read_text())["flow"]["setting"] for p in CATALOG.glob("*.json")} | {"FLOW_READ_RECORD"}
    settings = sandbox.settings()
    assert set(settings) == expected
    for url in settings.values():
        r = http.post(url, json={"parameters": {}}, headers={"Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code == 400, url  # signature accepted, parameters refused
    assert sandbox.effects == {}


def test_latency_knob_slows_every_flow_call(http, sandbox):
    sandbox.configure(latency_ms=150)
    started = time.perf_counter()
    call(http, sandbox, "leads.escalate", {"leadId": "LD-5109", "ownerId": "fay"})
    assert time.perf_counter() - started >= 0.15


def test_stop_ends_keep_alive_connections_too():
    with requests.Session() as s:
        box = Sandbox().start()
        url = box.flow_url("sor.read")
        assert s.post(url, json={"parameters": {"type": "lead", "id": "LD-1"}}).ok
        box.stop()
        with pytest.raises(requests.ConnectionError):
            s.post(url, json={"parameters": {"type": "lead", "id": "LD-1"}}, timeout=2)
