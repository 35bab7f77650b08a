"""The "was this helpful?" answer from every card kind, on the local host: kept once per card, counted weekly."""
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.conftest import hosted
from tests.factories import principal_header, treated_case

PRICE = {"processArea": "accounts-payable", "deviationPattern": "price-variance", "source": "erp",
         "detectedAt": "2026-11-19T08:30:00Z", "kpiImpact": {"daysSaved": 3, "costOfDelayPerDay": 40.0}}
ANA = principal_header("ana@contoso.com", "AP.Approver")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def local(azurite, tmp_path_factory):
    outbox = tmp_path_factory.mktemp("outbox")
    with hosted(azurite, OUTBOX_DIR=str(outbox), CLOSEDLOOP_ENV="local") as server:
        yield server, outbox


def notice_for(local, prefix, kind="approve", pattern="price-variance", attributes=None):
    server, outbox = local
    case = treated_case(prefix, action="ap.post-gl-adjustment")
    attributes = attributes or {"invoiceId": case, "vendorId": "V-1", "amount": 120.0, "glAccount": "6100"}
    r = requests.post(server.base_url + "/findings", json={**PRICE, "deviationPattern": pattern, "eventId": f"e-{case}",
                                                          "caseKey": case, "attributes": attributes})
    assert r.status_code == 202, r.text
    oid = r.json()["opportunities"][0]["id"]
    assert server.bus.wait_idle(30)
    [path] = [p for p in outbox.iterdir() if oid in p.name and f"-{kind}-" in p.name]
    return oid, json.loads(path.read_text())["details"]


def post(server, approval_id, headers=None, **body):
    return requests.post(f"{server.base_url}/approvals/{approval_id}/feedback", json=body, headers=headers or {})


def test_an_approve_card_answered_with_its_decision_counts_once(local):
    server, _ = local
    oid, notice = notice_for(local, "FB-A")
    r = requests.post(f"{server.base_url}/approvals/{notice['approvalId']}", headers=ANA,
                      json={"decision": "approve", "token": notice["token"], "helpful": "yes"})
    assert r.status_code == 200, r.text
    [row] = [f for f in requests.get(f"{server.base_url}/insights").json()["cardFeedback"]
             if f["kind"] == "approve" and f["deviationPattern"] == "price-variance"]
    assert (row["actionId"], row["actionVersion"], row["processArea"]) == \
        ("ap.post-gl-adjustment", 1, "accounts-payable")
    assert (row["helpful"], row["notHelpful"]) == (1, 0)
    again = post(server, notice["approvalId"], token=notice["token"], helpful="no")
    assert again.status_code == 409  # one answer per card: the decision carried it
    view = requests.get(f"{server.base_url}/opportunities/{oid}").json()
    assert view["approvals"][0]["helpful"] is True


def test_a_link_card_feedback_page_records_nothing_and_its_form_post_records_once(local):
    server, _ = local
    oid, notice = notice_for(local, "FB-L")
    link = notice["links"]["helpful:no"]
    assert notice["cards"]["links"]["actions"] and link in json.dumps(notice["cards"]["links"])
    page = requests.get(link)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["Referrer-Policy"] == "same-origin" and page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert 'action="feedback"' in page.text and 'name="helpful" value="no"' in page.text
    view = requests.get(f"{server.base_url}/opportunities/{oid}").json()
    assert view["approvals"][0]["helpful"] is None  # a link scanner opening the link answered nothing
    token = parse_qs(urlsplit(link).query)["token"][0]
    form = {**FORM, "Origin": server.base_url.removesuffix("/api")}  # posted from the page, as a browser does
    r = requests.post(link.split("?")[0], data={"token": token, "helpful": "no", "comment": "mail me: x@y.com"},
                      headers=form)
    assert r.status_code == 200 and "recorded" in r.text
    view = requests.get(f"{server.base_url}/opportunities/{oid}").json()
    assert view["approvals"][0]["helpful"] is False and view["status"] == "awaiting_approval"
    second = requests.post(link.split("?")[0], data={"token": token, "helpful": "yes"}, headers=form)
    assert second.status_code == 409 and second.headers["content-type"].startswith("application/problem+json")
    from shared import runtime

    svc = runtime.services()
    [kept] = [d for d in svc.reference.telemetry("feedback", svc.clock.now() - timedelta(days=1))
              if d["approvalId"] == notice["approvalId"]]
    assert kept["by"] == "anonymous (token holder)" and kept["helpful"] is False and "x@y.com" not in kept["comment"]


def test_a_forged_or_missing_token_is_refused_and_nothing_is_kept(local):
    server, _ = local
    oid, notice = notice_for(local, "FB-F")
    forged = post(server, notice["approvalId"], token=notice["token"][:-3] + "AAA", helpful="yes")
    assert forged.status_code == 401
    page = requests.get(notice["links"]["helpful:yes"][:-3] + "AAA")
    assert page.status_code == 401
    missing = post(server, notice["approvalId"], helpful="maybe")
    assert missing.status_code == 422 and {e["pointer"] for e in missing.json()["errors"]} >= {"/token", "/helpful"}
    assert requests.get(f"{server.base_url}/opportunities/{oid}").json()["approvals"][0]["helpful"] is None


def test_an_enrich_card_takes_feedback_from_a_signed_in_person(local):
    server, _ = local
    case = treated_case("FB-E", action="ap.request-missing-fields")
    oid, notice = notice_for(local, "FB-E", "enrich", "invoice-missing-po", {"invoiceId": case})
    r = post(server, notice["approvalId"], principal_header("vera@contoso.com"), token=notice["token"], helpful="yes")
    assert r.status_code == 200 and r.json() == {"approvalId": notice["approvalId"], "kind": "enrich", "helpful": True}
    rows = [f for f in requests.get(f"{server.base_url}/insights").json()["cardFeedback"] if f["kind"] == "enrich"]
    assert [(f["actionId"], f["deviationPattern"], f["helpful"]) for f in rows] == \
        [("ap.request-missing-fields", "invoice-missing-po", 1)]


@pytest.mark.parametrize("kind", ["review", "escalate"])
def test_review_and_escalation_cards_record_through_the_same_path(local, kind):
    """Those cards come from review.py and escalations.py; a hand-made record of the kind stands in for them."""
    from shared import runtime
    from shared.domain.approvals import new_approval
    from shared.services import approvals

    server, _ = local
    oid, _ = notice_for(local, f"FB-{kind[0].upper()}")
    svc = runtime.services()
    opp = svc.store.get(oid)
    made, token = new_approval(oid, opp.revision + 7, kind, "ap.post-gl-adjustment", 1, "Backlog.Owner",
                               approvals.signing_key(svc), svc.clock.now(), timedelta(hours=1), "cid")
    svc.store.commit(opp, approvals=[made])
    assert post(server, made.id, token=token, helpful="no").status_code == 200
    assert post(server, made.id, token=token, helpful="no").status_code == 409
    [row] = [f for f in requests.get(f"{server.base_url}/insights").json()["cardFeedback"] if f["kind"] == kind]
    assert (row["actionId"], row["actionVersion"], row["deviationPattern"], row["helpful"], row["notHelpful"]) == \
        ("ap.post-gl-adjustment", 1, "price-variance", 0, 1)
