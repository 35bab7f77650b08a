"""HTTP and MCP are two doors to the same edge (shared/api/edge.py): the same input gets the same answer through
either, down to the fields of a view and the problem of a refusal."""
import json

import pytest
import requests

from tests.conftest import hosted, settle
from tests.factories import finding, principal_header, treated_case

ADMIN = principal_header("ops@contoso.com", "Autonomy.Admin")


def _doors(server):
    """(GET over HTTP, call an MCP tool) against one local host."""
    mcp_url = server.base_url.rsplit("/api", 1)[0] + "/runtime/webhooks/mcp"

    def tool(name, headers=None, **arguments):
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
        r = requests.post(mcp_url, json=body, headers=headers or {})
        assert r.status_code == 200
        result = r.json()["result"]
        return result["isError"], json.loads(result["content"][0]["text"])

    return server, tool


@pytest.fixture(scope="module")
def doors(azurite):
    with hosted(azurite) as server:
        yield _doors(server)


def _same_problem(http: dict, mcp: dict) -> None:
    """One problem, told apart only by where it happened (instance, correlation id) and how the door names a
    field: `parameter` for a query parameter, `pointer` into an MCP tool's arguments."""
    assert {k: v for k, v in http.items() if k not in ("instance", "correlationId", "errors")} == \
           {k: v for k, v in mcp.items() if k not in ("instance", "correlationId", "errors", "headers")}
    assert [e["detail"] for e in http["errors"]] == [e["detail"] for e in mcp["errors"]]


def test_an_opportunity_reads_the_same_over_http_and_mcp(doors):
    server, tool = doors
    # A pattern no catalog action handles stops at needs_review, so nothing changes between the two reads.
    body = finding(deviationPattern="pattern-nobody-automates", caseKey=treated_case("PARITY-VIEW"))
    r = requests.post(f"{server.base_url}/findings", json=body)
    assert r.status_code == 202
    oid = r.json()["opportunities"][0]["id"]
    settle(server, 60)
    r = requests.get(f"{server.base_url}/opportunities/{oid}")
    failed, view = tool("get_opportunity", id=oid)
    assert r.status_code == 200 and not failed
    assert view == r.json() and view["status"] == "needs_review"
    assert r.headers["ETag"] == view["etag"]
    assert {"scores", "rationale", "history", "executions", "approvals", "audit", "plan"} <= set(view)


def test_an_unknown_opportunity_is_the_same_404(doors):
    server, tool = doors
    r = requests.get(f"{server.base_url}/opportunities/{'f' * 32}")
    failed, answer = tool("get_opportunity", id="f" * 32)
    assert r.status_code == 404 and failed
    _same_problem(r.json(), answer["error"])


def test_a_bad_status_filter_is_the_same_422_naming_the_statuses(doors):
    server, tool = doors
    r = requests.get(f"{server.base_url}/opportunities", params={"status": "nope"})
    failed, answer = tool("list_backlog", status="nope")
    assert r.status_code == 422 and failed
    _same_problem(r.json(), answer["error"])
    assert r.json()["errors"] == [{"parameter": "status", "detail": r.json()["errors"][0]["detail"]}]
    assert answer["error"]["errors"][0]["pointer"] == "/arguments/status"
    assert "needs_review" in answer["error"]["errors"][0]["detail"]
    assert requests.get(f"{server.base_url}/backlog", params={"status": "nope"}).json()["errors"] == \
           r.json()["errors"]


def test_a_refusal_has_the_problem_fields_over_both_doors(doors):
    server, tool = doors
    r = requests.get(f"{server.base_url}/opportunities", params={"status": "nope"},
                     headers={"x-correlation-id": "parity-1"})
    _, answer = tool("list_backlog", status="nope")
    assert r.headers["content-type"].startswith("application/problem+json")
    assert set(r.json()) == set(answer["error"]) == {"type", "title", "status", "detail", "instance",
                                                     "correlationId", "errors"}
    assert r.json()["instance"] == "/api/opportunities" and r.json()["correlationId"] == "parity-1"
    assert answer["error"]["instance"] == "/runtime/webhooks/mcp"


def test_a_forged_principal_is_refused_alike_when_easy_auth_is_off(azurite):
    # No environment name and no WEBSITE_AUTH_ENABLED: production without Easy Auth, where anyone could send the
    # header, so neither door believes it.
    with hosted(azurite, CLOSEDLOOP_ENV="", INGEST_API_KEY="ingest-secret") as server:
        _, tool = _doors(server)
        r = requests.post(f"{server.base_url}/autonomy", json={"freeze": True, "reason": "forged"}, headers=ADMIN)
        failed, answer = tool("freeze_autonomy", headers=ADMIN, reason="forged")
        assert r.status_code == 401 and failed
        _same_problem(r.json(), answer["error"])
        assert requests.get(f"{server.base_url}/autonomy").json()["frozen"] is False


def test_with_easy_auth_on_both_doors_believe_the_principal(azurite):
    with hosted(azurite, CLOSEDLOOP_ENV="", INGEST_API_KEY="ingest-secret", WEBSITE_AUTH_ENABLED="true") as server:
        _, tool = _doors(server)
        failed, state = tool("freeze_autonomy", headers=ADMIN, reason="month-end", actions=["leads.reassign"])
        assert not failed and state["frozenActions"] == ["leads.reassign"]
        r = requests.post(f"{server.base_url}/autonomy", json={"freeze": False, "reason": "month closed"},
                          headers=ADMIN)
        assert r.status_code == 200 and r.json()["frozenActions"] == [], r.text
