"""Amount thresholds on the local host: a card lands in the outbox, people answer over HTTP."""
import json

import pytest
import requests

from tests.conftest import hosted
from tests.factories import principal_header, treated_case

PRICE = {"processArea": "accounts-payable", "deviationPattern": "price-variance", "source": "erp",
         "detectedAt": "2026-11-19T08:30:00Z", "kpiImpact": {"daysSaved": 3, "costOfDelayPerDay": 40.0}}
LEAD = {"processArea": "lead-management", "deviationPattern": "lead-stale", "source": "crm",
        "detectedAt": "2026-11-19T08:30:00Z", "kpiImpact": {"daysSaved": 2, "costOfDelayPerDay": 40.0}}
ANA = principal_header("ana@contoso.com", "AP.Approver")
CARL = principal_header("carl@contoso.com", "AP.Approver")


@pytest.fixture(scope="module")
def local(azurite, tmp_path_factory):
    outbox = tmp_path_factory.mktemp("outbox")
    with hosted(azurite, OUTBOX_DIR=str(outbox), CLOSEDLOOP_ENV="local") as server:
        yield server, outbox


def cards_for(outbox, oid):
    """The approval notices sent for an opportunity, oldest first."""
    found = [json.loads(p.read_text())["details"] for p in sorted(outbox.iterdir(), key=lambda p: p.stat().st_mtime_ns)
             if oid in p.name and "-approve-" in p.name]
    return found


def ingest(server, base, case, attributes):
    r = requests.post(server.base_url + "/findings", json={**base, "eventId": f"e-{case}", "caseKey": case,
                                                          "attributes": attributes})
    assert r.status_code == 202, r.text
    assert server.bus.wait_idle(30)
    return r.json()["opportunities"][0]["id"]


def answer(server, notice, who, decision="approve"):
    return requests.post(f"{server.base_url}/approvals/{notice['approvalId']}", headers=who,
                         json={"decision": decision, "token": notice["token"]})


def test_amount_above_second_approver_threshold_needs_two_different_people(local):
    server, outbox = local
    case = treated_case("INV-2P", action="ap.post-gl-adjustment")
    oid = ingest(server, PRICE, case, {"invoiceId": case, "vendorId": "V-1", "amount": 900.0, "glAccount": "6100"})
    [first] = cards_for(outbox, oid)
    assert (first["approvers"], first["stage"]) == (2, 1)
    before = server.sandbox.effects.get("ap.post-gl-adjustment", 0)

    r = answer(server, first, ANA)
    assert r.status_code == 200 and r.json()["decision"] == "approved", r.text
    assert server.bus.wait_idle(30)
    view = requests.get(f"{server.base_url}/opportunities/{oid}").json()
    assert view["status"] == "awaiting_approval" and server.sandbox.effects.get("ap.post-gl-adjustment", 0) == before
    [_, second] = cards_for(outbox, oid)
    assert second["stage"] == 2 and second["approvalId"] != first["approvalId"]
    facts = {f["title"]: f["value"] for b in second["cards"]["links"]["body"] if b["type"] == "FactSet"
             for f in b["facts"]}
    assert facts["Approval"].startswith("second of 2: approved first by ana")  # e-mail escaped as card data
    asked = next(a for a in view["approvals"] if a["id"] == second["approvalId"])
    assert asked["context"] == {"approvers": 2, "stage": 2, "approvedBy": ["ana@contoso.com"],
                                "approverNames": ["ana@contoso.com"]}

    again = answer(server, second, ANA)
    assert again.status_code == 403 and "cannot approve twice" in again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    assert server.bus.wait_idle(30)
    view = requests.get(f"{server.base_url}/opportunities/{oid}").json()
    assert view["status"] == "awaiting_approval" and server.sandbox.effects.get("ap.post-gl-adjustment", 0) == before
    assert next(a for a in view["approvals"] if a["id"] == second["approvalId"])["decision"] is None

    done = answer(server, second, CARL)
    assert done.status_code == 200 and done.json()["decidedBy"] == "carl@contoso.com", done.text
    assert server.bus.wait_idle(30)
    view = requests.get(f"{server.base_url}/opportunities/{oid}").json()
    assert view["status"] == "verified"
    assert server.sandbox.effects["ap.post-gl-adjustment"] == before + 1
    assert sorted(a["decidedBy"] for a in view["approvals"]) == ["ana@contoso.com", "carl@contoso.com"]
    assert answer(server, second, CARL).status_code == 409  # used: the flow ran once and only once
    assert server.sandbox.effects["ap.post-gl-adjustment"] == before + 1


def test_low_risk_action_above_approval_threshold_asks_for_approval_over_http(local):
    server, outbox = local
    small, large = treated_case("LD-TS", "lead-management", "leads.reassign"), \
        treated_case("LD-TL", "lead-management", "leads.reassign")
    acted = ingest(server, LEAD, small, {"leadId": small, "region": "EMEA", "dealSize": 40000})
    asked = ingest(server, LEAD, large, {"leadId": large, "region": "EMEA", "dealSize": 250000})
    assert requests.get(f"{server.base_url}/opportunities/{acted}").json()["status"] == "verified"
    view = requests.get(f"{server.base_url}/opportunities/{asked}").json()
    assert view["status"] == "awaiting_approval" and "dealSize 250,000.00 is above 100,000.00" in json.dumps(view)
    [notice] = cards_for(outbox, asked)
    # leads.reassign names no approval role: an amount approval asks for the policy's reviewRole
    assert notice["requiredRole"] == "Backlog.Owner"
    assert answer(server, notice, principal_header("rep@contoso.com")).status_code == 403
    r = answer(server, notice, principal_header("olga@contoso.com", "Backlog.Owner"))
    assert r.status_code == 200, r.text
    assert server.bus.wait_idle(30)
    assert requests.get(f"{server.base_url}/opportunities/{asked}").json()["status"] == "verified"
