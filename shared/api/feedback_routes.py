"""Feedback routes: a card's "was this helpful?" answered through its signed links (services/feedback.py).

Both routes are anonymous at the Functions level on purpose, as the approval routes are: the card's signed,
expiring token is the capability (a card cannot carry a function key without handing every function-level
route to whoever sees it). The answer names the signed-in person when there is one (Easy Auth), else the
token's holder. A GET only shows a page: mail and chat link scanners open links by themselves.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import azure.functions as func

from ..domain.errors import FieldError, InvalidInput
from .edge import lazy, services
from .http import (
    endpoint,
    form_or_json,
    json_response,
    principal,
    read_body,
    require_same_origin_form,
)

if TYPE_CHECKING:
    from ..domain import approvals as approval_rules
    from ..services import approvals, feedback
    from . import confirm_page
else:
    confirm_page = lazy("shared.api.confirm_page")
    approvals, feedback = lazy("shared.services.approvals"), lazy("shared.services.feedback")
    approval_rules = lazy("shared.domain.approvals")

bp = func.Blueprint()
_ANSWERS = {"yes": True, "no": False, True: True, False: False}


def _answer(doc: dict[str, Any]) -> tuple[str, bool, str | None]:
    """token, helpful and comment from the body: 422 naming each field that is missing or wrong."""
    said = doc.get("helpful")
    helpful = _ANSWERS.get(said) if isinstance(said, (str, bool)) else None  # a list or object is no answer
    token, comment = doc.get("token"), doc.get("comment")
    errors = [*([] if isinstance(token, str) and token else [FieldError("/token", "the signed token from the card")]),
              *([] if helpful is not None else [FieldError("/helpful", "yes or no")]),
              *([] if comment is None or (isinstance(comment, str) and len(comment) <= 1000)
                else [FieldError("/comment", "a string of at most 1000 characters")])]
    if errors:
        raise InvalidInput("The answer is incomplete; nothing was recorded.", errors)
    return str(token), bool(helpful), comment or None


@bp.route(route="approvals/{id}/feedback", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def post_feedback(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Record "was this helpful?" for a card: 401 forged token, 409 already answered, 410 expired, 422 bad field."""
    svc = services()
    require_same_origin_form(req, svc.settings)  # a cross-site form: 403, nothing read
    body = read_body(req, svc.settings.max_body_bytes)
    doc, form = form_or_json(req, body)
    token, helpful, comment = _answer(doc)
    kept = feedback.answer(svc, req.route_params.get("id", ""), token, helpful, principal(req, svc.settings),
                           comment)
    if form:
        return func.HttpResponse(confirm_page.page("Thank you", "<p>Your answer was recorded.</p>"), status_code=200,
                                 mimetype="text/html", headers={"x-correlation-id": cid, **confirm_page.HEADERS})
    return json_response({"approvalId": kept.id, "kind": kept.kind, "helpful": kept.helpful}, 200, cid)


@bp.route(route="approvals/{id}/feedback", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def feedback_page(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """A card link's page asking to confirm the answer: the token is checked (401, 410), nothing is recorded."""
    svc = services()
    token, helpful = req.params.get("token") or "", req.params.get("helpful")
    if not token or helpful not in ("yes", "no"):
        raise InvalidInput("A feedback link carries its token and helpful=yes or no.",
                           [*([] if token else [FieldError("?token", "the signed token from the card")]),
                            *([] if helpful in ("yes", "no") else [FieldError("?helpful", "yes or no")])])
    approval = approvals.find(svc, req.route_params.get("id", ""))
    approval_rules.check_view(approvals.signing_key(svc), token, approval, svc.clock.now())
    said = "helpful" if helpful == "yes" else "not helpful"
    # The form posts to approvals/{id}/feedback: this page's own URL without its query.
    page = (f"<p>Was this {html.escape(approval.kind)} card for <b>{html.escape(approval.actionId or '-')}</b> "
            f"helpful? You chose: <b>{said}</b>.</p>"
            f'<form method="post" action="feedback">'
            f'<input type="hidden" name="token" value="{html.escape(token)}">'
            f'<input type="hidden" name="helpful" value="{html.escape(helpful)}">'
            f'<label>Comment (optional) <input name="comment" maxlength="1000"></label><br>'
            f'<button type="submit">Send: {said}</button></form>')
    return func.HttpResponse(confirm_page.page("Was this helpful?", page), status_code=200, mimetype="text/html",
                             headers={"x-correlation-id": cid, **confirm_page.HEADERS})
