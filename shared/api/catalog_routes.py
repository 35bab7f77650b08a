"""Catalog and operations routes: action versions, and the incidents the pipeline could not settle."""
from typing import TYPE_CHECKING

import azure.functions as func

from .edge import lazy, services
from .http import (
    endpoint,
    json_object,
    json_response,
    principal,
    query_int,
    read_body,
    require_media_type,
    route_version,
)

if TYPE_CHECKING:
    from ..services import autonomy, catalog
else:
    autonomy, catalog = lazy("shared.services.autonomy"), lazy("shared.services.catalog")

bp = func.Blueprint()


@bp.route(route="actions", methods=["GET"])
@endpoint
def list_actions(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """The catalog: the latest version of each action, or every version with ?versions=all."""
    return json_response(catalog.list_actions(services(), req.params.get("versions") == "all"), 200, cid)


@bp.route(route="actions/{id}", methods=["GET"])
@endpoint
def get_action(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Every version of one action, oldest first."""
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
    svc = services()
    action = catalog.activate(svc, req.route_params.get("id", ""), route_version(req), principal(req, svc.settings))
    return json_response(catalog.view(action, action.version), 200, cid)


@bp.route(route="autonomy", methods=["GET"])
@endpoint
def get_autonomy(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """How far the agents act alone: the global mode, per-action modes, what is frozen and the tightened pairs."""
    svc = services()
    current = autonomy.current(svc, fresh=True)
    effective = {a: current.mode_for(a) for a in sorted(svc.catalog.actions)}
    return json_response({**current.to_dict(), "effective": effective}, 200, cid)


@bp.route(route="autonomy", methods=["POST"])
@endpoint
def set_autonomy(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Set modes, freeze or unfreeze, or relax pairs people's answers tightened (needs the policy's
    autonomyAdminRole); `reason` is required."""
    svc = services()
    require_media_type(req, ("application/json",))
    body = json_object(read_body(req, svc.settings.max_body_bytes))
    changed = autonomy.change(svc, body, principal(req, svc.settings))
    return json_response(changed.to_dict(), 200, cid)


@bp.route(route="incidents", methods=["GET"])
@endpoint
def list_incidents(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """What the pipeline could not settle by itself (poison messages, failed flows, breaches), newest first."""
    items = [{"id": i.id, "at": i.at.isoformat(), "kind": i.kind, "stage": i.stage, "detail": i.detail,
              "opportunityId": i.opportunityId, "correlationId": i.correlationId}
             for i in services().reference.incidents(query_int(req, "top", 50, 1, 500))]
    return json_response({"items": items, "continuationToken": None}, 200, cid)
