"""The app refuses to act while a setting holds an unresolved Key Vault reference, and health says why: through the
local host, as the Functions host would serve it (the rule is the same everywhere)."""
import json
import time

import requests

from shared.ports import Message
from tests.conftest import hosted

REFERENCE = "@Microsoft.KeyVault(VaultName=kv-closedloop;SecretName=approval-signing-key)"


def test_health_is_down_naming_the_setting_and_the_fix_and_every_route_and_tool_answers_503(azurite):
    with hosted(azurite, APPROVAL_SIGNING_KEY=REFERENCE) as server:
        r = requests.get(f"{server.base_url}/health", timeout=30)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, r.text
        doc = r.json()
        assert doc["status"] == "down" and doc["checks"]["secrets"]["unresolved"] == ["APPROVAL_SIGNING_KEY"]
        assert "Key Vault Secrets User" in doc["checks"]["secrets"]["action"]
        assert "restart" in doc["checks"]["secrets"]["action"]

        for method, route, body in (("GET", "/opportunities", None), ("GET", "/approvals/x?token=y", None),
                                    ("POST", "/findings", {"findings": []}), ("GET", "/kpis", None)):
            r = requests.request(method, server.base_url + route, json=body, timeout=30)
            assert r.status_code == 503 and r.headers["Retry-After"] == "300", (route, r.text)
            assert r.headers["Content-Type"].startswith("application/problem+json")
            assert r.json()["unresolved"] == ["APPROVAL_SIGNING_KEY"] and "Key Vault" in r.json()["detail"]

        url = server.base_url.rsplit("/api", 1)[0] + "/runtime/webhooks/mcp"
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_backlog", "arguments": {}}}
        result = requests.post(url, json=call, timeout=30).json()["result"]
        error = json.loads(result["content"][0]["text"])["error"]
        assert result["isError"] and error["status"] == 503 and error["unresolved"] == ["APPROVAL_SIGNING_KEY"]
        assert error["headers"]["Retry-After"] == "300"


def test_a_stage_message_is_not_consumed_while_a_secret_is_unresolved(azurite):
    with hosted(azurite, APPROVAL_FLOW_KEY=REFERENCE) as server:
        # An unreadable body: a stage that ran would settle it as a poison incident (consumed); refused, it is
        # abandoned on every delivery and the bus dead-letters it after its max delivery count, body intact.
        server.bus.send([Message("triage", {"not": "a stage message"}, "kv-unresolved-1")])
        deadline = time.monotonic() + 30
        while not server.bus.dead_letters and time.monotonic() < deadline:
            time.sleep(0.05)
        [dead] = server.bus.dead_letters
        assert dead.envelope.message_id == "kv-unresolved-1"
        assert dead.envelope.delivery_count == server.bus.max_deliveries
        assert "APPROVAL_FLOW_KEY" in dead.description
        server.run_timer("sweep")  # skipped, logged: does not raise
    with hosted(azurite) as server:  # resolved: the same body is settled by the stage (a poison incident)
        server.bus.send([Message("triage", {"not": "a stage message"}, "kv-unresolved-1")])
        assert server.bus.wait_idle(30) and server.bus.dead_letters == []


def test_with_every_secret_resolved_health_is_as_before(azurite):
    with hosted(azurite, APPROVAL_SIGNING_KEY="a-resolved-key") as server:
        r = requests.get(f"{server.base_url}/health", timeout=30)
        assert r.status_code == 200 and "secrets" not in r.json()["checks"], r.text
        assert requests.get(f"{server.base_url}/opportunities", timeout=30).status_code == 200
