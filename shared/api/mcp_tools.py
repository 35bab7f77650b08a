"""MCP tools (Azure Functions MCP tool trigger): the backlog, one opportunity, answering a card, KPIs, freeze.

Each tool calls the same service as its HTTP route, with the same checks: approving needs the approval's
signed token and a principal holding its role; freezing needs the autonomy admin role. The principal is
the Easy Auth header of the MCP request (X-MS-CLIENT-PRINCIPAL, put there by App Service authentication in
front of the MCP endpoint), trusted under the same rule as the HTTP routes (shared/api/edge.py). A tool answers
JSON text; a refusal is {"error": <problem>}, the problem body the HTTP route would have answered.

No `from __future__ import annotations`: the Functions worker reads the triggers' annotations as types.
"""
import json
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import azure.functions as func

from ..domain.errors import FieldError, InvalidInput, MalformedBody, ProblemError
from .edge import easy_auth_principal, lazy, problem_body, refusal, services

if TYPE_CHECKING:
    from .. import ports
    from ..domain import approvals as approval_rules
    from ..domain.identity import Principal
    from ..ingest import generic
    from ..ports import Services
    from ..services import approvals, autonomy, backlog, measure
else:
    approvals, autonomy = lazy("shared.services.approvals"), lazy("shared.services.autonomy")
    backlog, measure, ports = lazy("shared.services.backlog"), lazy("shared.services.measure"), lazy("shared.ports")
    approval_rules, generic = lazy("shared.domain.approvals"), lazy("shared.ingest.generic")

bp = func.Blueprint()
log = logging.getLogger("closedloop.mcp")
# Where the Functions MCP extension serves the tools: the `instance` of a refusal, as a route's path is over HTTP.
INSTANCE = "/runtime/webhooks/mcp"
Tool = Callable[["Services", dict[str, Any], dict[str, Any], str], Any]


def _props(*props: tuple[str, str, str]) -> str:
    """The tool's inputs as the MCP extension reads them; a type ending in [] is an array of that type."""
    return json.dumps([{"propertyName": n, "propertyType": t.rstrip("[]"), "description": d,
                        "isArray": t.endswith("[]")} for n, t, d in props])


def _headers(context: dict[str, Any]) -> dict[str, str]:
    transport = context.get("transport") or {}
    headers = (transport.get("properties") or {}).get("headers") or context.get("headers") or {}
    return {str(k).lower(): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}


def principal_of(context: dict[str, Any], settings: Any) -> "Principal | None":
    """The MCP request's Easy Auth principal, under the edge's one rule for believing it (edge.easy_auth_principal)."""
    return easy_auth_principal(_headers(context).get("x-ms-client-principal"), settings)


def _string(args: dict[str, Any], name: str, limit: int = 200) -> str | None:
    """An optional text argument; "" counts as absent (models fill optional arguments with empty strings)."""
    value = args.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{name} is text of at most {limit} characters.",
                           [FieldError(f"/arguments/{name}", f"a string of at most {limit} characters")])
    return value


def _required(args: dict[str, Any], name: str, limit: int = 200) -> str:
    value = _string(args, name, limit)
    if value is None:
        raise InvalidInput(f"{name} is required.", [FieldError(f"/arguments/{name}", "required")])
    return value


def _refusal(exc: ProblemError, cid: str) -> str:
    """The problem the HTTP route would answer (edge.problem_body), as the tool's JSON result; headers the problem
    carries (Retry-After) ride along, an MCP result having none of its own."""
    headers = {"headers": exc.headers} if exc.headers else {}
    return json.dumps({"error": {**problem_body(exc, INSTANCE, cid), **headers}}, default=str)


def run(context: str | dict[str, Any], tool: Tool) -> str:
    """Parse the tool context, run the tool, answer JSON text (a problem object on refusal, never a raise)."""
    cid = str(uuid.uuid4())
    try:
        doc = json.loads(context, parse_constant=_not_json) if isinstance(context, str) else dict(context or {})
    except (ValueError, TypeError):
        return _refusal(MalformedBody("the tool context is not JSON (NaN and Infinity are not JSON numbers)"), cid)
    try:
        args = doc.get("arguments") or {}
        if not isinstance(args, dict):
            raise InvalidInput("arguments must be an object.", [FieldError("/arguments", "an object")])
        return json.dumps(tool(services(), args, doc, cid), default=str)
    except Exception as exc:
        return _refusal(refusal(exc, log, f"MCP {tool.__name__.lstrip('_')}", cid), cid)


def _not_json(word: str) -> Any:
    raise ValueError(f"{word} is not a JSON number")


def _backlog(svc: "Services", args: dict[str, Any], _ctx: dict[str, Any], _cid: str) -> Any:
    where = backlog.where(_string(args, "status"), _string(args, "processArea"), _string(args, "deviationPattern"),
                          at="/arguments/", state=_string(args, "state") or "open")
    top = args.get("top", 10)
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= 50:
        raise InvalidInput("top is 1 to 50.", [FieldError("/arguments/top", "an integer from 1 to 50")])
    return backlog.list_opportunities(svc, where, top, None)


def _opportunity(svc: "Services", args: dict[str, Any], _ctx: dict[str, Any], _cid: str) -> Any:
    return backlog.detail(svc, _required(args, "id", limit=64))


def _object(args: dict[str, Any], name: str) -> dict[str, Any] | None:
    """An object argument, or a JSON string of one (clients differ in how they send objects)."""
    value = args.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            value = None
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} is an object of contract fields.",
                           [FieldError(f"/arguments/{name}", "an object (or its JSON text)")])
    # What an HTTP body may not hold, an argument may not either: NaN passes every amount limit it is compared to.
    errors = generic.audit(value, ("arguments", name))
    if errors:
        raise InvalidInput(f"{name} holds values the app cannot keep; nothing was done.", errors)
    return value


def _decide(svc: "Services", args: dict[str, Any], ctx: dict[str, Any], cid: str) -> Any:
    """Any card's answer, through the same approvals.decide as POST /api/approvals/{id}."""
    decision = _required(args, "decision")
    if decision not in approval_rules.ALL_ANSWERS:
        allowed = ", ".join(approval_rules.ALL_ANSWERS)
        raise InvalidInput(f"decision is one of {allowed}.", [FieldError("/arguments/decision", allowed)])
    helpful = {"yes": True, "no": False, True: True, False: False}.get(args.get("helpful"))
    choice = approval_rules.Choice(_string(args, "actionId", limit=100), _object(args, "parameters"),
                                   _string(args, "owner"), _string(args, "reason", limit=500))
    decided = approvals.decide(svc, _required(args, "approvalId", limit=100), _required(args, "token", limit=1000),
                               decision, principal_of(ctx, svc.settings), _object(args, "data"),
                               _string(args, "comment", limit=1000), cid, helpful, choice)
    return decided.to_dict()


def _kpis(svc: "Services", args: dict[str, Any], _ctx: dict[str, Any], _cid: str) -> Any:
    where = ports.Filter(processArea=_string(args, "processArea"), deviationPattern=_string(args, "deviationPattern"))
    return measure.kpis(svc, where, _string(args, "actionId"), None, _string(args, "metric"), weekly=False)


def _freeze(svc: "Services", args: dict[str, Any], ctx: dict[str, Any], _cid: str) -> Any:
    actions = args.get("actions")
    if actions is not None and not (isinstance(actions, list) and all(isinstance(a, str) for a in actions)):
        raise InvalidInput("actions is a list of action ids.", [FieldError("/arguments/actions", "a list of strings")])
    change: dict[str, Any] = {"reason": _required(args, "reason", limit=500)}
    change.update({"freezeActions": actions} if actions else {"freeze": True})
    return autonomy.change(svc, change, principal_of(ctx, svc.settings)).to_dict()


@bp.mcp_tool_trigger(arg_name="context", tool_name="list_backlog",
                     description="The ranked backlog of process-mining opportunities, highest priority first, "
                                 "optionally filtered by status, process area or deviation pattern.",
                     tool_properties=_props(("status", "string", "Only this status, e.g. needs_review"),
                                            ("state", "string", "open (default), finished or all"),
                                            ("processArea", "string", "Only this process area"),
                                            ("deviationPattern", "string", "Only this deviation pattern"),
                                            ("top", "integer", "How many, 1 to 50 (default 10)")))
def mcp_list_backlog(context: str) -> str:
    return run(context, _backlog)


@bp.mcp_tool_trigger(arg_name="context", tool_name="get_opportunity",
                     description="One opportunity with its score, rationale, plan, executions (with evidence), "
                                 "approvals and audit trail.",
                     tool_properties=_props(("id", "string", "The 32-character opportunity id")))
def mcp_get_opportunity(context: str) -> str:
    return run(context, _opportunity)


@bp.mcp_tool_trigger(arg_name="context", tool_name="decide_approval",
                     description="Answer a card with its approval id and signed token: approve or reject a proposed "
                                 "action; on a review run a candidate action (actionId, parameters), provide data, "
                                 "hand over (owner) or dismiss (reason); on an escalation retry, undo, accept, hand "
                                 "over or close. The caller must hold the card's role.",
                     tool_properties=_props(("approvalId", "string", "The approval id"),
                                            ("token", "string", "The signed token of the request"),
                                            ("decision", "string", ("approve, reject, provide, run, handover, "
                                                                   "dismiss, retry, undo, accept or close")),
                                            ("actionId", "string", "run: the candidate action chosen"),
                                            ("parameters", "object", "run: contract fields to change"),
                                            ("data", "object", "provide: the contract fields supplied"),
                                            ("owner", "string", "handover: who takes the case"),
                                            ("reason", "string", "dismiss, accept or close: why"),
                                            ("helpful", "string", "Was the card helpful? yes or no (optional)"),
                                            ("comment", "string", "Why (optional)")))
def mcp_decide_approval(context: str) -> str:
    return run(context, _decide)


@bp.mcp_tool_trigger(arg_name="context", tool_name="read_kpis",
                     description="Measured impact per action version: treated vs control difference with its "
                                 "95% confidence interval, p-value and ROI, or 'not enough data'.",
                     tool_properties=_props(("processArea", "string", "Only this process area"),
                                            ("deviationPattern", "string", "Only this pattern"),
                                            ("actionId", "string", "Only this action"),
                                            ("metric", "string", "Only this KPI, e.g. cycle_time_days")))
def mcp_read_kpis(context: str) -> str:
    return run(context, _kpis)


@bp.mcp_tool_trigger(arg_name="context", tool_name="freeze_autonomy",
                     description="Stop the agents from acting: freeze everything, or only the listed actions. "
                                 "Needs the autonomy admin role and a reason.",
                     tool_properties=_props(("reason", "string", "Why the agents must stop"),
                                            ("actions", "string[]", "Optional list of action ids to freeze")))
def mcp_freeze_autonomy(context: str) -> str:
    return run(context, _freeze)
