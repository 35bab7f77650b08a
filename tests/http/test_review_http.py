"""A review is a decision, on the local host: a reviewer answers the review card over HTTP (as the approval flow
posts it, or through the confirmation page) or MCP, and the case runs, waits for its approver, or ends."""
import json
import re
from urllib.parse import urljoin

import pytest
import requests

from tests.conftest import hosted
from tests.factories import treated_case
from tests.http.test_approval_routes import ANA, PRICE, principal

RITA = principal("rita@contoso.com", "Backlog.Owner")  # reviews cases, approves nothing
OLGA = principal("olga@contoso.com", "Backlog.Owner", "AP.Approver")  # reviews and approves AP adjustments
ACTION = "ap.post-gl-adjustment"


@pytest.fixture(scope="module")
def local(azurite, tmp_path_factory):
    outbox = tmp_path_factory.mktemp("outbox")
    with hosted(azurite, OUTBOX_DIR=str(outbox), CLOSEDLOOP_ENV="local") as server:
        yield server, outbox


def review_for(local, prefix, invoice=None):
    """A price variance whose GL account breaks the action's contract: the planner asks a reviewer."""
    server, outbox = local
    case = treated_case(prefix, action=ACTION)
    finding = {**PRICE, "eventId": f"e-{case}", "caseKey": case,
               "attributes": {"invoiceId": invoice or case, "vendorId": "V-1", "amount": 120.0, "glAccount": "GL-X"}}
    r = requests.post(server.base_url + "/findings", json=finding)
    assert r.status_code == 202, r.text
    oid = r.json()["opportunities"][0]["id"]
    assert server.bus.wait_idle(30)
    assert view(server, oid)["status"] == "needs_review"
    [path] = [p for p in outbox.iterdir() if oid in p.name and "-review-" in p.name]
    return oid, json.loads(path.read_text())["details"]


def view(server, oid):
    return requests.get(f"{server.base_url}/opportunities/{oid}").json()


def submitted(notice, decision, **changes):
    """What the approval flow posts back from the submit card: every input, flat, as the card holds it."""
    card = notice["cards"]["submit"]
    inputs = {b["id"]: b.get("value", "") for b in card["body"] if b["type"].startswith("Input.")}
    return {**inputs, "token": notice["token"], "approvalId": notice["approvalId"], "decision": decision, **changes}


def answer(server, notice, who, body):
    return requests.post(f"{server.base_url}/approvals/{notice['approvalId']}", headers=who, json=body)


def test_needs_review_case_becomes_verified_after_reviewer_picks_an_action_and_edits_a_parameter(local):
    server, _ = local
    oid, notice = review_for(local, "INV-RV1")
    assert notice["requiredRole"] == "Backlog.Owner" and notice["candidates"] == [ACTION]
    before = server.sandbox.effects.get(ACTION, 0)
    r = answer(server, notice, OLGA, submitted(notice, "run", **{"actionId": ACTION, f"parameters.{ACTION}.glAccount": "6100",
                                                                 "helpful": "yes"}))
    assert r.status_code == 200, r.text
    assert r.json()["decision"] == "run" and r.json()["decidedBy"] == "olga@contoso.com"
    assert server.bus.wait_idle(30)
    opp = view(server, oid)
    assert opp["status"] == "verified" and server.sandbox.effects[ACTION] == before + 1
    assert opp["plan"]["parameters"]["glAccount"] == "6100" and opp["plan"]["method"] == "person"
    chosen = next(a for a in opp["audit"] if a["event"] == "approved")
    assert chosen["actor"] == "olga@contoso.com" and chosen["inputs"]["edited"] == ["glAccount"]
    again = answer(server, notice, OLGA, submitted(notice, "run", actionId=ACTION))
    assert again.status_code == 409


def test_reviewer_without_role_for_medium_risk_action_sends_a_second_card_to_the_approver(local):
    server, outbox = local
    oid, notice = review_for(local, "INV-RV2")
    before = server.sandbox.effects.get(ACTION, 0)
    r = answer(server, notice, RITA, {"token": notice["token"], "decision": "run", "actionId": ACTION,
                                      "parameters": {"glAccount": "6200"}})
    assert r.status_code == 200, r.text
    assert server.bus.wait_idle(30)
    assert view(server, oid)["status"] == "awaiting_approval" and server.sandbox.effects.get(ACTION, 0) == before
    [path] = [p for p in outbox.iterdir() if oid in p.name and "-approve-" in p.name]
    ask = json.loads(path.read_text())["details"]
    assert ask["requiredRole"] == "AP.Approver" and ask["plan"]["parameters"]["glAccount"] == "6200"
    assert answer(server, ask, RITA, {"token": ask["token"], "decision": "approve"}).status_code == 403
    assert answer(server, ask, ANA, {"token": ask["token"], "decision": "approve"}).status_code == 200
    assert server.bus.wait_idle(30)
    assert view(server, oid)["status"] == "verified" and server.sandbox.effects[ACTION] == before + 1
    assert answer(server, ask, ANA, {"token": ask["token"], "decision": "approve"}).status_code == 409
    assert server.bus.wait_idle(30)
    assert server.sandbox.effects[ACTION] == before + 1


def test_a_reviewers_bad_parameter_is_named_and_nothing_changes(local):
    server, _ = local
    oid, notice = review_for(local, "INV-RV3")
    revision = view(server, oid)["revision"]
    for params, pointer in (({"glAccount": "61"}, "/parameters/glAccount"), ({"iban": "x"}, "/parameters/iban")):
        r = answer(server, notice, OLGA, {"token": notice["token"], "decision": "run", "actionId": ACTION,
                                          "parameters": params})
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
        assert [e["pointer"] for e in r.json()["errors"]] == [pointer]
    r = answer(server, notice, OLGA, {"token": notice["token"], "decision": "run", "actionId": "leads.reassign"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/actionId"
    opp = view(server, oid)
    assert opp["status"] == "needs_review" and opp["revision"] == revision
    record = requests.get(f"{server.base_url}/approvals/{notice['approvalId']}", params={"token": notice["token"]})
    assert record.json()["decision"] is None


def test_handover_sets_the_owner_and_dismiss_through_the_confirmation_page_ends_the_case(local):
    server, outbox = local
    oid, notice = review_for(local, "INV-RV4")
    missing = answer(server, notice, RITA, {"token": notice["token"], "decision": "handover"})
    assert missing.status_code == 422 and missing.json()["errors"][0]["pointer"] == "/owner"
    r = answer(server, notice, RITA, {"token": notice["token"], "decision": "handover", "owner": "bob@contoso.com"})
    assert r.status_code == 200 and r.json()["decision"] == "handed over"
    opp = view(server, oid)
    assert opp["owner"] == "bob@contoso.com" and opp["status"] == "needs_review"
    assert server.bus.wait_idle(30)
    [fresh] = [json.loads(p.read_text()) for p in outbox.iterdir()
               if oid in p.name and "-review-" in p.name and notice["approvalId"] not in p.read_text()]
    assert ": handed to " in fresh["subject"]  # the names scrubbed on the way out, as every subject is
    assert fresh["details"]["links"]["dismiss"] and "Handed to" in json.dumps(fresh["details"]["cards"]["links"])

    oid, notice = review_for(local, "INV-RV5")
    link = notice["links"]["dismiss"]
    page = requests.get(link)
    assert page.status_code == 200 and re.search(r'<input name="reason"[^>]* required', page.text)
    action = urljoin(link, re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    same_site = {**RITA, "Sec-Fetch-Site": "same-origin"}  # as a browser posts the page's own form
    r = requests.post(action, headers=same_site, data={"token": notice["token"], "decision": "dismiss",
                                                       "reason": "duplicate of INV-9, ask ana@contoso.com",
                                                       "helpful": "no"})
    assert r.status_code == 200 and "dismissed" in r.text, r.text
    opp = view(server, oid)
    assert opp["status"] == "dismissed" and "ana@contoso.com" not in json.dumps(opp["history"])


def test_the_confirmation_page_renders_each_decisions_fields_escaped(local):
    _, notice = review_for(local, "INV-RV6", invoice='"><script>x</script>')
    pages = {d: requests.get(notice["links"][d]) for d in ("run", "provide", "handover", "dismiss")}
    assert all(p.status_code == 200 and 'name="helpful" value="yes"' in p.text for p in pages.values())
    assert all(p.headers["Content-Security-Policy"].startswith("default-src 'none'") for p in pages.values())
    run = pages["run"].text
    assert f'<option value="{ACTION}">' in run
    assert f'name="parameters.{ACTION}.glAccount" maxlength="1000" value="GL-X"' in run
    assert f'name="parameters.{ACTION}.invoiceId"' not in run  # identifies the record: shown, not editable
    assert "<script>" not in run and "&lt;script&gt;" in run
    assert 'name="data.glAccount"' in pages["provide"].text and 'name="owner"' in pages["handover"].text
    assert 'name="reason"' in pages["dismiss"].text
    wrong = requests.get(notice["links"]["run"].replace("decision=run", "decision=approve"))
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["parameter"] == "decision"
    assert "run or provide or handover or dismiss" in wrong.json()["errors"][0]["detail"]


def test_a_reviewer_runs_an_action_through_the_mcp_tool(local):
    server, _ = local
    oid, notice = review_for(local, "INV-RV7")
    url = server.base_url.rsplit("/api", 1)[0] + "/runtime/webhooks/mcp"
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "decide_approval", "arguments": {
                "approvalId": notice["approvalId"], "token": notice["token"], "decision": "run", "actionId": ACTION,
                "parameters": {"glAccount": "7100"}}}}
    bad = {**call, "params": {**call["params"], "arguments": {**call["params"]["arguments"], "parameters": "[1]"}}}
    refused = json.loads(requests.post(url, json=bad, headers=OLGA).json()["result"]["content"][0]["text"])
    assert refused["error"]["status"] == 422 and refused["error"]["errors"][0]["pointer"] == "/arguments/parameters"
    result = requests.post(url, json=call, headers=OLGA).json()["result"]
    assert not result["isError"] and json.loads(result["content"][0]["text"])["decision"] == "run"
    assert server.bus.wait_idle(30)
    opp = view(server, oid)
    assert opp["status"] == "verified" and opp["plan"]["parameters"]["glAccount"] == "7100"
