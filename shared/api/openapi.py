"""The OpenAPI 2.0 document of the HTTP API: served at GET /api/openapi.json and written to
infra/connector/apiDefinition.swagger.json (`python -m shared.api.openapi`) for the Power Platform custom
connector that Copilot Studio uses. Descriptions are written for an agent choosing a tool.

Plain data, no imports beyond the standard library: the route module that serves it stays cheap.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

CONNECTOR = Path(__file__).resolve().parents[2] / "infra" / "connector"


def _q(name: str, summary: str, description: str, kind: str = "string", required: bool = False,
       **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "type": kind, "required": required, "x-ms-summary": summary,
            "description": description, **extra}


def _path(name: str, summary: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "path", "type": kind, "required": True, "x-ms-summary": summary,
            "description": description}


def _body(schema: dict[str, Any], summary: str, description: str) -> dict[str, Any]:
    return {"name": "body", "in": "body", "required": True, "x-ms-summary": summary, "description": description,
            "schema": schema}


_PROBLEM = {"description": "Bad input: an RFC 9457 problem naming each bad field.",
            "schema": {"$ref": "#/definitions/Problem"}}
_ID = _path("id", "Opportunity id", "The 32-character opportunity id from the backlog.")
_FILTERS = [
    _q("status", "Status", "Only opportunities in this status.",
       enum=["new", "triaged", "needs_data", "duplicate", "control", "planned", "needs_review",
             "awaiting_approval", "approved", "rejected", "executing", "executed", "failed", "verified",
             "compensated", "closed", "dismissed"]),
    _q("processArea", "Process area", "Only this process area, e.g. accounts-payable."),
    _q("deviationPattern", "Deviation pattern", "Only this deviation pattern, e.g. invoice-missing-po."),
]
_FINDING = {
    "type": "object", "required": ["eventId", "processArea", "deviationPattern", "caseKey", "detectedAt"],
    "properties": {
        "eventId": {"type": "string", "x-ms-summary": "Event id", "description": "Unique id of the miner's event."},
        "processArea": {"type": "string", "x-ms-summary": "Process area"},
        "deviationPattern": {"type": "string", "x-ms-summary": "Deviation pattern"},
        "caseKey": {"type": "string", "x-ms-summary": "Case key", "description": "The case, e.g. an invoice number."},
        "detectedAt": {"type": "string", "format": "date-time", "x-ms-summary": "Detected at"},
        "source": {"type": "string", "x-ms-summary": "Source"},
        "kpiImpact": {"type": "number", "x-ms-summary": "Money at stake"},
        "attributes": {"type": "object", "x-ms-summary": "Attributes",
                       "description": "Case fields the actions' data contracts read."},
        "rootCause": {"type": "string", "x-ms-summary": "Root cause"},
        "recommendedAction": {"type": "string", "x-ms-summary": "Recommended action"},
        "severity": {"type": "string", "enum": ["low", "medium", "high", "critical"], "x-ms-summary": "Severity"},
    },
    "example": {"eventId": "evt-1001", "processArea": "accounts-payable", "deviationPattern": "invoice-missing-po",
                "caseKey": "INV-1001", "detectedAt": "2026-11-20T08:30:00Z", "kpiImpact": 360.0,
                "attributes": {"invoiceId": "INV-1001", "vendorId": "V-100", "missingFields": ["poNumber"]}},
}
_OUTCOME = {
    "type": "object", "required": ["processArea", "caseKey", "metric", "value", "observedAt"],
    "properties": {
        "processArea": {"type": "string", "x-ms-summary": "Process area"},
        "caseKey": {"type": "string", "x-ms-summary": "Case key"},
        "metric": {"type": "string", "x-ms-summary": "Metric", "description": "e.g. cycle_time_days, sla_met"},
        "value": {"type": "number", "x-ms-summary": "Value"},
        "observedAt": {"type": "string", "format": "date-time", "x-ms-summary": "Observed at"},
        "source": {"type": "string", "x-ms-summary": "Source"},
    },
    "example": {"processArea": "accounts-payable", "caseKey": "INV-1001", "metric": "cycle_time_days", "value": 6.5,
                "observedAt": "2026-12-03T10:00:00Z"},
}

# (path, method, operationId, summary, description, parameters, success status, response schema, example body)
OPERATIONS: list[tuple[str, str, str, str, str, list[dict[str, Any]], str, Optional[dict[str, Any]], Any]] = [
    ("/findings", "post", "IngestFindings", "Send findings",
     "Send process-mining findings (one or a list of up to 1,000) in the normalized shape. Use it when a "
     "user or flow has findings to add to the backlog; each becomes or updates an opportunity.",
     [_body({"type": "array", "items": {"$ref": "#/definitions/Finding"}}, "Findings", "The findings.")],
     "202", {"$ref": "#/definitions/IngestReport"}, [_FINDING["example"]]),
    ("/findings/celonis", "post", "IngestCelonis", "Send a Celonis event",
     "Forward a Celonis event-subscription callback or Action Flow body as it is. Use it from Celonis, not "
     "from a chat: it expects Celonis's own field names.",
     [_body({"type": "object"}, "Celonis body", "The Celonis callback body."),
      _q("processArea", "Process area", "Process area when the body does not say it."),
      _q("deviationPattern", "Deviation pattern", "Deviation pattern when the body does not say it.")],
     "202", {"$ref": "#/definitions/IngestReport"}, None),
    ("/findings/process-mining", "post", "IngestProcessMining", "Send a Process Mining refresh",
     "Forward the Process Mining connector's 'When a Process data is refreshed' body as it is. Use it from a "
     "Power Automate flow, not from a chat.",
     [_body({"type": "object"}, "Trigger body", "The trigger body."),
      _q("processArea", "Process area", "The process area of the business rule.", required=True),
      _q("deviationPattern", "Deviation pattern", "The deviation pattern the rule detects.", required=True),
      _q("businessRule", "Business rule", "The rule's name.")],
     "202", {"$ref": "#/definitions/IngestReport"}, None),
    ("/opportunities", "get", "ListOpportunities", "List the backlog",
     "The ranked backlog, highest priority first. Use it to answer 'what should we fix first?' or to find "
     "an opportunity's id; filter by status, process area or pattern; page with continuationToken.",
     [*_FILTERS, _q("top", "Page size", "How many to return (1-200, default 50).", "integer"),
      _q("continuationToken", "Continuation token", "The token from the previous page.")],
     "200", {"$ref": "#/definitions/OpportunityPage"}, None),
    ("/opportunities/{id}", "get", "GetOpportunity", "Get an opportunity",
     "One opportunity with its score and rationale, executions (what was done, with evidence), audit trail "
     "and approvals. Use it to explain a case or check what happened to it.",
     [_ID], "200", {"$ref": "#/definitions/Opportunity"}, None),
    ("/opportunities/{id}", "patch", "UpdateOpportunity", "Update an opportunity",
     "Set the owner or notes of an opportunity, or dismiss one nobody has acted on yet. Use it when a user "
     "takes ownership or decides a case is not worth fixing.",
     [_ID, _body({"type": "object", "properties": {
         "owner": {"type": "string", "x-ms-summary": "Owner"}, "notes": {"type": "string", "x-ms-summary": "Notes"},
         "dismiss": {"type": "boolean", "x-ms-summary": "Dismiss"},
         "dismissReason": {"type": "string", "x-ms-summary": "Dismiss reason"}}}, "Changes", "Fields to change.")],
     "200", {"$ref": "#/definitions/Opportunity"}, {"owner": "ana@contoso.com"}),
    ("/backlog", "get", "GetBacklog", "Summarize the backlog",
     "The backlog grouped by process area and pattern: cases, money at stake, mean priority and status "
     "counts. Use it for the weekly review or to compare areas.",
     [*_FILTERS, _q("top", "Groups", "How many groups (default 50).", "integer")], "200", {"type": "object"}, None),
    ("/health", "get", "GetHealth", "Check health",
     "Whether the app, its store and its timer sweep are working. Use it when something seems stuck.",
     [], "200", {"type": "object"}, None),
    ("/actions", "get", "ListActions", "List catalog actions",
     "The catalog of actions the agents may run: what each fixes, its risk tier, caps and data contract. "
     "Use it to say what can be automated.",
     [_q("versions", "Versions", "'all' for every version.", enum=["all"])], "200", {"type": "object"}, None),
    ("/actions/{id}", "get", "GetAction", "Get an action's versions",
     "Every version of one catalog action, oldest first.",
     [_path("id", "Action id", "e.g. ap.request-missing-fields")], "200", {"type": "object"}, None),
    ("/actions/{id}", "put", "AddActionVersion", "Add an action version",
     "Add the next version of a catalog action (the server numbers it; versions are never edited). Risky "
     "changes stay pending until a catalog approver activates them.",
     [_path("id", "Action id", "e.g. ap.request-missing-fields"),
      _body({"type": "object"}, "Action", "The action definition without id and version.")],
     "201", {"type": "object"}, None),
    ("/actions/{id}/versions/{version}/activate", "post", "ActivateActionVersion", "Activate an action version",
     "Let a pending action version go live. Needs the Catalog.Approver role and someone other than its author.",
     [_path("id", "Action id", "The action."), _path("version", "Version", "The pending version.", "integer")],
     "200", {"type": "object"}, None),
    ("/autonomy", "get", "GetAutonomy", "Get autonomy",
     "The autonomy in force: global and per-action mode (auto, approval, off) and any freeze.",
     [], "200", {"type": "object"}, None),
    ("/autonomy", "post", "SetAutonomy", "Change autonomy or freeze",
     "Set modes, or freeze or unfreeze the agents (all, or some actions), with a reason. Use it to stop "
     "automation at once. Needs the Autonomy.Admin role.",
     [_body({"type": "object", "required": ["reason"], "properties": {
         "mode": {"type": "string", "enum": ["auto", "approval", "off"], "x-ms-summary": "Mode"},
         "freeze": {"type": "boolean", "x-ms-summary": "Freeze"},
         "freezeActions": {"type": "array", "items": {"type": "string"}, "x-ms-summary": "Actions to freeze"},
         "reason": {"type": "string", "x-ms-summary": "Reason"}}}, "Change", "What to change and why.")],
     "200", {"type": "object"}, {"freeze": True, "reason": "quarter-end close"}),
    ("/policies", "get", "ListPolicies", "List policy versions",
     "Every policy version the app has run with: weights, thresholds, holdout, author and reason.",
     [], "200", {"type": "object"}, None),
    ("/incidents", "get", "ListIncidents", "List incidents",
     "What the pipeline could not settle on its own (poison messages, dead letters, breaches), newest first.",
     [_q("top", "How many", "At most this many (default 50).", "integer")], "200", {"type": "object"}, None),
    ("/approvals/{id}", "post", "DecideApproval", "Approve, reject or provide data",
     "Answer an approval or data request with its signed token. Use it when a person approves or rejects a "
     "proposed action in the chat.",
     [_path("id", "Approval id", "From the card or the opportunity's approvals."),
      _body({"type": "object", "required": ["token", "decision"], "properties": {
          "token": {"type": "string", "x-ms-summary": "Token"},
          "decision": {"type": "string", "enum": ["approve", "reject", "provide"], "x-ms-summary": "Decision"},
          "data": {"type": "object", "x-ms-summary": "Data"}, "comment": {"type": "string", "x-ms-summary": "Comment"},
          "helpful": {"type": "string", "enum": ["yes", "no"], "x-ms-summary": "Was the card helpful?"}}},
          "Decision", "The decision and its token.")],
     "200", {"type": "object"}, None),
    ("/approvals/{id}", "get", "ShowApproval", "Show an approval page",
     "The confirmation page behind a card's link (HTML). A GET never decides.",
     [_path("id", "Approval id", "The approval."), _q("token", "Token", "The signed token.", required=True),
      _q("decision", "Decision", "approve, reject or provide.")], "200", None, None),
    ("/outcomes", "post", "SendOutcomes", "Send KPI outcomes",
     "Case-level KPI observations (cycle time, SLA met, rework, DSO), one or a list of up to 5,000, measured "
     "against the control group.",
     [_body({"type": "array", "items": {"$ref": "#/definitions/Outcome"}}, "Outcomes", "The observations.")],
     "202", {"type": "object"}, [_OUTCOME["example"]]),
    ("/kpis", "get", "GetKpis", "Read measured impact",
     "Treated vs control per action version and KPI: difference, 95% confidence interval, p-value, ROI; "
     "'not enough data' when too few cases. Use it to answer 'did it work?' with numbers.",
     [_q("processArea", "Process area", "Only this process area."),
      _q("deviationPattern", "Deviation pattern", "Only this pattern."),
      _q("actionId", "Action", "Only this action."), _q("actionVersion", "Version", "Only this version.", "integer"),
      _q("metric", "Metric", "Only this KPI."), _q("weekly", "Weekly", "Include weekly slices (default true).",
                                                   enum=["true", "false"])],
     "200", {"type": "object"}, None),
    ("/kpis.csv", "get", "GetKpisCsv", "Export impact as CSV",
     "The measured impact as a flat CSV for Power BI.", [], "200", None, None),
    ("/insights", "get", "GetInsights", "Read the weekly review",
     "Catalog gaps, action versions with no or a negative effect, recurring failures, card feedback and the "
     "patterns people handle most. Use it to decide what to build or retire next.",
     [_q("days", "Days", "The window in days (1-365, default 28).", "integer")], "200", {"type": "object"}, None),
    ("/dashboard", "get", "GetDashboard", "Open the KPI dashboard",
     "An HTML page of charts (throughput, success rate, treated vs control, ROI).", [], "200", None, None),
    ("/openapi.json", "get", "GetOpenApi", "Get this API's definition",
     "This OpenAPI 2.0 document: every operation of the API with its parameters.", [], "200", {"type": "object"},
     None),
]


def document(host: str = "localhost:7071", scheme: str = "https") -> dict[str, Any]:
    """The OpenAPI 2.0 document for the app served at `host`."""
    paths: dict[str, dict[str, Any]] = {}
    for path, method, op_id, summary, description, params, status, schema, example in OPERATIONS:
        responses: dict[str, Any] = {status: {"description": "OK", **({"schema": schema} if schema else {})}}
        if params or method != "get":
            responses["400"] = _PROBLEM
            responses["422"] = _PROBLEM
        operation = {"operationId": op_id, "summary": summary, "description": description,
                     "parameters": params, "responses": responses,
                     "produces": ["text/html"] if op_id in ("ShowApproval", "GetDashboard") else
                     ["text/csv"] if op_id == "GetKpisCsv" else ["application/json"]}
        if any(p["in"] == "body" for p in params):
            operation["consumes"] = ["application/json"]
        if example is not None:
            operation["x-ms-examples"] = {"example": {"body": example}}
        if op_id in ("IngestCelonis", "IngestProcessMining", "ShowApproval", "GetKpisCsv", "GetDashboard",
                     "GetOpenApi"):
            operation["x-ms-visibility"] = "internal"  # for flows and browsers, not a chat's tool list
        paths.setdefault(path, {})[method] = operation
    return {
        "swagger": "2.0",
        "info": {"title": "closedloop", "version": "1.0",
                 "description": "Turn process-mining findings into a ranked backlog, act on them through "
                                "guarded automations, and measure the effect against control groups."},
        "host": host, "basePath": "/api", "schemes": [scheme],
        "consumes": ["application/json"], "produces": ["application/json"],
        "securityDefinitions": {"oauth2-auth": {
            "type": "oauth2", "flow": "accessCode",
            "authorizationUrl": "https://login.microsoftonline.com/common/oauth2/authorize",
            "tokenUrl": "https://login.windows.net/common/oauth2/authorize", "scopes": {}}},
        "security": [{"oauth2-auth": []}],
        "paths": paths,
        "definitions": {
            "Finding": {k: v for k, v in _FINDING.items() if k != "example"},
            "Outcome": {k: v for k, v in _OUTCOME.items() if k != "example"},
            "IngestReport": {"type": "object", "properties": {
                "accepted": {"type": "integer"}, "duplicates": {"type": "integer"},
                "opportunities": {"type": "array", "items": {"type": "object"}},
                "correlationId": {"type": "string"}}},
            "Opportunity": {"type": "object", "properties": {
                "id": {"type": "string"}, "status": {"type": "string"}, "processArea": {"type": "string"},
                "deviationPattern": {"type": "string"}, "caseKey": {"type": "string"},
                "scores": {"type": "object"}, "rationale": {"type": "string"}}},
            "OpportunityPage": {"type": "object", "properties": {
                "items": {"type": "array", "items": {"$ref": "#/definitions/Opportunity"}},
                "continuationToken": {"type": "string"}}},
            "Problem": {"type": "object", "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "errors": {"type": "array", "items": {"type": "object"}}}},
        },
    }


def write_connector(folder: Path = CONNECTOR) -> None:
    """infra/connector/apiDefinition.swagger.json from the same document (host filled in at import)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "apiDefinition.swagger.json").write_text(json.dumps(document("closedloop.azurewebsites.net"), indent=2)
                                                       + "\n")


if __name__ == "__main__":
    write_connector()
    print(f"wrote {CONNECTOR / 'apiDefinition.swagger.json'}", file=sys.stderr)
