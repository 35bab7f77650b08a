"""Approvals end to end on the local host: a card lands in the outbox, a person answers over HTTP."""
import base64
import json

import pytest
import requests

from tests.conftest import hosted
from tests.factories import treated_case

PRICE = {"processArea": "accounts-payable", "deviationPattern": "price-variance", "source": "erp",
         "detectedAt": "2026-11-19T08:30:00Z", "kpiImpact": {"daysSaved": 3, "costOfDelayPerDay": 40.0}}


def principal(name, *roles):
    claims = [{"typ": "preferred_username", "val": name}] + [{"typ": "roles", "val": r} for r in roles]
    doc = {"auth_typ": "aad", "name_typ": "preferred_username", "role_typ": "roles", "claims": claims}
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(doc).encode()).decode()}


ANA = principal("ana@contoso.com", "AP.Approver")


@pytest.fixture(scope="module")
def local(azurite, tmp_path_factory):
    outbox = tmp_path_factory.mktemp("outbox")
    with hosted(azurite, OUTBOX_DIR=str(outbox), CLOSEDLOOP_ENV="local") as server:
        yield server, outbox


def card_for(local, prefix):
    """Ingest a medium-risk finding, let the agents work, return the approval notice from the outbox."""
    server, outbox = local
    case = treated_case(prefix, action="ap.post-gl-adjustment")
    finding = {**PRICE, "eventId": f"e-{case}", "caseKey": case,
               "attributes": {"invoiceId": case, "vendorId": "V-1", "amount": 120.0, "glAccount": "6100"}}
    r = requests.post(server.base_url + "/findings", json=finding)
    assert r.status_code == 202, r.text
    oid = r.json()["opportunities"][0]["id"]
    assert server.bus.wait_idle(30)
    [path] = [p for p in outbox.iterdir() if oid in p.name and "-approve-" in p.name]
    return oid, json.loads(path.read_text())["details"]


def test_medium_risk_card_approved_over_http_runs_the_flow_once_and_verifies(local):
    server, _ = local
    oid, notice = card_for(local, "INV-H1")
    card = notice["cards"]["submit"]
    assert card["version"] == "1.5" and card["type"] == "AdaptiveCard"
    before = server.sandbox.effects.get("ap.post-gl-adjustment", 0)
    r = requests.post(f"{server.base_url}/approvals/{notice['approvalId']}", headers=ANA,
                      json={"decision": "approve", "token": notice["token"], "comment": "ok", "helpful": "yes"})
    assert r.status_code == 200, r.text
    assert r.json()["decision"] == "approved" and r.json()["decidedBy"] == "ana@contoso.com"
    assert server.bus.wait_idle(30)
    view = requests.get(f"{server.base_url}/opportunities/{oid}").json()
    assert view["status"] == "verified"
    assert server.sandbox.effects["ap.post-gl-adjustment"] == before + 1
    feedback = next(a for a in view["audit"] if a["event"] == "approved")
    assert feedback["inputs"]["helpful"] is True and feedback["versions"]["action"] == "ap.post-gl-adjustment@1"
    [asked] = view["approvals"]
    assert asked["decision"] == "approved" and asked["requiredRole"] == "AP.Approver" and "tokenHash" not in asked
    again = requests.post(f"{server.base_url}/approvals/{notice['approvalId']}", headers=ANA,
                          json={"decision": "approve", "token": notice["token"]})
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")


def test_rejected_over_http_never_calls_the_flow(local):
    server, _ = local
    oid, notice = card_for(local, "INV-H2")
    before = server.sandbox.effects.get("ap.post-gl-adjustment", 0)
    r = requests.post(f"{server.base_url}/approvals/{notice['approvalId']}", headers=ANA,
                      json={"decision": "reject", "token": notice["token"]})
    assert r.status_code == 200 and r.json()["decision"] == "rejected"
    assert server.bus.wait_idle(30)
    assert requests.get(f"{server.base_url}/opportunities/{oid}").json()["status"] == "rejected"
    assert server.sandbox.effects.get("ap.post-gl-adjustment", 0) == before


def test_refusals_have_their_status_codes_and_change_nothing(local):
    server, _ = local
    oid, notice = card_for(local, "INV-H3")
    url = f"{server.base_url}/approvals/{notice['approvalId']}"
    body = {"decision": "approve", "token": notice["token"]}
    assert requests.post(url, json={**body, "token": notice["token"][:-4] + "AAAA"}, headers=ANA).status_code == 401
    assert requests.post(url, json=body).status_code == 401  # no principal
    wrong = requests.post(url, json=body, headers=principal("bob@contoso.com", "Sales.Manager"))
    assert wrong.status_code == 403 and "AP.Approver" in wrong.json()["detail"]
    bad = requests.post(url, json={"decision": "maybe"}, headers=ANA)
    assert bad.status_code == 422 and {e["pointer"] for e in bad.json()["errors"]} == {"/token", "/decision"}
    assert requests.post(f"{server.base_url}/approvals/{'0' * 32}-a1", json=body, headers=ANA).status_code == 404
    assert requests.get(f"{server.base_url}/opportunities/{oid}").json()["status"] == "awaiting_approval"


def test_a_card_link_opens_a_confirmation_page_and_only_the_form_post_decides(local):
    import re
    from urllib.parse import urljoin

    server, _ = local
    oid, notice = card_for(local, "INV-H4")
    link = notice["links"]["reject"]
    page = requests.get(link)  # anonymous, as a link scanner or a browser opens it
    assert page.status_code == 200 and "<form" in page.text and "text/html" in page.headers["content-type"]
    assert page.headers["Referrer-Policy"] == "same-origin" and page.headers["Cache-Control"] == "no-store"
    assert requests.get(f"{server.base_url}/opportunities/{oid}").json()["status"] == "awaiting_approval"
    action = urljoin(link, re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    assert action == f"{server.base_url}/approvals/{notice['approvalId']}"
    # What a browser sends from the page: its origin (the page's referrer policy is same-origin; a browser that
    # still says Origin: null must send Sec-Fetch-Site: same-origin, see the test below).
    r = requests.post(action, headers={**ANA, "Origin": server.base_url.removesuffix("/api")},
                      data={"token": notice["token"], "decision": "reject"})
    assert r.status_code == 200 and "rejected" in r.text
    assert requests.get(f"{server.base_url}/opportunities/{oid}").json()["status"] == "rejected"
    used = requests.get(link)
    assert used.status_code == 409 and used.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("sent", [{"Origin": "https://evil.example"}, {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
                                  {}, {"Origin": "http://127.0.0.1.evil.example", "Sec-Fetch-Site": "same-origin"}],
                         ids=["another origin", "null origin from another site", "neither header",
                              "a lookalike origin"])
def test_a_form_post_from_another_site_is_refused_and_records_nothing(local, sent):
    # Everyone in the channel sees a link card's token: a page elsewhere must not make a signed-in approver's
    # browser post the answer (with their Easy Auth cookie).
    server, _ = local
    oid, notice = card_for(local, "INV-XS")
    form = {"token": notice["token"], "decision": "approve"}
    r = requests.post(f"{server.base_url}/approvals/{notice['approvalId']}", headers={**ANA, **sent}, data=form)
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["header"] == "Origin"
    feedback = requests.post(f"{server.base_url}/approvals/{notice['approvalId']}/feedback", headers=sent,
                             data={"token": notice["token"], "helpful": "yes"})
    assert feedback.status_code == 403
    view = requests.get(f"{server.base_url}/opportunities/{oid}").json()
    assert view["status"] == "awaiting_approval" and view["approvals"][0]["helpful"] is None


def test_no_answer_route_lets_another_site_send_json(local):
    # Why JSON needs no Origin check: a page elsewhere can send it only after a CORS preflight, never granted.
    server, _ = local
    url = f"{server.base_url}/approvals/{'0' * 32}-a1"
    preflight = requests.options(url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method":
                                               "POST", "Access-Control-Request-Headers": "content-type"})
    posted = requests.post(url, json={}, headers={"Origin": "https://evil.example"})
    assert not any(h.lower().startswith("access-control-") for h in [*preflight.headers, *posted.headers])


def test_a_form_post_with_origin_null_from_the_apps_own_page_is_taken(local):
    # A browser that hides the origin (a privacy setting) posts the page's form with Origin: null and
    # Sec-Fetch-Site: same-origin. JSON (the approval flow, API clients) needs neither header.
    server, _ = local
    oid, notice = card_for(local, "INV-SO")
    r = requests.post(f"{server.base_url}/approvals/{notice['approvalId']}",
                      headers={**ANA, "Origin": "null", "Sec-Fetch-Site": "same-origin"},
                      data={"token": notice["token"], "decision": "reject"})
    assert r.status_code == 200 and "rejected" in r.text


def test_the_confirmation_page_shows_nothing_without_a_valid_token(local):
    server, _ = local
    _, notice = card_for(local, "INV-H6")
    page = f"{server.base_url}/approvals/{notice['approvalId']}/confirm"
    forged = requests.get(page, params={"decision": "approve", "token": notice["token"][:-4] + "AAAA"})
    assert forged.status_code == 401 and "ap.post-gl-adjustment" not in forged.text
    assert requests.get(page, params={"decision": "approve"}).status_code == 422
    wrong_suffix = f"{server.base_url}/approvals/{notice['approvalId'][:-1]}x/confirm"
    assert requests.get(wrong_suffix, params={"decision": "approve", "token": notice["token"]}).status_code == 404


def test_the_json_view_needs_the_token_or_the_approval_role(local):
    server, _ = local
    oid, notice = card_for(local, "INV-H7")
    url = f"{server.base_url}/approvals/{notice['approvalId']}"
    anonymous = requests.get(url)
    assert anonymous.status_code == 401 and anonymous.headers["content-type"].startswith("application/problem+json")
    assert requests.get(url, params={"token": notice["token"][:-4] + "AAAA"}).status_code == 401
    assert requests.get(url, headers=principal("bob@contoso.com", "Sales.Manager")).status_code == 403
    by_token = requests.get(url, params={"token": notice["token"]})
    assert by_token.status_code == 200 and by_token.json()["opportunityId"] == oid
    assert requests.get(url, headers=ANA).json()["id"] == notice["approvalId"]
    other = card_for(local, "INV-H8")[1]
    assert requests.get(url, params={"token": other["token"]}).status_code == 401  # another approval's token
    flipped = notice["approvalId"][:-1] + ("0" if notice["approvalId"][-1] != "0" else "1")
    assert requests.get(f"{server.base_url}/approvals/{flipped}", headers=ANA).status_code == 404


def test_approval_id_cannot_be_computed_from_the_case_key(local):
    """The opportunity id is a hash of processArea, pattern and case key: anyone can compute it."""
    from shared.domain.opportunity import opportunity_id

    server, _ = local
    oid, notice = card_for(local, "INV-H9")
    case = requests.get(f"{server.base_url}/opportunities/{oid}").json()["caseKey"]
    assert opportunity_id(PRICE["processArea"], PRICE["deviationPattern"], case) == oid
    computed = [f"{oid}-a{revision}" for revision in range(8)]  # the old id format
    assert notice["approvalId"] not in computed and notice["approvalId"].rpartition("-")[0] in computed
    for guess in computed:
        anonymous = requests.get(f"{server.base_url}/approvals/{guess}")
        assert anonymous.status_code == 401 and "decidedBy" not in anonymous.text
        assert requests.get(f"{server.base_url}/approvals/{guess}", headers=ANA).status_code == 404


def test_a_decision_comment_is_stored_and_shown_scrubbed(local):
    server, _ = local
    oid, notice = card_for(local, "INV-H10")
    comment = "ok, told ana.lopez@contoso.com and +49 170 1234567"
    r = requests.post(f"{server.base_url}/approvals/{notice['approvalId']}", headers=ANA,
                      json={"decision": "reject", "token": notice["token"], "comment": comment})
    assert r.status_code == 200 and "ana.lopez@contoso.com" not in r.text
    shown = requests.get(f"{server.base_url}/approvals/{notice['approvalId']}", headers=ANA).json()["comment"]
    assert shown.startswith("ok, told ") and "ana.lopez" not in shown and "1234567" not in shown
    view = requests.get(f"{server.base_url}/opportunities/{oid}").text
    assert "ana.lopez@contoso.com" not in view and "170 1234567" not in view


_AUTH_LEVELS = """
import json, function_app
found = {}
for f in function_app.app.get_functions():
    b = f.get_bindings_dict()["bindings"][0]
    if b["type"] == "httpTrigger" and b["route"].startswith("approvals/"):
        for m in b["methods"]:
            found[f"{str(getattr(m, 'value', m)).upper()} {b['route']}"] = str(b.get("authLevel")).lower()
print(json.dumps(found))
"""


def test_the_json_view_needs_the_function_key_and_only_answers_and_card_links_are_anonymous():
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "-c", _AUTH_LEVELS], cwd=ROOT, capture_output=True, text=True, check=True)
    levels = {k: v.rpartition(".")[2] for k, v in json.loads(out.stdout).items()}
    # The feedback routes ("was this helpful?" as signed links) are card links too (feedback_routes.py).
    assert levels == {"GET approvals/{id}": "function", "POST approvals/{id}": "anonymous",
                      "GET approvals/{id}/confirm": "anonymous", "GET approvals/{id}/feedback": "anonymous",
                      "POST approvals/{id}/feedback": "anonymous"}


def test_a_flow_answer_naming_its_responder_by_e_mail_is_refused_by_name(local):
    """Two-approver checks compare ids: a flow that reports an e-mail would give one person a second identity."""
    from shared.domain.identity import flow_signature

    server, _ = local
    oid, notice = card_for(local, "INV-FID")
    body = json.dumps({"decision": "approve", "token": notice["token"],
                       "approver": {"id": "ana@contoso.com", "roles": ["AP.Approver"]}}).encode()
    # The shape is checked before the signature: whatever signs it, the answer never names a person so.
    r = requests.post(f"{server.base_url}/approvals/{notice['approvalId']}", data=body,
                      headers={"content-type": "application/json", "x-closedloop-signature": flow_signature("k", body)})
    assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["/approver/id"]
    assert requests.get(f"{server.base_url}/opportunities/{oid}").json()["status"] == "awaiting_approval"


@pytest.fixture(scope="module")
def answered(azurite):
    """A host whose cards go to the sandbox's approval flow, answering as an AP approver."""
    approver = {"id": "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f", "name": "ap.lead@contoso.com", "roles": ["AP.Approver"]}
    with hosted(azurite, {"sandbox_knobs": {"approver": approver}, "approvals_via_sandbox": True},
                OUTBOX_DIR="") as server:
        yield server


def test_the_approval_flow_answers_with_a_signed_payload_and_the_loop_closes(answered):
    import time
    small, large = treated_case("INV-F-SMALL", action="ap.post-gl-adjustment"), \
        treated_case("INV-F-LARGE", action="ap.post-gl-adjustment")
    ids = {}
    for case, amount in ((small, 120.0), (large, 900.0)):
        finding = {**PRICE, "eventId": f"e-{case}", "caseKey": case,
                   "attributes": {"invoiceId": case, "vendorId": "V-1", "amount": amount, "glAccount": "6100"}}
        ids[case] = requests.post(answered.base_url + "/findings", json=finding).json()["opportunities"][0]["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        statuses = {c: requests.get(f"{answered.base_url}/opportunities/{o}").json()["status"] for c, o in ids.items()}
        if statuses == {small: "verified", large: "rejected"}:
            break
        time.sleep(0.1)
    assert statuses == {small: "verified", large: "rejected"}
    people = answered.sandbox.people
    assert sorted(d for d, status in people.answers) == ["approve", "reject"]
    assert {status for _, status in people.answers} == {200}
    [received] = [b for ch, b in people.received if ch == "approvals" and b["opportunityId"] == ids[small]]
    assert received["card"]["version"] == "1.5" and received["callbackUrl"].endswith(received["approvalId"])
    view = requests.get(f"{answered.base_url}/opportunities/{ids[small]}").json()
    approved = next(a for a in view["audit"] if a["event"] == "approved")
    assert approved["actor"] == "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f" and approved["inputs"]["via"] == "flow"


def test_a_forged_flow_signature_is_refused(answered):
    r = requests.post(f"{answered.base_url}/approvals/{'0' * 32}-a1", json={"decision": "approve", "token": "x.y"},
                      headers={"x-closedloop-signature": "sha256=00"})
    assert r.status_code in (401, 404)

