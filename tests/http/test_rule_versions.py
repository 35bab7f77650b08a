"""Policy and prompt versions follow the catalog's two-person rule: a catalog approver adds one, a second
catalog approver (never its author) activates it, and only then does it change what the agents do."""
import pytest
import requests

from devhost.llm_server import LlmServer
from tests.conftest import hosted, settle
from tests.factories import principal_header, treated_case

MAX = principal_header("max@contoso.com", "Catalog.Approver")
ANA = principal_header("ana@contoso.com", "Catalog.Approver")
EVE = principal_header("eve@contoso.com", "AP.Approver")


@pytest.fixture(scope="module")
def llm():
    with LlmServer(delay=4, retry_after=0.05) as server:
        yield server


@pytest.fixture(scope="module")
def server(azurite, llm):
    with hosted(azurite, LLM_BASE_URL=llm.base_url, LLM_API_KEY="k", LLM_TIMEOUT_SECONDS="3") as host:
        yield host


def call(server, method, path, **kw):
    return requests.request(method, server.base_url + path, timeout=30, **kw)


def in_use(server):
    return next(p for p in call(server, "GET", "/policies").json()["items"] if p["inUse"])


def test_a_policy_version_needs_a_catalog_approver_and_never_names_its_author(server):
    body = {k: v for k, v in in_use(server).items() if k not in ("version", "author", "origin", "inUse", "state")}
    assert call(server, "PUT", "/policies", json=body).status_code == 401
    r = call(server, "PUT", "/policies", json=body, headers=EVE)
    assert r.status_code == 403 and "Catalog.Approver" in r.json()["detail"]
    r = call(server, "PUT", "/policies", json={**body, "author": "bob"}, headers=MAX)
    assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["/author"]
    r = call(server, "PUT", "/policies", json={**body, "holdoutPercent": 300}, headers=MAX)
    assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["/holdoutPercent"]


def test_a_policy_version_is_used_only_after_a_second_person_activates_it(server):
    before = in_use(server)
    body = {k: v for k, v in before.items() if k not in ("version", "author", "origin", "inUse", "state")}
    r = call(server, "PUT", "/policies", json={**body, "holdoutPercent": 0, "reason": "measure less"}, headers=MAX)
    assert r.status_code == 201, r.text
    added = r.json()
    assert added["state"] == "pending" and added["inUse"] is False and added["author"] == "max@contoso.com"
    assert in_use(server)["version"] == before["version"]
    url = f"/policies/{added['version']}/activate"
    assert call(server, "POST", url).status_code == 401
    assert call(server, "POST", url, headers=EVE).status_code == 403
    own = call(server, "POST", url, headers=MAX)
    assert own.status_code == 403 and "second person" in own.json()["detail"]
    ok = call(server, "POST", url, headers=ANA)
    assert ok.status_code == 200 and ok.json()["inUse"] is True and ok.json()["state"] == "active"
    assert in_use(server)["version"] == added["version"]
    assert call(server, "POST", url, headers=ANA).status_code == 409
    # What the agents do now runs under it: the audit trail names the activated version.
    case = treated_case("POLICYV")
    finding = {"eventId": f"e-{case}", "source": "crm", "processArea": "lead-management",
               "deviationPattern": "lead-unassigned", "caseKey": case, "detectedAt": "2026-11-20T08:15:00Z",
               "attributes": {"leadId": case, "region": "EMEA"}}
    oid = call(server, "POST", "/findings", json=finding).json()["opportunities"][0]["id"]
    settle(server, 60)
    audit = call(server, "GET", f"/opportunities/{oid}").json()["audit"]
    assert audit and all(a["versions"]["policy"] == added["version"] for a in audit)


def test_a_prompt_version_plans_only_after_a_second_person_activates_it(server, llm):
    prompt = {"system": "You plan closedloop actions. NEW-SYSTEM-TEXT.", "user": "Plan it.\n<data>\n{data}\n</data>",
              "reason": "shorter"}
    assert call(server, "PUT", "/prompts/plan", json=prompt, headers=EVE).status_code == 403
    r = call(server, "PUT", "/prompts/plan", json={**prompt, "user": "no placeholder"}, headers=MAX)
    assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["/user"]
    r = call(server, "PUT", "/prompts/plan", json=prompt, headers=MAX)
    assert r.status_code == 201 and r.json()["version"] == 2 and r.json()["state"] == "pending", r.text
    listed = {(p["name"], p["version"]): p for p in call(server, "GET", "/prompts").json()["items"]}
    assert listed[("plan", 1)]["inUse"] and not listed[("plan", 2)]["inUse"]
    url = "/prompts/plan/versions/2/activate"
    assert call(server, "POST", url, headers=MAX).status_code == 403
    assert call(server, "POST", url, headers=ANA).status_code == 200
    llm.reset()
    case = treated_case("PROMPTV", process_area="lead-management")
    finding = {"eventId": f"e-{case}", "source": "crm", "processArea": "lead-management",
               "deviationPattern": "lead-unassigned", "caseKey": case, "detectedAt": "2026-11-20T08:15:00Z",
               "attributes": {"leadId": case, "region": "APAC", "segment": "smb"}}
    oid = call(server, "POST", "/findings", json=finding).json()["opportunities"][0]["id"]
    settle(server, 60)
    opp = call(server, "GET", f"/opportunities/{oid}").json()
    assert opp["plan"]["promptVersion"] == "plan.v2", opp["plan"]
    assert any("NEW-SYSTEM-TEXT" in m["content"] for c in llm.requests for m in c["body"]["messages"])
