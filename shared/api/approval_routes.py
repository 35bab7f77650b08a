"""Approval routes: a person's (or an approval flow's) answer to an approve or enrich request.

The answer (POST) and the card link's confirmation page (GET .../confirm) are anonymous at the Functions
level on purpose: the signed, expiring token is the capability (a card cannot carry a function key
without handing every function-level route to whoever sees it), and the deciding identity comes from
Easy Auth or the approval flow's signed payload. The JSON view needs the function key and, since the
local host enforces no keys, the approval's token or a principal holding its role as well.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import azure.functions as func

from ..domain.errors import FieldError, InvalidInput
from .edge import lazy, services
from .http import (
    FORM,
    endpoint,
    form_or_json,
    json_response,
    media_type,
    principal,
    read_body,
    require_same_origin_form,
)

if TYPE_CHECKING:
    import pydantic

    from ..domain import approvals as approval_rules
    from ..domain import flow_contracts, identity
    from ..domain.identity import Principal
    from ..services import approvals
    from . import confirm_page
else:
    approvals, approval_rules = lazy("shared.services.approvals"), lazy("shared.domain.approvals")
    flow_contracts = lazy("shared.domain.flow_contracts")
    identity, pydantic = lazy("shared.domain.identity"), lazy("pydantic")
    confirm_page = lazy("shared.api.confirm_page")

bp = func.Blueprint()


def _principal(req: func.HttpRequest, settings: Any, body: bytes, doc: dict[str, Any]) -> Principal | None:
    """The approval flow's signed responder, else the Easy Auth user (the edge's one rule for believing it)."""
    signature = req.headers.get("x-closedloop-signature")
    if signature is not None:
        return identity.from_flow(settings.approval_flow_key, body, signature, doc.get("approver"))
    return principal(req, settings)


def _parse(req: func.HttpRequest, body: bytes) -> dict[str, Any]:
    """JSON from a flow or a client, or a form post from the confirmation page (fields `data.<name>`,
    `parameters.<action>.<name>`), folded alike."""
    return _nested(form_or_json(req, body)[0])


def _nested(doc: dict[str, Any]) -> dict[str, Any]:
    """An Action.Submit card returns its inputs flat (`parameters.<field>`, `data.<field>`) and the approval flow
    posts them as they came: folded into `parameters` and `data`, unless the body already has those objects. An
    input left empty comes back as "": absent, as on a form post."""
    out = {k: v for k, v in doc.items() if v != ""}
    for prefix in ("data", "parameters"):
        flat = {k[len(prefix) + 1:]: out.pop(k) for k in list(out) if k.startswith(prefix + ".")}
        if flat and out.get(prefix) is None:
            out[prefix] = flat
    return out


_HINTS = {"token": "the signed token from the card or link",
          "decision": "approve, reject, provide, run, handover, dismiss, retry, undo, accept or close",
          "data": "an object of contract fields", "comment": "a string of at most 1000 characters",
          "actionId": "a catalog action id of at most 100 characters", "parameters": "an object of contract fields",
          "owner": "a string of at most 200 characters", "reason": "a string of at most 500 characters"}


def _fields(doc: dict[str, Any]) -> flow_contracts.ApprovalAnswer:
    """The answer checked against ApprovalAnswer, the model infra/flows/approval-answer.schema.json comes from."""
    try:
        answer = flow_contracts.ApprovalAnswer.model_validate(doc)
    except pydantic.ValidationError as exc:
        errors = []
        for e in exc.errors():
            field = str(e["loc"][0]) if e["loc"] else ""
            errors.append(FieldError("/" + "/".join(map(str, e["loc"])), _HINTS.get(field, e["msg"])))
        raise InvalidInput("The decision is incomplete; nothing was recorded.", errors) from None
    return answer


@bp.route(route="approvals/{id}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def decide_approval(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Approve, reject or supply data: 401 forged token or no principal, 403 wrong role, 409 used, 410 expired."""
    svc = services()
    require_same_origin_form(req, svc.settings)  # a cross-site form: 403, nothing read
    body = read_body(req, svc.settings.max_body_bytes)
    doc = _parse(req, body)
    answer = _fields(doc)
    principal = _principal(req, svc.settings, body, doc)
    helpful = {"yes": True, "no": False, True: True, False: False}.get(doc.get("helpful"))
    choice = approval_rules.Choice(answer.actionId, answer.parameters, answer.owner, answer.reason)
    decided = approvals.decide(svc, req.route_params.get("id", ""), answer.token, answer.decision, principal,
                               answer.data, answer.comment, cid, helpful, choice)
    if approvals_form(req):
        page = (f"<p>Recorded: <b>{html.escape(decided.decision or '')}</b> by "
                f"{html.escape(decided.decidedBy or '')}.</p>")
        return func.HttpResponse(confirm_page.page("Decision recorded", page), status_code=200, mimetype="text/html",
                                 headers={"x-correlation-id": cid})
    return json_response(decided.to_dict(), 200, cid)


def approvals_form(req: func.HttpRequest) -> bool:
    return media_type(req) == FORM


@bp.route(route="approvals/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def show_approval(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """The approval as JSON, for its token's holder (?token=) or a principal with its role: 401, 403, 404, 410."""
    svc = services()
    approval = approvals.view(svc, req.route_params.get("id", ""), req.params.get("token") or None,
                              principal(req, svc.settings))
    return json_response(approval.to_dict(), 200, cid, {"Cache-Control": "no-store"})


@bp.route(route="approvals/{id}/confirm", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def confirm_approval(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """A card link's page asking to confirm; the token is checked (401, 409 used, 410 expired), nothing decided.

    A GET never decides: mail and chat link scanners open links by themselves. Only the form's POST, with a
    signed-in approver, does."""
    svc = services()
    token, decision = req.params.get("token") or "", req.params.get("decision") or ""
    if not token or not decision:
        raise InvalidInput("A card link carries its token and a decision.",
                           [*([] if token else [FieldError("?token", "the signed token from the card")]),
                            *([] if decision else [FieldError("?decision", "the decision the link is for")])])
    approval = approvals.find(svc, req.route_params.get("id", ""))
    approval_rules.check(approvals.signing_key(svc), token, approval, svc.clock.now())
    allowed = approval_rules.ANSWERS.get(approval.kind, ())
    if decision not in allowed:
        raise InvalidInput(f"A {approval.kind} card takes {', '.join(allowed)}.",
                           [FieldError("?decision", " or ".join(allowed))])
    page = confirm_page.render(svc.catalog, approval, decision, token)
    return func.HttpResponse(confirm_page.page("Confirm your decision", page), status_code=200, mimetype="text/html",
                             headers={"x-correlation-id": cid, **confirm_page.HEADERS})
