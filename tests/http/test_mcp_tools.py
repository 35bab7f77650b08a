"""MCP tools through the local host's MCP endpoint (JSON-RPC, as the Functions MCP extension serves them):
the same services and the same role checks as the HTTP routes."""
import json

import pytest
import requests

from tests.conftest import hosted
from tests.factories import finding, treated_case
from tests.http.test_catalog_http import _principal


@pytest.fixture(scope="module")
def mcp(azurite):
    with hosted(azurite) as server:
        url = server.base_url.rsplit("/api", 1)[0] + "/runtime/webhooks/mcp"
        calls = iter(range(1, 10_000))

        def rpc(method, params=None, headers=None):
            r = requests.post(url, json={"jsonrpc": "2.0", "id": next(calls), "method": method, "params": params or {}},
                              headers=headers or {})
            assert r.status_code == 200
            return r.json()

        def tool(name, headers=None, **arguments):
            result = rpc("tools/call", {"name": name, "arguments": arguments}, headers)["result"]
            return result["isError"], json.loads(result["content"][0]["text"])

        yield server, rpc, tool


def test_the_five_tools_are_listed_with_their_inputs(mcp):
    _, rpc, _ = mcp
    assert rpc("initialize", {"protocolVersion": "2025-06-18"})["result"]["capabilities"]["tools"] is not None
    tools = {t["name"]: t for t in rpc("tools/list")["result"]["tools"]}
    assert set(tools) == {"list_backlog", "get_opportunity", "decide_approval", "read_kpis", "freeze_autonomy"}
    assert tools["freeze_autonomy"]["inputSchema"]["properties"]["actions"]["type"] == "array"
    answers = tools["decide_approval"]["inputSchema"]["properties"]
    assert answers["parameters"]["type"] == answers["data"]["type"] == "object"
    assert {"actionId", "owner", "reason", "helpful"} <= set(answers)
    assert all(len(t["description"]) > 30 for t in tools.values())


def test_the_backlog_and_an_opportunity_read_as_over_http(mcp):
    server, _, tool = mcp
    case = treated_case("MCP-LEAD", "lead-management")
    body = finding(processArea="lead-management", deviationPattern="lead-unassigned", caseKey=case,
                   attributes={"leadId": case, "region": "EMEA"})
    assert requests.post(f"{server.base_url}/findings", json=body).status_code == 202
    assert server.bus.wait_idle(30)
    failed, open_work = tool("list_backlog", processArea="lead-management", top=5)
    assert not failed and case not in [o["caseKey"] for o in open_work["items"]]  # verified: done, not open work
    failed, page = tool("list_backlog", processArea="lead-management", state="finished", top=5)
    assert not failed and page["items"][0]["caseKey"] == case
    failed, opp = tool("get_opportunity", id=page["items"][0]["id"])
    assert not failed and opp["executions"] and opp["status"] == "verified"
    failed, problem = tool("get_opportunity", id="nope")
    assert failed and problem["error"]["status"] == 404
    failed, problem = tool("list_backlog", top="lots")
    assert failed and problem["error"]["status"] == 422 and problem["error"]["errors"][0]["pointer"] == "/arguments/top"


def test_freezing_needs_the_autonomy_admin_role_as_over_http(mcp):
    _, _, tool = mcp
    failed, problem = tool("freeze_autonomy", reason="month-end")
    assert failed and problem["error"]["status"] == 401
    failed, problem = tool("freeze_autonomy", headers=_principal("bo@contoso.com", "AP.Approver"), reason="month-end")
    assert failed and problem["error"]["status"] == 403
    failed, state = tool("freeze_autonomy", headers=_principal("ana@contoso.com", "Autonomy.Admin"),
                         reason="month-end", actions=["leads.reassign"])
    assert not failed and state["frozenActions"] == ["leads.reassign"]


def test_deciding_an_approval_needs_its_token_and_role(mcp):
    _, _, tool = mcp
    failed, problem = tool("decide_approval", approvalId="x" * 32 + "-a1", token="forged", decision="approve")
    assert failed and problem["error"]["status"] in (401, 404)
    failed, problem = tool("decide_approval", approvalId="a", token="t", decision="maybe")
    assert failed and problem["error"]["status"] == 422
    assert "handover" in problem["error"]["errors"][0]["detail"]


def test_kpis_read_as_over_http(mcp):
    _, _, tool = mcp
    failed, report = tool("read_kpis", processArea="lead-management")
    assert not failed and "items" in report and report["minSamples"] >= 2


def test_a_context_that_is_not_json_is_a_400_result_not_a_crash():
    from shared.api.mcp_tools import _backlog, run

    assert json.loads(run("{not json", _backlog))["error"]["status"] == 400
    assert json.loads(run(json.dumps({"arguments": ["a"]}), _backlog))["error"]["status"] == 422
