"""The review card (Adaptive Card 1.5): a case the planner would not decide alone, and what a reviewer can do.

Built from the review record's context (shared/domain/review.py `context`): the candidate actions with their
risk, approval role, effort, prerequisites and failure modes, their contract fields prefilled from the finding
(masked), and why the planner stopped. The submit form returns every input flat to the approval flow
(`actionId`, `parameters.<actionId>.<field>` per candidate, `owner`, `reason`, `helpful`); the fields that
identify the record are facts, not inputs (Input.Text cannot be read-only). The link form opens the
confirmation page.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .cards import buttons, card, clip, evidence, factset, helpful_input, md, size_ok, textblock

CHOICES = (("run", "Run the chosen action", "positive"), ("provide", "Send the data", "default"),
           ("handover", "Hand over", "default"), ("dismiss", "Dismiss", "destructive"))
MAX_INPUTS = 40  # contract fields editable on the card; the confirmation page shows every field of the choice
_VALUE = 200


def offered(context: Mapping[str, Any]) -> tuple[str, ...]:
    """The decisions a review offers: running or supplying data takes a candidate action."""
    return tuple(d for d, _, _ in CHOICES if context.get("candidates") or d not in ("run", "provide"))


def _notes(items: Sequence[str]) -> str:
    return "; ".join(str(i) for i in items) if items else "none recorded"


def _about(c: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One candidate: its name, and what a reviewer weighs (risk, who approves, effort, what it needs and breaks)."""
    effort = c.get("effortHours")
    facts = {"Risk tier": c.get("riskTier"), "Approval role": c.get("approvalRole") or "none",
             "Effort (hours)": f"{effort:g}" if isinstance(effort, (int, float)) else "not estimated",
             "Prerequisites": _notes(c.get("prerequisites") or []),
             "Failure modes": _notes(c.get("failureModes") or []),
             "Contract fields": ", ".join(c.get("fields") or []) or "none"}
    return [textblock(f"**{md(c.get('id'))}** v{md(c.get('version'))}: {md(c.get('name'))}", spacing="Medium"),
            factset(facts)]


def _hand_inputs() -> list[dict[str, Any]]:
    return [{"type": "Input.Text", "id": "owner", "label": "Hand over to (owner)", "maxLength": 200},
            {"type": "Input.Text", "id": "reason", "label": "Reason (to dismiss)", "maxLength": 500}]


def shown(value: Any) -> str:
    """A prefilled value as a form shows it (a boolean as the contract's JSON spells it)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _inputs(candidates: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The chosen action, then per candidate its contract fields (`parameters.<actionId>.<field>`, prefilled;
    those that identify the record as facts), an owner to hand over to and a reason to dismiss."""
    choose = {"type": "Input.ChoiceSet", "id": "actionId", "label": "Action to run", "style": "compact",
              "isMultiSelect": False, "value": str(candidates[0]["id"]) if candidates else "",
              "choices": [{"title": clip(f"{c['id']} v{c['version']} ({c.get('riskTier')} risk)", 120),
                           "value": str(c["id"])} for c in candidates]}
    inputs: list[dict[str, Any]] = [choose]
    share = max(3, MAX_INPUTS // max(len(candidates), 1))  # every candidate gets some inputs
    for c in candidates:
        values, fixed = c.get("parameters") or {}, set(c.get("locked") or ())
        names = [n for n in c.get("fields") or [] if n not in fixed]
        inputs.append(textblock(f"Parameters for {md(c['id'])}", weight="Bolder", spacing="Medium"))
        if fixed:
            inputs += [textblock("The record it changes (as the finding gives it; cannot be changed here):",
                                 isSubtle=True),
                       factset({n: shown(values.get(n)) for n in c.get("fields") or [] if n in fixed})]
        for name in names[:share]:
            box = {"type": "Input.Text", "id": f"parameters.{c['id']}.{name}", "label": clip(name, 80),
                   "maxLength": 1000}
            if values.get(name) is not None:
                box["value"] = clip(shown(values[name]), _VALUE)
            inputs.append(box)
        if len(names) > share:
            inputs.append(textblock(f"{len(names) - share} more fields on the confirmation page", isSubtle=True))
    return inputs + _hand_inputs()


def _handed(handed: Any) -> list[dict[str, Any]]:
    if not isinstance(handed, Mapping):
        return []
    return [textblock(f"Handed to **{md(handed.get('to'))}** by {md(handed.get('by'))}")]


def review_card(approval_id: str, case: Mapping[str, Any], context: Mapping[str, Any],
                links: Mapping[str, str] | None = None, kpis: Sequence[Mapping[str, Any]] = (),
                signals: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Run a candidate (parameters editable), send missing data, hand over, or dismiss with a reason."""
    candidates = list(context.get("candidates") or [])
    problems = {p.get("pointer") or "/": p.get("detail") for p in context.get("problems") or []}
    body: list[dict[str, Any]] = [
        textblock("Review: the planner would not decide this case alone", size="Medium", weight="Bolder"),
        factset(case),
        *evidence(kpis, signals),
        *_handed(context.get("handedOver")),
        textblock(f"Why: {md(context.get('reason') or 'no reason recorded')}", isSubtle=True),
        *([textblock("Problems", weight="Bolder"), factset(problems)] if problems else []),
        textblock("Candidate actions" if candidates else "No catalog action fits: provide data, hand over or dismiss",
                  weight="Bolder", spacing="Medium"),
    ]
    for c in candidates:
        body += _about(c)
    if links is None:  # inputs travel only with Action.Submit
        body += [*(_inputs(candidates) if candidates else _hand_inputs()), helpful_input()]
    actions = buttons(approval_id, [c for c in CHOICES if c[0] in offered(context)], links)
    # A card takes at most five actions: four decisions plus two "was this helpful?" links are six, so the
    # helpful links sit in the body.
    helpful = [a for a in actions if links and a.get("url") in (links.get("helpful:yes"), links.get("helpful:no"))]
    if helpful:
        body += [textblock("Was this card helpful?", spacing="Medium"), {"type": "ActionSet", "actions": helpful}]
    return _fit_inputs(card(body, [a for a in actions if a not in helpful]))


def _fit_inputs(built: dict[str, Any]) -> dict[str, Any]:
    """Shorten prefilled values until the card fits (`card` shortens texts and facts only): a non-Latin value
    travels as six-byte escapes, and a shortened value still reads as a start a reviewer can correct."""
    limit = _VALUE
    while not size_ok(built) and limit > 8:
        limit //= 2
        for block in built["body"]:
            if block["type"] == "Input.Text" and "value" in block:
                block["value"] = clip(block["value"], limit)
    return built
