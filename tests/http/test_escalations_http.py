"""Escalations answered over HTTP on the local host: the card lands in the outbox, a person answers it."""
import json

import pytest
import requests

from shared.domain.messages import nudge
from shared.ports import Message
from shared.settings import Settings
from tests.conftest import hosted, settle
from tests.http.test_approval_routes import principal

OWNER = principal("olga@contoso.com", "Backlog.Owner")
FAILED = {"status": 200, "body": {"status": "failed", "message": "the CRM refused the change",
                                  "evidence": {"recordIds": [], "before": {}, "after": {}}}}


@pytest.fixture(scope="module")
def local(azurite, tmp_path_factory):
    outbox = tmp_path_factory.mktemp("outbox")
    with hosted(azurite, OUTBOX_DIR=str(outbox), CLOSEDLOOP_ENV="local") as server:
        yield server, outbox


def flow_calls(server, action):
    return sum(1 for a, _, _ in server.sandbox.requests if a == action)


def failed_case(local, case):
    """A lead whose reassignment flow answers "failed" once: the case fails and its escalation card goes out."""
    server, outbox = local
    server.sandbox.script("leads.reassign", [FAILED])
    r = requests.post(server.base_url + "/findings", json={
        "processArea": "lead-management", "deviationPattern": "lead-unassigned", "source": "crm",
        "eventId": f"e-{case}", "caseKey": case, "detectedAt": "2026-11-19T08:30:00Z",
        "attributes": {"leadId": case, "region": "AMER"}})
    assert r.status_code == 202, r.text
    oid = r.json()["opportunities"][0]["id"]
    settle(server)
    assert requests.get(f"{server.base_url}/opportunities/{oid}").json()["status"] == "failed"
    [path] = [p for p in outbox.iterdir() if oid in p.name and "-escalate-" in p.name]
    return oid, json.loads(path.read_text())["details"]


def post(server, notice, decision, **body):
    return requests.post(f"{server.base_url}/approvals/{notice['approvalId']}", headers=OWNER,
                         json={"decision": decision, "token": notice["token"], **body})


def test_failed_case_retried_by_a_person_runs_once_more_and_no_more(local):
    server, _ = local
    oid, notice = failed_case(local, "LD-H1")
    assert notice["recommended"] == "retry" and "retry" in notice["options"]
    effects, calls = server.sandbox.effects.get("leads.reassign", 0), flow_calls(server, "leads.reassign")
    r = post(server, notice, "retry")
    assert r.status_code == 200, r.text
    assert r.json()["decision"] == "retried" and r.json()["decidedBy"] == "olga@contoso.com"
    settle(server)
    view = requests.get(f"{server.base_url}/opportunities/{oid}").json()
    assert view["status"] == "verified" and view["plan"]["attempt"] == 1
    assert server.sandbox.effects["leads.reassign"] == effects + 1
    assert flow_calls(server, "leads.reassign") == calls + 1
    assert post(server, notice, "retry").status_code == 409  # the same card twice
    # A redelivered execute nudge (a new message id, as after a lost lock) finds nothing to execute.
    queue = Settings.from_env(server.settings).queues["execute"]
    again = nudge("execute", oid, view["revision"] - 2, "redelivered")
    server.bus.send([Message(queue, again.body, "redelivered-" + again.message_id)])
    settle(server)
    assert flow_calls(server, "leads.reassign") == calls + 1
    assert server.sandbox.effects["leads.reassign"] == effects + 1
    [asked] = [a for a in view["audit"] if a["event"] == "executing" and a["actor"] == "olga@contoso.com"]
    assert asked["reason"].startswith("retry requested by")


def test_an_accepted_case_is_closed_and_leaves_the_open_lists(local):
    server, _ = local
    oid, notice = failed_case(local, "LD-H2")
    failed = requests.get(f"{server.base_url}/opportunities", params={"status": "failed", "top": 200}).json()
    assert oid in [o["id"] for o in failed["items"]]
    r = post(server, notice, "accept", reason="the lead was reassigned by hand")
    assert r.status_code == 200 and r.json()["decision"] == "accepted"
    assert requests.get(f"{server.base_url}/opportunities/{oid}").json()["status"] == "closed"
    failed = requests.get(f"{server.base_url}/opportunities", params={"status": "failed", "top": 200}).json()
    closed = requests.get(f"{server.base_url}/opportunities", params={"status": "closed", "top": 200}).json()
    assert oid not in [o["id"] for o in failed["items"]] and oid in [o["id"] for o in closed["items"]]


def test_handover_and_close_need_their_field_and_say_which(local):
    server, _ = local
    oid, notice = failed_case(local, "LD-H3")
    missing = post(server, notice, "handover")
    assert missing.status_code == 422 and [e["pointer"] for e in missing.json()["errors"]] == ["/owner"]
    assert post(server, notice, "close").json()["errors"][0]["pointer"] == "/reason"
    r = post(server, notice, "handover", owner="bob@contoso.com")
    assert r.status_code == 200 and r.json()["decision"] == "handed over"
    view = requests.get(f"{server.base_url}/opportunities/{oid}").json()
    assert view["owner"] == "bob@contoso.com" and view["status"] == "failed"


def test_a_handed_over_case_sends_the_new_owner_a_card_they_can_answer(local):
    server, outbox = local
    oid, notice = failed_case(local, "LD-H4")
    assert post(server, notice, "handover", owner="bob").status_code == 200
    cards = [json.loads(p.read_text()) for p in outbox.iterdir() if oid in p.name and "-escalate-" in p.name]
    [fresh] = [c for c in cards if c["details"]["approvalId"] != notice["approvalId"]]
    assert fresh["subject"].startswith("LD-H4: handed to bob by ") and fresh["details"]["handedTo"] == "bob"
    assert fresh["details"]["options"] == notice["options"]
    r = post(server, fresh["details"], "accept", reason="bob fixed it by hand")
    assert r.status_code == 200 and r.json()["decision"] == "accepted"
    assert requests.get(f"{server.base_url}/opportunities/{oid}").json()["status"] == "closed"
