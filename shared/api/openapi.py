"""The OpenAPI 2.0 document of the HTTP API: served at GET /api/openapi.json and written to
infra/connector/apiDefinition.swagger.json (`python -m shared.api.openapi`) for the Power Platform custom
connector that Copilot Studio uses. Descriptions are written for an agent choosing a tool.

Plain data, no imports beyond the standard library and the status names (shared/domain/status.py, the list the
status filter checks): the route module that serves it stays cheap.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..domain.status import Status

CONNECTOR = Path(__file__).resolve().parents[2] / "infra" / "connector"


def _q(name: str, summary: str, description: str, kind: str = "string", required: bool = False,
       **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "type": kind, "required": required, "x-ms-summary": summary,
            "description": description, **extra}


def _path(name: str, summary: str, description: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "path", "type": kind, "required": True, "x-ms-summary": summary,
            "description": description, **extra}


def _body(schema: dict[str, Any], summary: str, description: str) -> dict[str, Any]:
    return {"name": "body", "in": "body", "required": True, "x-ms-summary": summary, "description": description,
            "schema": schema}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"$ref": "#/definitions/Problem"}}


# Every error is an RFC 9457 problem (application/problem+json) with an `errors` list naming each bad field.
_STATUSES = {
    "400": "Malformed: the body is not UTF-8 JSON or nests past 32 levels, or a header (X-MS-CLIENT-PRINCIPAL) "
           "does not parse.",
    "401": "No or a wrong credential: the function key in Azure, the ingest API key, a signed-in principal or a "
           "signed token, as the operation needs.",
    "403": "The signed-in principal lacks the role the operation needs.",
    "404": "No such resource.",
    "409": "Conflict: already done, used, or changed meanwhile.",
    "410": "Expired.",
    "412": "If-Match names an ETag that is no longer current.",
    "413": "The body is over MAX_BODY_BYTES (4 MB by default).",
    "415": "The Content-Type is missing or not one the operation takes.",
    "422": "Invalid input: every bad field named (pointer, parameter or header).",
    "503": "The store did not answer in time: try again after Retry-After seconds.",
}
_RETRY_AFTER = {"Retry-After": {"type": "integer", "description": "Seconds to wait before trying again."}}
_ID = _path("id", "Opportunity id", "The 32-character opportunity id from the backlog.")
_VERSION: dict[str, Any] = {"minimum": 0, "maximum": 999_999_999}  # route versions: whole numbers of at most 9 digits
_FILTERS = [
    _q("status", "Status", "Only opportunities in this status.",
       enum=[s.value for s in Status]),
    _q("processArea", "Process area", "Only this process area, e.g. accounts-payable."),
    _q("deviationPattern", "Deviation pattern", "Only this deviation pattern, e.g. invoice-missing-po."),
]
# An ISO week; the server also checks the year has that week (52 or 53), which a pattern cannot say.
_ISO_WEEK = r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$"
_WEEK_Q = _q("week", "Week", "The ISO week, e.g. 2026-W49 (default: the current week).", pattern=_ISO_WEEK)


def _state(default: str) -> dict[str, Any]:
    return _q("state", "State", f"open (work still to do), finished (closed, dismissed, verified...) or all; "
              f"default {default}.", enum=["open", "finished", "all"])


_TEXT: dict[str, Any] = {"pattern": r"\S"}  # not blank: the server refuses text that is only whitespace
_SIGNAL = {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
    "name": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_.-]{0,63}$",
             "description": "An identifier, like an attribute name: names (never values) are shown to the planner."},
    "value": {"description": "Text (at most 200 characters), a number or a boolean."},
    "share": {"type": "number", "minimum": 0, "maximum": 1, "x-nullable": True,
              "description": "Share of the deviating cases with this value (0.34 = 34%)."},
    "weight": {"type": "number", "minimum": -1e6, "maximum": 1e6, "x-nullable": True}}}
_FINDING = {
    "type": "object", "required": ["eventId", "processArea", "deviationPattern", "caseKey", "detectedAt"],
    # Tolerant reader: a field the API does not know is kept under `extensions` and named in the response
    # (strict=true refuses it instead), so the document does not forbid them.
    "additionalProperties": True,
    "properties": {
        "eventId": {"type": "string", "minLength": 1, "maxLength": 256, **_TEXT, "x-ms-summary": "Event id",
                    "description": "Unique id of the miner's event."},
        "processArea": {"type": "string", "minLength": 1, "maxLength": 100, **_TEXT, "x-ms-summary": "Process area"},
        "deviationPattern": {"type": "string", "minLength": 1, "maxLength": 100, **_TEXT,
                             "x-ms-summary": "Deviation pattern"},
        "caseKey": {"type": "string", "minLength": 1, "maxLength": 256, **_TEXT, "x-ms-summary": "Case key",
                    "description": "The case, e.g. an invoice number."},
        "detectedAt": {"type": "string", "format": "date-time", "x-ms-summary": "Detected at",
                       "description": "ISO-8601 (naive means UTC); epoch seconds or milliseconds are taken too."},
        "source": {"type": "string", "minLength": 1, "maxLength": 64, **_TEXT, "x-ms-summary": "Source"},
        "kpiImpact": {"$ref": "#/definitions/KpiImpact"},
        "attributes": {"type": "object", "maxProperties": 100, "x-ms-summary": "Attributes",
                       "description": "Case fields the actions' data contracts read. Names are identifiers (a "
                                      "letter, then letters, digits, _ . -); at most 10,000 characters, 32 levels."},
        "rootCause": {"x-nullable": True, "x-ms-summary": "Root cause",
                      "description": "Text (at most 2,000 characters), or a list of at most 20 root-cause signals "
                                     "(see Signal), e.g. [{\"name\": \"vendor\", \"value\": \"V300\", "
                                     "\"share\": 0.34}]."},
        "recommendedAction": {"type": "string", "maxLength": 2000, "x-nullable": True,
                              "x-ms-summary": "Recommended action"},
        "severity": {"type": "string", "enum": ["low", "medium", "high", "critical", None], "x-nullable": True,
                     "x-ms-summary": "Severity"},
        "complianceFlags": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 64},
                            "x-ms-summary": "Compliance flags"},
        "extensions": {"type": "object", "x-ms-summary": "Extensions",
                       "description": "The sender's own fields, kept as sent. Fields the API does not know are put "
                                      "here too (a kpiImpact one as kpiImpact.<name>); at most 4,096 bytes of JSON "
                                      "per finding."},
    },
    "example": {"eventId": "evt-1001", "processArea": "accounts-payable", "deviationPattern": "invoice-missing-po",
                "caseKey": "INV-1001", "detectedAt": "2026-11-20T08:30:00Z",
                "kpiImpact": {"metric": "days_to_close", "estimate": 4.0, "unit": "days", "valueAtStake": 360.0,
                              "currency": "EUR"},
                "rootCause": [{"name": "vendor", "value": "V-100", "share": 0.34}],
                "attributes": {"invoiceId": "INV-1001", "vendorId": "V-100", "missingFields": ["poNumber"]}},
}
_MONEY = {"type": "number", "minimum": 0, "maximum": 1e15, "x-nullable": True}
_KPI = {"type": "object", "additionalProperties": False, "x-nullable": True, "x-ms-summary": "KPI impact",
        "description": "Expected movement: money = days saved × cost of delay + value at stake + penalty avoided "
                       "(a plain number of money at stake is taken too). Name the KPI it moves with metric and "
                       "estimate (both or neither; the metric as POST /api/outcomes names it, or an alias of "
                       "catalog/aliases.json): its direction is `direction`, else a negative estimate decreases, "
                       "else the metric's convention (a gain where lower is better is a decrease). An estimate in "
                       "days or hours of a decrease counts as daysSaved when that is not given. A list of up to "
                       "10 of these is taken too: its money is the sum of theirs.",
        "properties": {"daysSaved": {"type": "number", "minimum": 0, "maximum": 3650, "x-nullable": True},
                       "costOfDelayPerDay": _MONEY, "valueAtStake": _MONEY, "penaltyAvoided": _MONEY,
                       "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "x-nullable": True},
                       "metric": {"type": "string", "minLength": 1, "maxLength": 64, "x-nullable": True,
                                  "description": "The KPI, e.g. cycle_time_days or days_to_close."},
                       "estimate": {"type": "number", "minimum": -1e15, "maximum": 1e15, "x-nullable": True,
                                    "description": "By how much, in unit; a negative number is a decrease."},
                       "unit": {"type": "string", "pattern": "^[A-Za-z%][A-Za-z0-9%/._-]{0,15}$",
                                "x-nullable": True, "description": "days, hours, percent, count, EUR, ..."},
                       "direction": {"type": "string", "enum": ["decrease", "increase", None], "x-nullable": True}}}
# CloudEvents 1.0 binary mode (HTTP binding): the attributes as headers, the body is the event's data.
_CE_HEADERS = [
    {"name": f"ce-{name}", "in": "header", "type": "string", "required": False, "x-ms-summary": summary,
     "description": description}
    for name, summary, description in (
        ("id", "Event id", "CloudEvents binary mode: the event's id; with ce-source it is the eventId (dedupe)."),
        ("source", "Event source", "CloudEvents binary mode: who sent the event (a URI reference)."),
        ("type", "Event type", ("CloudEvents binary mode: mapped to processArea and deviationPattern by "
                                "mappings/celonis.json cloudEventTypes when neither the data nor the query names "
                                "them.")),
        ("specversion", "Spec version", "CloudEvents binary mode: 1.0."),
        ("time", "Event time", ("RFC 3339; the finding's detectedAt when the data has none. With a signing "
                                "secret, more than 5 minutes from the server's clock is a 401 (replay).")),
        ("subject", "Subject", "The caseKey when the data has none."))]
_STRICT = _q("strict", "Strict", "true: a field the API does not know is a 422 naming it, instead of being kept "
             "under extensions (INGEST_STRICT_SOURCES sets it per source).", enum=["true", "false"])
_OUTCOME = {
    "type": "object", "required": ["processArea", "caseKey", "metric", "value", "observedAt"],
    "additionalProperties": False,
    "properties": {
        "processArea": {"type": "string", "minLength": 1, "maxLength": 100, **_TEXT, "x-ms-summary": "Process area"},
        "caseKey": {"type": "string", "minLength": 1, "maxLength": 256, **_TEXT, "x-ms-summary": "Case key"},
        "metric": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$", "x-ms-summary": "Metric",
                   "description": "e.g. cycle_time_days, sla_met"},
        "value": {"type": "number", "x-ms-summary": "Value",
                  "description": "A finite number (true/false taken as 1/0)."},
        "observedAt": {"type": "string", "format": "date-time", "x-ms-summary": "Observed at"},
        "source": {"type": "string", "minLength": 1, "maxLength": 64, "x-ms-summary": "Source"},
    },
    "example": {"processArea": "accounts-payable", "caseKey": "INV-1001", "metric": "cycle_time_days", "value": 6.5,
                "observedAt": "2026-12-03T10:00:00Z"},
}
_OBJECT = {"type": "object"}
_KPI_FILTERS = [
    _q("processArea", "Process area", "Only this process area."),
    _q("deviationPattern", "Deviation pattern", "Only this pattern."),
    _q("actionId", "Action", "Only this action."),
    _q("actionVersion", "Version", "Only this version.", "integer", **_VERSION),
    _q("metric", "Metric", "Only this KPI."),
    _q("weekly", "Weekly", "Include weekly slices (default true).", enum=["true", "false"])]
_LIST = {"$ref": "#/definitions/List"}
_ACTION_ID = _path("id", "Action id", "e.g. ap.request-missing-fields")
_PROMPT = _path("name", "Prompt name", "e.g. plan (lower-case letters, digits, - and _)",
                pattern="^[a-z0-9_-]{1,40}$")
_VERSION_PATH = _path("version", "Version", "The pending version.", "integer", **_VERSION)

# (path, method, operationId, summary, description, parameters, success status, response schema, example body)
OPERATIONS: list[tuple[str, str, str, str, str, list[dict[str, Any]], str, dict[str, Any] | None, Any]] = [
    ("/findings", "post", "IngestFindings", "Send findings",
     ("Send process-mining findings (one or a list of up to 1,000) in the normalized shape. Use it when a "
      "user or flow has findings to add to the backlog; each becomes or updates an opportunity. CloudEvents 1.0 "
      "carrying them are taken too (binary mode with ce-* headers, application/cloudevents+json, "
      "application/cloudevents-batch+json): the event's id and source become the eventId."),
     [_body({"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": "#/definitions/Finding"}},
            "Findings", "The findings (one object is taken too)."), _STRICT],
     "202", {"$ref": "#/definitions/IngestReport"}, [_FINDING["example"]]),
    ("/findings/celonis", "post", "IngestCelonis", "Send a Celonis event",
     ("Forward a Celonis event-subscription callback or Action Flow body as it is. Use it from Celonis, not "
      "from a chat: it expects Celonis's own field names."),
     [_body({"$ref": "#/definitions/CelonisEvent"}, "Celonis body",
            "The Celonis callback body (a list of them, or normalized findings, are taken too)."),
      _q("processArea", "Process area", "Process area when the mapping does not say it.", minLength=1,
         maxLength=100, **_TEXT),
      _q("deviationPattern", "Deviation pattern", "Deviation pattern when the mapping does not say it.", minLength=1,
         maxLength=100, **_TEXT), _STRICT,
      {"name": "x-emporix-hmac", "in": "header", "type": "string", "required": False,
       "x-ms-summary": "Signature", "description": "Base64 HMAC-SHA256 of the raw body under CELONIS_SIGNING_SECRET "
                                                  "(Orchestration Engine events). When the secret is set, this or "
                                                  "x-closedloop-secret must verify, else 401."},
      {"name": "x-closedloop-secret", "in": "header", "type": "string", "required": False,
       "x-ms-summary": "Shared secret", "description": "CELONIS_SIGNING_SECRET itself, as an event subscription's "
                                                       "callback header (Celonis signs no subscription callback)."},
      *_CE_HEADERS],
     "202", {"$ref": "#/definitions/IngestReport"}, None),
    ("/findings/process-mining", "post", "IngestProcessMining", "Send a Process Mining refresh",
     ("Forward the Process Mining connector's 'When a Process data is refreshed' body as it is. Use it from a "
      "Power Automate flow, not from a chat."),
     [_body({"$ref": "#/definitions/ProcessRefresh"}, "Trigger body", "The trigger body."),
      _q("processArea", "Process area", "The process area of the business rule.", required=True, minLength=1,
         maxLength=100, **_TEXT),
      _q("deviationPattern", "Deviation pattern", "The deviation pattern the rule detects.", required=True,
         minLength=1, maxLength=100, **_TEXT),
      _q("businessRule", "Business rule", "The rule's name.", minLength=1, maxLength=100, **_TEXT), _STRICT],
     "202", {"$ref": "#/definitions/IngestReport"}, None),
    ("/sources", "get", "ListSources", "List finding sources",
     ("Per Celonis event subscription: the highest offset received, the last event's time and the offsets that "
      "never arrived (each also an incident). Use it when findings seem to be missing from a source."),
     [_q("top", "How many", "At most this many subscriptions (1-1000, default 100).", "integer", minimum=1,
         maximum=1000)], "200", _LIST, None),
    ("/opportunities", "get", "ListOpportunities", "List the backlog",
     ("The ranked backlog, highest priority first. Use it to answer 'what should we fix first?' or to find "
      "an opportunity's id; filter by status, process area or pattern; page with continuationToken."),
     [*_FILTERS, _state("all"),
      _q("top", "Page size", "How many to return (1-200, default 50).", "integer", minimum=1, maximum=200),
      _q("continuationToken", "Continuation token", "The token from the previous page (only those).")],
     "200", {"$ref": "#/definitions/OpportunityPage"}, None),
    ("/opportunities/{id}", "get", "GetOpportunity", "Get an opportunity",
     ("One opportunity with its score and rationale, executions (what was done, with evidence), audit trail "
      "and approvals. Use it to explain a case or check what happened to it."),
     [_ID], "200", {"$ref": "#/definitions/Opportunity"}, None),
    ("/opportunities/{id}", "patch", "UpdateOpportunity", "Update an opportunity",
     ("Set the owner, notes or effort estimate of an opportunity, dismiss one nobody has acted on yet (the "
      "policy's dismiss role), or commit it for a week (committedFor, the policy's commit role; owner is then the "
      "commitment's owner). Use it when a user takes ownership, estimates the work, commits to it or decides a "
      "case is not worth fixing. Needs a signed-in user."),
     [_ID, _body({"type": "object", "minProperties": 1, "additionalProperties": False, "properties": {
         "owner": {"type": "string", "maxLength": 200, "x-nullable": True, "x-ms-summary": "Owner"},
         "notes": {"type": "string", "maxLength": 4000, "x-nullable": True, "x-ms-summary": "Notes"},
         "dismiss": {"type": "boolean", "x-ms-summary": "Dismiss"},
         "dismissReason": {"type": "string", "maxLength": 500, "x-nullable": True, "x-ms-summary": "Dismiss reason"},
         "effortHours": {"type": "number", "minimum": 0, "maximum": 10_000, "x-nullable": True,
                         "x-ms-summary": "Effort (hours)",
                         "description": "The person's estimate; null goes back to the catalog action's."},
         "committedFor": {"type": "string", "pattern": _ISO_WEEK, "x-ms-summary": "Committed for week",
                          "description": "Commit this case for the ISO week, e.g. 2026-W49."}}},
         "Changes", "Fields to change."),
      {"name": "If-Match", "in": "header", "type": "string", "required": False, "x-ms-summary": "ETag",
       "description": "The ETag from GET, to refuse a lost update (412)."}],
     "200", {"$ref": "#/definitions/Opportunity"}, {"owner": "ana@contoso.com"}),
    ("/backlog", "get", "GetBacklog", "Summarize the backlog",
     ("The backlog grouped by process area and pattern: cases, money at stake, mean priority, status counts, "
      "finished cases, and the candidate action's effort, prerequisites and failure modes; the week's "
      "commitments first with what became of them (done, in flight, stuck). Open work unless state says "
      "otherwise. Use it for the weekly review or to compare areas."),
     [*_FILTERS, _state("open"), _WEEK_Q,
      _q("top", "Groups", "How many groups (1-1000, default 100).", "integer", minimum=1, maximum=1000)],
     "200", _OBJECT, None),
    ("/backlog/commitments", "post", "CommitBacklog", "Commit backlog items for a week",
     ("Commit backlog groups (processArea + deviationPattern) or single opportunities for an ISO week with an "
      "owner. Committing an item again replaces its owner. Use it in the weekly review when a leader takes on "
      "the top items. Needs a signed-in user with the policy's commit role (Backlog.Owner)."),
     [_body({"type": "object", "required": ["owner", "items"], "additionalProperties": False, "properties": {
         "week": {"type": "string", "pattern": _ISO_WEEK, "x-ms-summary": "Week",
                  "description": "The ISO week, e.g. 2026-W49 (default: the current week)."},
         "owner": {"type": "string", "minLength": 1, "maxLength": 200, **_TEXT, "x-ms-summary": "Owner"},
         "items": {"type": "array", "minItems": 1, "maxItems": 50, "x-ms-summary": "Items",
                   "description": "Each either {opportunityId} or {processArea, deviationPattern}.",
                   "items": {"type": "object", "additionalProperties": False, "properties": {
                       "opportunityId": {"type": "string", "x-ms-summary": "Opportunity id"},
                       "processArea": {"type": "string", "minLength": 1, "maxLength": 200, **_TEXT,
                                       "x-ms-summary": "Process area"},
                       "deviationPattern": {"type": "string", "minLength": 1, "maxLength": 200, **_TEXT,
                                            "x-ms-summary": "Deviation pattern"}}}}}},
            "Commitment", "The week, the owner and the items.")],
     "201", _OBJECT, None),
    ("/backlog/commitments", "get", "ListCommitments", "List a week's commitments",
     ("The groups and opportunities committed for a week, their owner and who committed them, with what "
      "became of their cases: done, inFlight or stuck. Use it to review last week's commitments."),
     [_WEEK_Q], "200", _OBJECT, None),
    ("/health", "get", "GetHealth", "Check health",
     ("Whether the app, its store and its timer sweep are working, and what is switched off. Use it when "
      "something seems stuck. 503 with Retry-After when the store does not answer within 2.5 s."),
     [], "200", {"$ref": "#/definitions/Health"}, None),
    ("/actions", "get", "ListActions", "List catalog actions",
     ("The catalog of actions the agents may run: what each fixes, its risk tier, caps and data contract. "
      "Use it to say what can be automated."),
     [_q("versions", "Versions", "'all' for every version; any other value, or none, the latest of each.")],
     "200", _LIST, None),
    ("/actions/{id}", "get", "GetAction", "Get an action's versions",
     "Every version of one catalog action, oldest first.", [_ACTION_ID], "200", _LIST, None),
    ("/actions/{id}", "put", "AddActionVersion", "Add an action version",
     ("Add the next version of a catalog action (the server numbers it; versions are never edited). Needs the "
      "Catalog.Approver role; risky changes stay pending until a second approver activates them."),
     [_ACTION_ID, _body(_OBJECT, "Action", "The action definition without id and version.")],
     "201", _OBJECT, None),
    ("/actions/{id}/versions/{version}/activate", "post", "ActivateActionVersion", "Activate an action version",
     "Let a pending action version go live. Needs the Catalog.Approver role and someone other than its author.",
     [_path("id", "Action id", "The action."), _VERSION_PATH], "200", _OBJECT, None),
    ("/autonomy", "get", "GetAutonomy", "Get autonomy",
     ("The autonomy in force: global and per-action mode (auto, approval, off), any freeze, and the action-pattern "
      "pairs people's answers tightened (their plans go to a person)."),
     [], "200", _OBJECT, None),
    ("/autonomy", "post", "SetAutonomy", "Change autonomy or freeze",
     ("Set modes, freeze or unfreeze the agents (all, or some actions), or relax pairs people's answers "
      "tightened, with a reason. Use it to stop automation at once. Needs the Autonomy.Admin role."),
     [_body({"type": "object", "required": ["reason"], "properties": {
         "mode": {"type": "string", "enum": ["autonomous", "approval", "off"], "x-ms-summary": "Mode"},
         "freeze": {"type": "boolean", "x-ms-summary": "Freeze"},
         "freezeActions": {"type": "array", "items": {"type": "string"}, "x-ms-summary": "Actions to freeze"},
         "relax": {"type": "array", "minItems": 1, "x-ms-summary": "Pairs to relax",
                   "description": ("Lift the tightening people's answers put on these action-pattern pairs (GET "
                                   "/insights proposes them in relaxProposals); a pair not tightened is a 422."),
                   "items": {"type": "object", "additionalProperties": False,
                             "required": ["actionId", "processArea", "deviationPattern"],
                             "properties": {
                                 "actionId": {"type": "string", "minLength": 1, **_TEXT, "x-ms-summary": "Action"},
                                 "processArea": {"type": "string", "minLength": 1, "maxLength": 100, **_TEXT,
                                                 "x-ms-summary": "Process area"},
                                 "deviationPattern": {"type": "string", "minLength": 1, "maxLength": 100, **_TEXT,
                                                      "x-ms-summary": "Deviation pattern"}}}},
         "reason": {"type": "string", "minLength": 1, **_TEXT, "x-ms-summary": "Reason"}}},
         "Change", "What to change and why.")],
     "200", _OBJECT, {"freeze": True, "reason": "quarter-end close"}),
    ("/policies", "get", "ListPolicies", "List policy versions",
     "Every policy version the app has run with: weights, thresholds, holdout, author, reason and state.",
     [], "200", _LIST, None),
    ("/policies", "put", "AddPolicyVersion", "Add a policy version",
     "Add the next scoring policy version (Catalog.Approver role); it waits for a second approver's activation.",
     [_body(_OBJECT, "Policy", "The whole policy document.")], "201", _OBJECT, None),
    ("/policies/{version}/activate", "post", "ActivatePolicyVersion", "Activate a policy version",
     "Let a pending policy version go live. Needs the Catalog.Approver role and someone other than its author.",
     [_VERSION_PATH], "200", _OBJECT, None),
    ("/prompts", "get", "ListPrompts", "List prompt versions",
     "The planner's prompt versions (deployed and added ones), their state, and which one plans now.",
     [], "200", _LIST, None),
    ("/prompts/{name}", "put", "AddPromptVersion", "Add a prompt version",
     "Add the next version of a prompt (Catalog.Approver role); it waits for a second approver's activation.",
     [_PROMPT, _body(_OBJECT, "Prompt", "The prompt text and why it changed.")], "201", _OBJECT, None),
    ("/prompts/{name}/versions/{version}/activate", "post", "ActivatePromptVersion", "Activate a prompt version",
     "Let a pending prompt version plan. Needs the Catalog.Approver role and someone other than its author.",
     [_PROMPT, _VERSION_PATH], "200", _OBJECT, None),
    ("/incidents", "get", "ListIncidents", "List incidents",
     "What the pipeline could not settle on its own (poison messages, dead letters, breaches), newest first.",
     [_q("top", "How many", "At most this many (1-500, default 50).", "integer", minimum=1, maximum=500)],
     "200", _LIST, None),
    ("/approvals/{id}", "post", "DecideApproval", "Answer a card",
     ("Answer a card with its signed token: approve or reject a proposed action, provide data, decide a review "
      "(run a candidate action with edited parameters, hand over, dismiss) or an escalation (retry, undo, "
      "accept, hand over, close). Needs a signed-in user with the card's role."),
     [_path("id", "Approval id", "From the card or the opportunity's approvals."),
      _body({"type": "object", "required": ["token", "decision"], "properties": {
          "token": {"type": "string", "minLength": 1, "x-ms-summary": "Token"},
          "decision": {"type": "string", "enum": ["approve", "reject", "provide", "run", "handover", "dismiss",
                                                  "retry", "undo", "accept", "close"], "x-ms-summary": "Decision"},
          "data": {"type": "object", "x-nullable": True, "x-ms-summary": "Data"},
          "comment": {"type": "string", "maxLength": 1000, "x-nullable": True, "x-ms-summary": "Comment"},
          "actionId": {"type": "string", "maxLength": 100, "x-nullable": True, "x-ms-summary": "Action to run"},
          "parameters": {"type": "object", "x-nullable": True, "x-ms-summary": "Parameters (contract fields)"},
          "owner": {"type": "string", "maxLength": 200, "x-nullable": True, "x-ms-summary": "New owner"},
          "reason": {"type": "string", "maxLength": 500, "x-nullable": True, "x-ms-summary": "Reason"},
          "helpful": {"type": "string", "enum": ["yes", "no", None], "x-nullable": True,
                      "x-ms-summary": "Was the card helpful?"}}},
          "Decision", "The decision and its token.")],
     "200", _OBJECT, None),
    ("/approvals/{id}", "get", "ShowApproval", "Show an approval",
     "One approval request (JSON), for its token's holder or a principal with its approval role.",
     [_path("id", "Approval id", "The approval."), _q("token", "Token", "The signed token from the card.")],
     "200", _OBJECT, None),
    ("/approvals/{id}/confirm", "get", "ConfirmApproval", "Open a card link's confirmation page",
     "The page behind a card's link (HTML): the decision's fields, to confirm. A GET never decides.",
     [_path("id", "Approval id", "The approval."),
      _q("token", "Token", "The signed token.", required=True, minLength=1),
      _q("decision", "Decision", "What the link proposes (one the card's kind takes).", required=True,
         enum=["approve", "reject", "provide", "run", "handover", "dismiss", "retry", "undo", "accept", "close"])],
     "200", None, None),
    ("/approvals/{id}/feedback", "post", "SendCardFeedback", "Say whether a card helped",
     ("Answer a card's 'Was this helpful?' with its signed token: yes or no, and an optional comment. One answer "
      "per card, kept per action version, pattern and card kind for the weekly review."),
     [_path("id", "Approval id", "From the card's feedback link."),
      _body({"type": "object", "required": ["token", "helpful"], "properties": {
          "token": {"type": "string", "minLength": 1, "x-ms-summary": "Token"},
          "helpful": {"type": "string", "enum": ["yes", "no"], "x-ms-summary": "Was the card helpful?"},
          "comment": {"type": "string", "maxLength": 1000, "x-nullable": True, "x-ms-summary": "Comment"}}},
          "Feedback", "The answer and its token.")],
     "200", _OBJECT, None),
    ("/approvals/{id}/feedback", "get", "OpenCardFeedback", "Open a card's feedback page",
     "The page behind a card's 'Was this helpful?' link (HTML); it asks to confirm. A GET never records.",
     [_path("id", "Approval id", "The approval."),
      _q("token", "Token", "The signed token.", required=True, minLength=1),
      _q("helpful", "Helpful", "The answer the link proposes.", required=True, enum=["yes", "no"])],
     "200", None, None),
    ("/outcomes", "post", "SendOutcomes", "Send KPI outcomes",
     ("Case-level KPI observations (cycle time, SLA met, rework, DSO), one or a list of up to 5,000, measured "
      "against the control group."),
     [_body({"type": "array", "minItems": 1, "maxItems": 5000, "items": {"$ref": "#/definitions/Outcome"}},
            "Outcomes", "The observations (one object is taken too).")],
     "202", _OBJECT, [_OUTCOME["example"]]),
    ("/kpis", "get", "GetKpis", "Read measured impact",
     ("Treated vs control per action version and KPI: difference, 95% confidence interval, p-value, ROI; "
      "'not enough data' when too few cases. Use it to answer 'did it work?' with numbers."),
     _KPI_FILTERS, "200", _OBJECT, None),
    ("/kpis.csv", "get", "GetKpisCsv", "Export impact as CSV",
     "The measured impact as a flat CSV for Power BI.", _KPI_FILTERS, "200", None, None),
    ("/insights", "get", "GetInsights", "Read the weekly review",
     ("Catalog gaps, action versions with no or a negative effect, recurring failures, card feedback and the "
      "patterns people handle most. Use it to decide what to build or retire next."),
     [_q("days", "Days", "The window in days (1-365, default 28).", "integer", minimum=1, maximum=365)],
     "200", _OBJECT, None),
    ("/learning", "get", "GetLearning", "Read what the loop learned",
     ("Per action version, pattern and KPI: what the miners expected beside what the control group measured (n, "
      "95% CI, which population), the calibration ratio measured ÷ expected with its interval and the factor "
      "priority uses, the verdict on the primary KPI (harmful, null, helpful, not enough data), the versions the "
      "sweep froze or flagged, and the recent policy events. Use it to answer 'what did the agents change and "
      "why?'."),
     [], "200", {"$ref": "#/definitions/Learning"}, None),
    ("/dashboard", "get", "GetDashboard", "Open the KPI dashboard",
     "An HTML page of charts (throughput, success rate, treated vs control, ROI, learning).", [], "200", None,
     None),
    ("/openapi.json", "get", "GetOpenApi", "Get this API's definition",
     "This OpenAPI 2.0 document: every operation of the API with its parameters.", [], "200", _OBJECT, None),
]

# Statuses each operation answers besides its success, beyond what its shape implies (see `_responses`).
_ERRORS: dict[str, str] = {
    "UpdateOpportunity": "401 403 404 409 412", "GetOpportunity": "404", "CommitBacklog": "401 403 404 409",
    "AddActionVersion": "401 403 404 409", "ActivateActionVersion": "401 403 404 409", "GetAction": "404",
    "SetAutonomy": "401 403 409",
    "AddPolicyVersion": "401 403 409", "ActivatePolicyVersion": "401 403 404 409",
    "AddPromptVersion": "401 403 404 409", "ActivatePromptVersion": "401 403 404 409",
    "DecideApproval": "401 403 404 409 410", "ShowApproval": "401 403 404 410",
    "ConfirmApproval": "401 404 409 410", "SendCardFeedback": "401 404 409 410", "OpenCardFeedback": "401 404 410",
}
# Anonymous at the Functions level: no function key, so no 401 for it (DecideApproval and ConfirmApproval check
# a token instead, listed above).
_ANONYMOUS = {"GetHealth", "GetOpenApi", "DecideApproval", "ConfirmApproval", "SendCardFeedback", "OpenCardFeedback"}
# Routes that read the Easy Auth principal: a header that does not parse is a 400.
_PRINCIPAL = {"UpdateOpportunity", "CommitBacklog", "AddActionVersion", "ActivateActionVersion", "SetAutonomy",
              "AddPolicyVersion", "ActivatePolicyVersion", "AddPromptVersion", "ActivatePromptVersion",
              "DecideApproval", "ShowApproval", "SendCardFeedback"}
_MEDIA = {"ConfirmApproval": "text/html", "OpenCardFeedback": "text/html", "GetDashboard": "text/html",
          "GetKpisCsv": "text/csv"}
# CloudEvents 1.0 in structured and batch mode (binary mode is application/json with ce-* headers).
_CLOUDEVENTS = ["application/json", "application/cloudevents+json", "application/cloudevents-batch+json"]
_CONSUMES = {"IngestFindings": _CLOUDEVENTS, "IngestCelonis": _CLOUDEVENTS}
_INTERNAL = {"IngestCelonis", "IngestProcessMining", "ConfirmApproval", "OpenCardFeedback", "GetKpisCsv",
             "GetDashboard", "GetOpenApi"}


def _responses(op_id: str, method: str, params: list[dict[str, Any]], status: str,
               schema: dict[str, Any] | None) -> dict[str, Any]:
    """The success response, then every problem the operation can answer, each documented."""
    codes = set(_ERRORS.get(op_id, "").split())
    if any(p["in"] == "body" for p in params):
        codes |= {"400", "413", "415", "422"}
    if any(p["in"] in ("query", "path") for p in params):
        codes.add("422")
    if op_id not in _ANONYMOUS:
        codes.add("401")  # the function key in Azure
    if op_id in _PRINCIPAL:
        codes.add("400")
    if op_id != "GetOpenApi":
        codes.add("503")
    responses: dict[str, Any] = {status: {"description": "OK", **({"schema": schema} if schema else {})}}
    for code in sorted(codes):
        responses[code] = {**_problem(_STATUSES[code]), **({"headers": _RETRY_AFTER} if code == "503" else {})}
    if op_id == "GetHealth":
        responses["503"] = {"description": _STATUSES["503"], "schema": {"$ref": "#/definitions/Health"},
                            "headers": _RETRY_AFTER}
    return responses


def document(host: str = "localhost:7071", scheme: str = "https") -> dict[str, Any]:
    """The OpenAPI 2.0 document for the app served at `host`."""
    paths: dict[str, dict[str, Any]] = {}
    for path, method, op_id, summary, description, params, status, schema, example in OPERATIONS:
        operation = {"operationId": op_id, "summary": summary, "description": description,
                     "parameters": params, "responses": _responses(op_id, method, params, status, schema),
                     "produces": [_MEDIA.get(op_id, "application/json"), "application/problem+json"]}
        if op_id == "GetHealth":
            operation["produces"] = ["application/json"]
        if any(p["in"] == "body" for p in params):
            operation["consumes"] = _CONSUMES.get(op_id, ["application/json"])
        if example is not None:
            operation["x-ms-examples"] = {"example": {"body": example}}
        if op_id in _INTERNAL:
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
                "opportunities": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "status": {"type": "string"}, "priorityScore": {"type": "number"},
                    "outcome": {"type": "string", "enum": ["created", "updated", "duplicate", "echo", "recurrence"],
                                "description": "echo: seen within echoWindowHours after the agent acted (counted "
                                               "only); recurrence: back after it on a verified case (a person is "
                                               "asked)"},
                    "extensions": {"type": "array", "items": {"type": "string"},
                                   "description": "The finding's fields the API does not know, kept under "
                                                  "extensions: check them for typos."}}}},
                "echoes": {"type": "integer"}, "recurrences": {"type": "integer"},
                "correlationId": {"type": "string"}}},
            "Opportunity": {"type": "object", "properties": {
                "id": {"type": "string"}, "status": {"type": "string"}, "processArea": {"type": "string"},
                "deviationPattern": {"type": "string"}, "caseKey": {"type": "string"},
                "scores": {"type": "object"}, "rationale": {"type": "string"},
                "kpis": {"type": "array", "description": "The KPI movements the miner expects (kpiImpact metric).",
                         "items": {"$ref": "#/definitions/KpiExpectation"}},
                "signals": {"type": "array", "items": {"$ref": "#/definitions/Signal"},
                            "description": "Root-cause signals as reported; rootCause holds them as text too."},
                "extensions": {"type": "object", "description": "Fields the API does not know, as sent."},
                "reported": {"type": "object", "x-nullable": True,
                             "description": "processArea and deviationPattern as the miner named them, where an "
                                            "alias (catalog/aliases.json) changed them."},
                "echoes": {"type": "integer",
                           "description": "Findings on this case soon after the agent acted (the miner's stale "
                                          "view): counted, not new evidence."},
                "recurrences": {"type": "array", "items": {"type": "string", "format": "date-time"},
                                "description": "When the deviation came back on a verified case."},
                "effortHours": {"type": "number", "x-nullable": True,
                                "description": "Hours the work takes: the person's estimate, else the catalog's."},
                "effortSource": {"type": "string", "enum": ["person", "catalog", None], "x-nullable": True},
                "prerequisites": {"type": "array", "items": {"type": "string"},
                                  "description": "What the candidate action needs in place (catalog)."},
                "failureModes": {"type": "array", "items": {"type": "string"},
                                 "description": "How the candidate action is known to fail (catalog)."},
                "supplied": {"type": "object", "additionalProperties": {"type": "string"},
                             "description": "Identifying attributes a person supplied (review provide, enrichment), "
                                            "with their principal id: a plan using one needs another person's "
                                            "approval."}}},
            "KpiExpectation": {"type": "object", "properties": {
                "metric": {"type": "string", "description": "The outcome metric (POST /api/outcomes)."},
                "reported": {"type": "string", "description": "The metric as sent, where an alias changed it."},
                "estimate": {"type": "number", "minimum": 0}, "unit": {"type": "string", "x-nullable": True},
                "direction": {"type": "string", "enum": ["decrease", "increase"]},
                "change": {"type": "number", "description": "The signed expected movement, treated minus control "
                                                            "(-4 = four fewer), in the metric's unit."},
                "changeUnit": {"type": "string", "description": "The metric's unit, where change was converted "
                                                                "to it from unit (hours ↔ days)."},
                "daysSaved": {"type": "number", "description": "Days saved told from a days or hours estimate."}}},
            "Signal": _SIGNAL,
            "OpportunityPage": {"type": "object", "properties": {
                "items": {"type": "array", "items": {"$ref": "#/definitions/Opportunity"}},
                "continuationToken": {"type": "string", "x-nullable": True}}},
            "List": {"type": "object", "properties": {
                "items": {"type": "array", "items": {"type": "object"}},
                "continuationToken": {"type": "string", "x-nullable": True}}},
            "KpiImpact": _KPI,
            "CelonisEvent": {"type": "object", "required": ["subscriberId", "triggerId", "creationDate", "event"],
                             "properties": {
                "subscriberId": {"type": "string", "minLength": 1, "maxLength": 64},
                "triggerId": {"type": "string", "minLength": 1, "maxLength": 64},
                "creationDate": {"type": "string", "format": "date-time",
                                 "description": "ISO-8601, or epoch seconds or milliseconds."},
                "offset": {"type": "integer", "x-nullable": True},
                "event": {"type": "object", "required": ["id"], "properties": {
                    "id": {"type": "string", "minLength": 1, "maxLength": 100},
                    "identifier": {"type": "string", "x-nullable": True},
                    "fields": {"type": "array", "items": {"type": "object", "required": ["id"], "properties": {
                        "id": {"type": "string", "minLength": 1, "maxLength": 128},
                        "value": {"description": "As the field's type says (STRING, INTEGER, FLOAT, DATE, BOOLEAN)."},
                        "type": {"type": "string", "x-nullable": True},
                        "isIdentifier": {"type": "boolean", "x-nullable": True}}}}}}}},
            "ProcessRefresh": {"type": "object", "required": ["businessRuleStatistics"], "properties": {
                "businessRuleStatistics": {"type": "array", "minItems": 1, "items": {"type": "object",
                                                                                     "required": ["name"],
                                                                      "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 256, "description": "The case id."},
                    "valueIndex": {"type": "integer", "x-nullable": True},
                    "startDate": {"type": "string", "format": "date-time", "x-nullable": True},
                    "endDate": {"type": "string", "format": "date-time", "x-nullable": True},
                    "count": {"type": "integer", "minimum": 0, "x-nullable": True},
                    "value": {"type": "string", "x-nullable": True, "description": "The rule's metric, as text."},
                    "category": {"type": "integer", "x-nullable": True,
                                 "description": "0 OK (skipped), 1 Warning, 2 Error."}}}},
                "businessRuleSummaryStatistics": {"type": "object", "x-nullable": True}}},
            "Learning": {"type": "object", "required": ["items", "verdicts", "policyEvents"], "properties": {
                "generatedAt": {"type": "string", "format": "date-time"},
                "learnedAt": {"type": "string", "format": "date-time", "x-nullable": True,
                              "description": "When the sweep's learn step last ran."},
                "items": {"type": "array", "items": {"$ref": "#/definitions/LearningItem"}},
                "verdicts": {"type": "array", "description": "The primary-KPI verdict per action version and "
                                                             "pattern, and whether the action is frozen.",
                             "items": {"type": "object"}},
                "froze": {"type": "object", "description": "Versions the harm rule froze (action@vN), with the "
                                                           "figures and when a person lifted it."},
                "flagged": {"type": "object", "description": "Versions flagged null (no effect after "
                                                             "learning.nullAfterCases per cohort)."},
                "rescoring": {"type": "array", "items": {"type": "object"},
                              "description": "Rescoring of open opportunities still under way."},
                "policyEvents": {"type": "array", "items": {"type": "object"},
                                 "description": "Recent automatic changes, each naming its evidence."},
                "answers": {"type": "array", "items": {"type": "object"}, "x-nullable": True,
                            "description": "People's answers per action version and pattern."},
                "policy": {"type": "object", "description": "The policy's learning settings in force."},
                "method": {"type": "string"}}},
            "LearningItem": {"type": "object", "properties": {
                "processArea": {"type": "string"}, "deviationPattern": {"type": "string"},
                "actionId": {"type": "string"}, "actionVersion": {"type": "integer"}, "metric": {"type": "string"},
                "primary": {"type": "boolean", "description": "The KPI harm is judged on for this action."},
                "status": {"type": "string", "enum": ["ok", "not_enough_data"]},
                "n": {"type": "object", "description": "Cases with an outcome per cohort (treated, control)."},
                "expected": {"type": "object", "x-nullable": True,
                             "description": "Mean change the miners predicted on the cases the action ran on."},
                "measured": {"type": "object", "x-nullable": True,
                             "description": "difference, se, ci and basis: acted (cases the action ran on) or itt "
                                            "(every case drawn, intention to treat)."},
                "calibration": {"type": "object", "x-nullable": True,
                                "description": "ratio measured ÷ expected with its 95% interval, and the factor."},
                "verdict": {"type": "object", "x-nullable": True,
                            "description": "On the primary KPI: harmful, null, helpful, srm_mismatch or "
                                           "not_enough_data, with why."}}},
            "Health": {"type": "object", "required": ["status", "checks", "warnings"], "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
                "checks": {"type": "object"},
                "warnings": {"type": "array", "items": {"type": "string"}}}},
            "Problem": {"type": "object", "required": ["title", "status"], "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "instance": {"type": "string"}, "correlationId": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "object", "properties": {
                    "pointer": {"type": "string"}, "parameter": {"type": "string"}, "header": {"type": "string"},
                    "detail": {"type": "string"}}}}}},
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
