"""Two answers racing for one card: the one that loses is told the record changed meanwhile (409), over HTTP and
MCP alike, because the edge maps the store's ConcurrencyConflict (shared/api/edge.py), not each route."""
import json

import azure.functions as func
import pytest

from shared.api import approval_routes, edge, mcp_tools
from shared.services import feedback
from tests.factories import memory_services, principal_header
from tests.unit.test_review import review_case

RITA = principal_header("rita@contoso.com", "Backlog.Owner")


@pytest.fixture
def raced(monkeypatch):
    """A review card whose "Helpful" link a channel member clicks between the owner's read and write."""
    svc = memory_services()
    oid, notice = review_case(svc)
    real_get = svc.store.get

    def racing_get(opp_id):
        opp = real_get(opp_id)
        svc.store.get = real_get
        feedback.answer(svc, notice["approvalId"], notice["token"], True, None)
        return opp

    svc.store.get = racing_get
    for module in (approval_routes, mcp_tools):
        monkeypatch.setattr(module, "services", lambda: svc)
    return svc, oid, notice


def test_an_answer_that_lost_the_race_is_a_409_over_http(raced):
    svc, oid, notice = raced
    body = {"token": notice["token"], "decision": "dismiss", "reason": "not ours"}
    req = func.HttpRequest("POST", f"http://localhost/api/approvals/{notice['approvalId']}",
                           headers={"content-type": "application/json", **RITA},
                           route_params={"id": notice["approvalId"]}, body=json.dumps(body).encode())
    r = approval_routes.decide_approval._function.get_user_function()(req)
    problem = json.loads(r.get_body())
    assert r.status_code == 409 and r.mimetype == "application/problem+json", problem
    assert "changed by someone else meanwhile" in problem["detail"]
    assert svc.store.get(oid).status.value == "needs_review"  # the owner may read it again and answer


def test_an_answer_that_lost_the_race_is_the_same_409_over_mcp(raced):
    _, _, notice = raced
    context = {"arguments": {"approvalId": notice["approvalId"], "token": notice["token"], "decision": "dismiss",
                             "reason": "not ours"},
               "transport": {"properties": {"headers": RITA}}}
    answer = json.loads(mcp_tools.run(context, mcp_tools._decide))["error"]
    assert answer["status"] == 409 and "changed by someone else meanwhile" in answer["detail"]


def test_a_concurrency_conflict_anywhere_is_a_409_not_a_500():
    import logging

    from shared.ports import ConcurrencyConflict

    answer = edge.refusal(ConcurrencyConflict("etag mismatch"), logging.getLogger("test"), "test", "cid")
    assert answer.status == 409 and "read it again" in answer.detail
