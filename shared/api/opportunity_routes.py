"""Backlog routes: the ranked list, one opportunity, curation, and the grouped weekly view."""
from typing import Any, Optional

import azure.functions as func

from ..domain.errors import FieldError, InvalidInput
from .http import endpoint, json_response, principal, read_body, require_media_type

bp = func.Blueprint()


def _filter(req: func.HttpRequest) -> Any:
    from ..domain.status import Status
    from ..ports import Filter

    status = req.params.get("status")
    if status is not None and status not in Status.__members__:
        raise InvalidInput("Unknown status filter.",
                           [FieldError("?status", f"one of {', '.join(Status.__members__)}")])
    return Filter(status=status, processArea=req.params.get("processArea") or None,
                  deviationPattern=req.params.get("deviationPattern") or None)


def _top(req: func.HttpRequest, default: int, maximum: int) -> int:
    raw = req.params.get("top")
    if raw is None:
        return default
    if not raw.isdecimal() or not 1 <= int(raw) <= maximum:
        raise InvalidInput("`top` must be a whole number.", [FieldError("?top", f"an integer from 1 to {maximum}")])
    return int(raw)


@bp.route(route="opportunities", methods=["GET"])
@endpoint
def list_opportunities(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """The ranked backlog, highest priority first; filters status, processArea, deviationPattern."""
    from ..runtime import services
    from ..services import backlog

    page = backlog.list_opportunities(services(), _filter(req), _top(req, 50, backlog.MAX_TOP),
                                      req.params.get("continuationToken") or None)
    return json_response(page, 200, cid)


@bp.route(route="opportunities/{id}", methods=["GET"])
@endpoint
def get_opportunity(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """One opportunity with its scores, rationale, plan, status history, executions and audit trail."""
    from ..runtime import services
    from ..services import backlog
    from ..services.views import opportunity_view

    svc = services()
    opp = backlog.get(svc, req.route_params.get("id", ""))
    view = opportunity_view(opp, executions=svc.store.executions(opp.id), audit=svc.store.audit(opp.id),
                            approvals=svc.store.approvals(opp.id))
    return json_response(view, 200, cid, {"ETag": opp.etag or ""})


_PATCHABLE = {"owner": 200, "notes": 4000, "dismissReason": 500}


def _changes(body: bytes) -> dict[str, Any]:
    from ..ingest.generic import decode_json

    data = decode_json(body)
    if not isinstance(data, dict):
        raise InvalidInput("Send a JSON object.", [FieldError("", "expected an object")])
    errors, changes = [], {}
    for key, value in data.items():
        if key in _PATCHABLE:
            if value is not None and (not isinstance(value, str) or len(value) > _PATCHABLE[key]):
                errors.append(FieldError(f"/{key}", f"a string of at most {_PATCHABLE[key]} characters, or null"))
            else:
                changes[key] = value.strip() if isinstance(value, str) else None
        elif key == "dismiss":
            if not isinstance(value, bool):
                errors.append(FieldError("/dismiss", "true or false"))
            else:
                changes[key] = value
        else:
            errors.append(FieldError(f"/{key}", "not a field you can change (owner, notes, dismiss, dismissReason)"))
    if errors:
        raise InvalidInput("The change is invalid; nothing was changed.", errors)
    if not changes:
        raise InvalidInput("Nothing to change.", [FieldError("", "set owner, notes or dismiss")])
    return changes


@bp.route(route="opportunities/{id}", methods=["PATCH"])
@endpoint
def patch_opportunity(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Set owner or notes (a signed-in person), or dismiss an opportunity that has not been acted on (the
    policy's dismissRole); recorded in the audit trail as the verified principal's change."""
    from ..runtime import services
    from ..services import backlog
    from ..services.views import opportunity_view

    svc = services()
    require_media_type(req, ("application/json", "application/merge-patch+json"))
    changes = _changes(read_body(req, svc.settings.max_body_bytes))
    if_match: Optional[str] = req.headers.get("if-match")
    opp = backlog.patch(svc, req.route_params.get("id", ""), changes, principal(req, svc.settings), cid, if_match)
    return json_response(opportunity_view(opp), 200, cid, {"ETag": opp.etag or ""})


@bp.route(route="backlog", methods=["GET"])
@endpoint
def get_backlog(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Opportunities grouped by processArea + deviationPattern, for the weekly commit to the top items."""
    from ..runtime import services
    from ..services import backlog

    return json_response(backlog.backlog(services(), _filter(req), _top(req, 100, 1000)), 200, cid)


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def health(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Liveness with dependency checks: 200 when the store answers, 503 when it does not."""
    from ..runtime import services

    from ..services.sweep import heartbeat

    checks: dict[str, Any] = {}
    svc = services()
    try:
        svc.store.ping()
        checks["store"] = "ok"
    except Exception as exc:  # any failure here is the answer, not an error of this route
        checks["store"] = f"failed: {type(exc).__name__}"
        return json_response({"status": "down", "checks": checks}, 503, cid)
    # A stopped timer does not make the app unable to serve: 200, but the status says so.
    checks["sweep"] = heartbeat(svc)
    status = "ok" if checks["sweep"]["ok"] else "degraded"
    return json_response({"status": status, "checks": checks}, 200, cid)
