"""The confirmation page a card link opens: one form per decision, its fields read from the approval's kind and
context (a review's candidates, an escalation's options), everything escaped. A GET shows it; only the form's
POST to approvals/{id}, by a signed-in person, decides."""
from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from ..domain.approvals import ANSWERS, ENRICH, REVIEW, Approval
from ..domain.catalog import Catalog
from ..domain.contracts import properties
from ..domain.review_cards import shown

_REASON = ("dismiss", "close", "accept")  # a reason is kept with the case: required


def _input(name: str, label: str, value: Any = None, required: bool = False, limit: int = 1000) -> str:
    shown = "" if value is None else f' value="{escape(str(value))}"'
    need = " required" if required else ""
    return (f'<label>{escape(label)} <input name="{escape(name)}" maxlength="{limit}"{shown}{need}></label><br>')


def _fields_of(context: dict[str, Any]) -> list[str]:
    """Every contract field of the candidates a person may supply: not one that identifies the record and the
    finding gives (it stays as the finding has it)."""
    names: dict[str, None] = {}
    fixed = {n for c in context.get("candidates") or [] for n in c.get("locked") or ()}
    for c in context.get("candidates") or []:
        names.update(dict.fromkeys(n for n in c.get("fields") or [] if n not in fixed))
    return list(names)


def _candidates(context: dict[str, Any]) -> str:
    rows = []
    for c in context.get("candidates") or []:
        effort = c.get("effortHours")
        notes = "; ".join([*(f"needs {p}" for p in c.get("prerequisites") or []),
                           *(f"may fail: {f}" for f in c.get("failureModes") or [])])
        role = c.get("approvalRole") or "none"
        rows.append(f"<li><b>{escape(str(c.get('id')))}</b> v{escape(str(c.get('version')))}: "
                    f"{escape(str(c.get('riskTier')))} risk, approval role {escape(str(role))}"
                    f", effort {escape(f'{effort:g} h' if isinstance(effort, (int, float)) else 'not estimated')}"
                    f"{escape('; ' + notes) if notes else ''}</li>")
    return f"<ul>{''.join(rows)}</ul>" if rows else ""


def _run(context: dict[str, Any]) -> str:
    """The candidate to run, and per candidate its fields (`parameters.<actionId>.<field>`, prefilled, masked);
    the fields that identify the record are shown, not editable."""
    options = "".join(f'<option value="{escape(str(c.get("id")))}">{escape(str(c.get("id")))} '
                      f'v{escape(str(c.get("version")))}</option>' for c in context.get("candidates") or [])
    groups = []
    for c in context.get("candidates") or []:
        values, fixed = c.get("parameters") or {}, set(c.get("locked") or ())
        facts = "".join(f"<li>{escape(str(n))}: <b>{escape(shown(values.get(n)))}</b></li>"
                        for n in c.get("fields") or [] if n in fixed)
        record = (f"<p>The record it changes (as the finding gives it; cannot be changed here):</p><ul>{facts}</ul>"
                  if facts else "")
        boxes = "".join(_input(f"parameters.{c.get('id')}.{n}", str(n),
                               shown(values[n]) if values.get(n) is not None else None)
                        for n in c.get("fields") or [] if n not in fixed)
        groups.append(f"<fieldset><legend>Parameters for {escape(str(c.get('id')))}</legend>{record}{boxes}"
                      f"</fieldset>")
    return f'<label>Action <select name="actionId" required>{options}</select></label><br>{"".join(groups)}'


def _fields(catalog: Catalog, approval: Approval, decision: str) -> str:
    """The inputs `decision` takes on this kind of card."""
    context = approval.context or {}
    if approval.kind == REVIEW and decision == "run":
        return _run(context)
    if decision == "provide":
        if approval.kind == ENRICH and approval.actionId and approval.actionVersion is not None:
            action = catalog.versions.get((approval.actionId, approval.actionVersion))
            names: list[str] = list(properties(action)) if action else []
        else:
            names = list(_fields_of(context))
        return "".join(_input(f"data.{n}", n) for n in names)
    if decision == "handover":
        return _input("owner", "Hand over to (owner)", required=True, limit=200)
    if decision in _REASON:
        return _input("reason", "Reason", required=True, limit=500)
    return ""


def _others(approval: Approval, decision: str, token: str) -> str:
    """The other answers this card takes, the recommended one first (an escalation's context names it)."""
    context = approval.context or {}
    allowed = ANSWERS.get(approval.kind, ())
    offered = [d for d in context.get("options") or allowed if d in allowed]
    recommended = context.get("recommended")
    ordered = sorted(offered, key=lambda d: d != recommended)
    signed = quote(token, safe="")
    items = [f'<li><a href="?decision={quote(d)}&amp;token={escape(signed)}">{escape(d)}</a>'
             f'{" (recommended)" if d == recommended else ""}</li>' for d in ordered if d != decision]
    note = f"<p>Recommended: <b>{escape(str(recommended))}</b></p>" if recommended in offered else ""
    return f"{note}<p>Or answer instead:</p><ul>{''.join(items)}</ul>" if items else note


def render(catalog: Catalog, approval: Approval, decision: str, token: str) -> str:
    """The page's body: what is asked, the decision's inputs, a comment, "was this helpful?", and the other answers."""
    context = approval.context or {}
    what = escape(approval.actionId or "") if approval.kind not in (REVIEW,) else "this case"
    reason = (f"<p>Why a person decides: {escape(str(context.get('reason')))}</p>"
              if approval.kind == REVIEW and context.get("reason") else "")
    listing = _candidates(context) if approval.kind == REVIEW else ""
    comment = _input("comment", "Comment (optional)")
    helpful = ('<fieldset><legend>Was this helpful?</legend>'
               '<label><input type="radio" name="helpful" value="yes"> Yes</label> '
               '<label><input type="radio" name="helpful" value="no"> No</label></fieldset>')
    # The form posts to the answer route, approvals/{id}: "../<id>" from approvals/{id}/confirm.
    return (f"<p>{escape(decision.capitalize())} <b>{what}</b> for opportunity "
            f"{escape(approval.opportunityId)}?</p>{reason}{listing}"
            f'<form method="post" action="../{escape(approval.id)}">'
            f'<input type="hidden" name="token" value="{escape(token)}">'
            f'<input type="hidden" name="decision" value="{escape(decision)}">'
            f"{_fields(catalog, approval, decision)}{comment}{helpful}"
            f'<button type="submit">Confirm: {escape(decision)}</button></form>'
            f"{_others(approval, decision, token)}")


# The token is in these pages' URLs: no referrer carries it off the site, no cache keeps it, no frame hosts the
# button. "same-origin", not "no-referrer": under no-referrer a browser without Fetch Metadata (Safari before 16.4,
# some in-app webviews) posts the page's own form with `Origin: null` and no Sec-Fetch-Site, which the same-origin
# check (http.require_same_origin_form) must refuse; same-origin keeps the real Origin on the app's own posts.
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin",
           "Content-Security-Policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'"}


def page(title: str, body: str) -> str:
    """A whole HTML page around `body` (already escaped), for the confirmation and feedback routes."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
            f"<body><h1>{escape(title)}</h1>{body}</body></html>")
