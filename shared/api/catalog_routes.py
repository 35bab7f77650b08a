"""Catalog and operations routes: action versions, and the incidents the pipeline could not settle."""
import azure.functions as func

from ..domain.errors import FieldError, InvalidInput
from .http import endpoint, json_response, principal, read_body, require_media_type

bp = func.Blueprint()


@bp.route(route="actions", methods=["GET"])
@endpoint
def list_actions(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """The catalog: the latest version of each action, or every version with ?versions=all."""
    from ..runtime import services
    from ..services import catalog

    return json_response(catalog.list_actions(services(), req.params.get("versions") == "all"), 200, cid)


@bp.route(route="actions/{id}", methods=["GET"])
@endpoint
def get_action(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Every version of one action, oldest first."""
    from ..runtime import services
    from ..services import catalog

    svc = services()
    found = catalog.versions_of(svc, req.route_params.get("id", ""))
    pending = svc.catalog.pending
    return json_response({"items": [catalog.view(a, found[-1].version, pending.get((a.id, a.version)))
                                    for a in found], "continuationToken": None}, 200, cid)


@bp.route(route="actions/{id}", methods=["PUT"])
@endpoint
def put_action(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Add the next version of an action (needs the catalog approver role; the author is the signed-in
    principal); earlier versions are never edited."""
    from ..runtime import services
    from ..services import catalog

    svc = services()
    require_media_type(req, ("application/json",))
    who = principal(req, svc.settings)
    action = catalog.add_version(svc, req.route_params.get("id", ""), read_body(req, svc.settings.max_body_bytes),
                                 who)
    return json_response(catalog.view(action, action.version, svc.catalog.pending.get((action.id, action.version))),
                         201, cid, {"Location": f"/api/actions/{action.id}"})


@bp.route(route="actions/{id}/versions/{version}/activate", methods=["POST"])
@endpoint
def activate_action(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """A second person lets a pending version go live (anything over the API that is not a pure tightening)."""
    from ..runtime import services
    from ..services import catalog

    svc = services()
    raw = req.route_params.get("version", "")
    if not raw.isdecimal() or len(raw) > 9:
        raise InvalidInput("The version is a whole number.", [FieldError("/version", "an integer")])
    action = catalog.activate(svc, req.route_params.get("id", ""), int(raw), principal(req, svc.settings))
    return json_response(catalog.view(action, action.version), 200, cid)


@bp.route(route="autonomy", methods=["GET"])
@endpoint
def get_autonomy(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """How far the agents act alone: the global mode, per-action modes, and what is frozen."""
    from ..runtime import services
    from ..services import autonomy

    svc = services()
    current = autonomy.current(svc, fresh=True)
    effective = {a: current.mode_for(a) for a in sorted(svc.catalog.actions)}
    return json_response({**current.to_dict(), "effective": effective}, 200, cid)


@bp.route(route="autonomy", methods=["POST"])
@endpoint
def set_autonomy(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Set modes, freeze or unfreeze (needs the policy's autonomyAdminRole); `reason` is required."""
    from ..ingest.generic import decode_json
    from ..runtime import services
    from ..services import autonomy

    svc = services()
    require_media_type(req, ("application/json",))
    body = decode_json(read_body(req, svc.settings.max_body_bytes))
    if not isinstance(body, dict):
        raise InvalidInput("Send a JSON object.", [FieldError("", "expected an object")])
    changed = autonomy.change(svc, body, principal(req, svc.settings))
    return json_response(changed.to_dict(), 200, cid)


@bp.route(route="incidents", methods=["GET"])
@endpoint
def list_incidents(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """What the pipeline could not settle by itself (poison messages, failed flows, breaches), newest first."""
    from ..runtime import services

    raw = req.params.get("top", "50")
    if not raw.isdecimal() or len(raw) > 3 or not 1 <= int(raw) <= 500:
        raise InvalidInput("`top` must be a whole number.", [FieldError("?top", "an integer from 1 to 500")])
    items = [{"id": i.id, "at": i.at.isoformat(), "kind": i.kind, "stage": i.stage, "detail": i.detail,
              "opportunityId": i.opportunityId, "correlationId": i.correlationId}
             for i in services().reference.incidents(int(raw))]
    return json_response({"items": items, "continuationToken": None}, 200, cid)
