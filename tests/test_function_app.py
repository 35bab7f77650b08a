"""What the Functions host will find when it imports function_app."""
import json
import subprocess
import sys

from tests.conftest import ROOT

EXPECTED = {
    "ingest_findings": ("httpTrigger", "findings"),
    "ingest_celonis": ("httpTrigger", "findings/celonis"),
    "ingest_process_mining": ("httpTrigger", "findings/process-mining"),
    "get_sources": ("httpTrigger", "sources"),
    "list_opportunities": ("httpTrigger", "opportunities"),
    "get_opportunity": ("httpTrigger", "opportunities/{id}"),
    "patch_opportunity": ("httpTrigger", "opportunities/{id}"),
    "get_backlog": ("httpTrigger", "backlog"),
    "health": ("httpTrigger", "health"),
    "list_actions": ("httpTrigger", "actions"),
    "get_action": ("httpTrigger", "actions/{id}"),
    "put_action": ("httpTrigger", "actions/{id}"),
    "activate_action": ("httpTrigger", "actions/{id}/versions/{version}/activate"),
    "list_incidents": ("httpTrigger", "incidents"),
    "list_policies": ("httpTrigger", "policies"),
    "put_policy": ("httpTrigger", "policies"),
    "activate_policy": ("httpTrigger", "policies/{version}/activate"),
    "list_prompts": ("httpTrigger", "prompts"),
    "put_prompt": ("httpTrigger", "prompts/{name}"),
    "activate_prompt": ("httpTrigger", "prompts/{name}/versions/{version}/activate"),
    "get_autonomy": ("httpTrigger", "autonomy"),
    "set_autonomy": ("httpTrigger", "autonomy"),
    "decide_approval": ("httpTrigger", "approvals/{id}"),
    "show_approval": ("httpTrigger", "approvals/{id}"),
    "confirm_approval": ("httpTrigger", "approvals/{id}/confirm"),
    "post_feedback": ("httpTrigger", "approvals/{id}/feedback"),
    "feedback_page": ("httpTrigger", "approvals/{id}/feedback"),
    "commit_backlog": ("httpTrigger", "backlog/commitments"),
    "list_commitments": ("httpTrigger", "backlog/commitments"),
    "post_outcomes": ("httpTrigger", "outcomes"),
    "get_kpis": ("httpTrigger", "kpis"),
    "get_kpis_csv": ("httpTrigger", "kpis.csv"),
    "get_insights": ("httpTrigger", "insights"),
    "get_dashboard": ("httpTrigger", "dashboard"),
    "get_learning": ("httpTrigger", "learning"),
    "get_openapi": ("httpTrigger", "openapi.json"),
    "mcp_list_backlog": ("mcpToolTrigger", None),
    "mcp_get_opportunity": ("mcpToolTrigger", None),
    "mcp_decide_approval": ("mcpToolTrigger", None),
    "mcp_read_kpis": ("mcpToolTrigger", None),
    "mcp_freeze_autonomy": ("mcpToolTrigger", None),
    "triage": ("serviceBusTrigger", "%TRIAGE_QUEUE%"),
    "plan": ("serviceBusTrigger", "%PLAN_QUEUE%"),
    "execute": ("serviceBusTrigger", "%EXECUTE_QUEUE%"),
    "verify": ("serviceBusTrigger", "%VERIFY_QUEUE%"),
    "sweep": ("timerTrigger", "%SWEEP_SCHEDULE%"),
}

PROBE = """
import json, sys, os
os.environ.clear()
import function_app
found = {}
for f in function_app.app.get_functions():
    b = f.get_bindings_dict()["bindings"][0]
    found[f.get_function_name()] = [b["type"], b.get("route") or b.get("queueName") or b.get("schedule"),
                                    b.get("connection"), b.get("runOnStartup")]
heavy = [m for m in ("pydantic", "azure.data.tables", "azure.servicebus", "azure.identity", "openai", "requests", "numpy", "opentelemetry")
         if m in sys.modules]
print(json.dumps({"found": found, "heavy": heavy}))
"""


def probe():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)
    return json.loads(out.stdout)


def test_every_function_is_registered_with_its_trigger():
    found = probe()["found"]
    assert {k: tuple(v[:2]) for k, v in found.items()} == EXPECTED
    assert {v[2] for k, v in found.items() if v[0] == "serviceBusTrigger"} == {"ServiceBusConnection"}
    assert found["sweep"][3] is False


def test_import_is_side_effect_free_and_loads_no_heavy_sdk():
    # With no settings at all, importing still works and pulls in nothing heavy.
    assert probe()["heavy"] == []


BUILT_ONCE = """
import json, os
from shared import runtime
first = runtime.services()
os.environ["FLOW_LEADS_REASSIGN"] = "https://elsewhere.example/b"  # too late: settings are a snapshot
print(json.dumps({"same": runtime.services() is first, "bus": type(first.bus).__name__,
                  "url": first.flows.url("FLOW_LEADS_REASSIGN")}))
"""


def test_the_functions_host_builds_its_services_once_from_the_environment_as_it_was():
    env = {"PATH": "/usr/bin:/bin", "STORE": "memory", "FLOW_LEADS_REASSIGN": "https://flows.example/a",
           "ServiceBusConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net"}
    out = subprocess.run([sys.executable, "-c", BUILT_ONCE], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True, env=env)
    assert json.loads(out.stdout) == {"same": True, "bus": "ServiceBusBus", "url": "https://flows.example/a"}
