"""Policy and prompt versions: listed by anyone with the key, added by a catalog approver, activated by a
second one (the author never activates their own)."""
from typing import TYPE_CHECKING

import azure.functions as func

from .edge import lazy, services
from .http import endpoint, json_response, principal, read_body, require_media_type, route_version

if TYPE_CHECKING:
    from ..services import rule_versions
else:
    rule_versions = lazy("shared.services.rule_versions")

bp = func.Blueprint()


@bp.route(route="policies", methods=["GET"])
@endpoint
def list_policies(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Every policy version (author, reason, weights, thresholds, state), newest first, and which is in use."""
    return json_response({"items": rule_versions.policy_views(services()), "continuationToken": None}, 200, cid)


@bp.route(route="policies", methods=["PUT"])
@endpoint
def put_policy(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Add the next policy version (catalog approver role); it waits for a second person's activation."""
    svc = services()
    require_media_type(req, ("application/json",))
    who = principal(req, svc.settings)
    view = rule_versions.add_policy(svc, read_body(req, svc.settings.max_body_bytes), who)
    return json_response(view, 201, cid, {"Location": "/api/policies"})


@bp.route(route="policies/{version}/activate", methods=["POST"])
@endpoint
def activate_policy(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """A second catalog approver lets a pending policy version go live."""
    svc = services()
    return json_response(rule_versions.activate_policy(svc, route_version(req), principal(req, svc.settings)), 200, cid)


@bp.route(route="prompts", methods=["GET"])
@endpoint
def list_prompts(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Prompt versions (deployed files and API-added ones), their state, and which one plans now."""
    return json_response({"items": rule_versions.prompt_views(services()), "continuationToken": None}, 200, cid)


@bp.route(route="prompts/{name}", methods=["PUT"])
@endpoint
def put_prompt(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Add the next version of a prompt (catalog approver role); it waits for a second person's activation."""
    svc = services()
    require_media_type(req, ("application/json",))
    name = req.route_params.get("name", "")
    body = read_body(req, svc.settings.max_body_bytes)
    view = rule_versions.add_prompt(svc, name, body, principal(req, svc.settings))
    return json_response(view, 201, cid, {"Location": f"/api/prompts/{name}"})


@bp.route(route="prompts/{name}/versions/{version}/activate", methods=["POST"])
@endpoint
def activate_prompt(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """A second catalog approver lets a pending prompt version plan."""
    svc = services()
    view = rule_versions.activate_prompt(svc, req.route_params.get("name", ""), route_version(req),
                                         principal(req, svc.settings))
    return json_response(view, 200, cid)
