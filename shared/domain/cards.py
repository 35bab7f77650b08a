"""Adaptive Cards (schema 1.5) for the questions the app asks people: approve, enrich, escalate.

A card that shows a case shows what the miner expects and why (`evidence`): the KPI movements it expects
(`cycle_time_days −4 days (reported as days_to_close)`) and the root-cause signals (`vendor = V300 (34 %)`).

Two ways to answer: `submit` cards (an approval flow's "Post adaptive card and wait for a response"
returns the Action.Submit data to the flow, which posts it back with the token), and `links` cards
(a Teams Workflows webhook cannot take Action.Submit, so approve/reject are signed Action.OpenUrl links
to a confirmation page). Text is kept short: Teams refuses cards over 28 KB.

Teams renders TextBlock and FactSet text as Markdown, so every value that comes from data (finding
attributes, case keys, parameters, reasons, messages) goes through `md`: a case key written
`[Approve now](https://evil.example)` must show as text, not as a link next to the real buttons. The app's
own labels and its signed Action.OpenUrl links are not data and are not escaped.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_BYTES = 28 * 1024
_TEXT = 600  # characters of any one free text shown on a card
MAX_FACTS = 25  # per FactSet; the rest are counted, not shown
# Markdown that Teams renders in TextBlock and FactSet text, escaped as CommonMark allows (a backslash before
# ASCII punctuation, §2.4) where it has a meaning. Inline syntax anywhere: code, emphasis, links and images,
# strikethrough, autolinks and HTML (<, >), tables, entities.
_INLINE = re.compile(r"[\\`*_\[\]()!~<>|&]")
# Block syntax only starts a line, and `md` leaves one line: headings, rules and list items (-, +, "1. "), at the start.
_BLOCK = re.compile(r"^(?:[#+\-]|\d{1,9}(?=\.(?: |$)))")
# Bare URLs and domains (https://…, www.evil.com, evil.com) become links with no syntax at all: their `:` and
# `.` are escaped (linkify stops there) and followed by a word joiner (U+2060, invisible, no line break) for
# detectors that read the rendered text. Dotted ids whose last part holds a hyphen or digit stay as they are.
_LINKISH = re.compile(r"(?<=[A-Za-z0-9])[.:](?=//|[A-Za-z]{2,}(?![\w-]))")
_JOINER = "\u2060"


def md(value: Any) -> str:
    """A data value as Markdown that renders as exactly its text: no link, emphasis, list or heading."""
    text = " ".join(str(value).split()) if value is not None else "—"  # a line break could start a block
    text = _INLINE.sub(lambda m: "\\" + m.group(), text)
    text = _LINKISH.sub(lambda m: "\\" + m.group() + _JOINER, text)
    block = _BLOCK.match(text)
    if block:
        end = block.end()
        text = text[:end] + "\\" + text[end:] if block.group()[0].isdigit() else "\\" + text
    return text


def clip(text: Any, limit: int = _TEXT) -> str:
    text = str(text)
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    if (len(cut) - len(cut.rstrip("\\"))) % 2:  # never leave half of an escape before the ellipsis
        cut = cut[:-1]
    return cut + "…"


def factset(pairs: Mapping[str, Any]) -> dict[str, Any]:
    """Facts from data: titles (contract field names) and values both escaped."""
    items = list(pairs.items())
    facts = [{"title": clip(md(k), 80), "value": clip(md(v), 200)} for k, v in items[:MAX_FACTS]]
    if len(items) > MAX_FACTS:
        facts.append({"title": "…", "value": f"{len(items) - MAX_FACTS} more in the app"})
    return {"type": "FactSet", "facts": facts}


def _number(x: float) -> str:
    """A signed amount as people read it: −4, +1,250.5 (U+2212 minus; at most two decimals)."""
    text = f"{abs(x):,.2f}".rstrip("0").rstrip(".")
    return ("\u2212" if x < 0 else "+" if x > 0 else "") + text


def _movement(kpi: Mapping[str, Any]) -> str:
    """`−4 days (reported as days_to_close)`: the expected change in the metric's unit, data escaped."""
    change = kpi.get("change")
    if not isinstance(change, (int, float)) or isinstance(change, bool):
        estimate = kpi.get("estimate")
        number = estimate if isinstance(estimate, (int, float)) and not isinstance(estimate, bool) else 0.0
        change = -abs(number) if kpi.get("direction") == "decrease" else number
    text = _number(float(change))
    if kpi.get("unit"):
        text += f" {md(kpi['unit'])}"
    if kpi.get("reported"):
        text += f" (reported as {md(kpi['reported'])})"
    return text


def _signal(signal: Mapping[str, Any]) -> str:
    """`= V300 (34 %)`: a root-cause signal's value and its share (or weight), data escaped."""
    value = signal.get("value")
    text = "= " + md(str(value).lower() if isinstance(value, bool) else value)
    share, weight = signal.get("share"), signal.get("weight")
    if isinstance(share, (int, float)):
        text += f" ({share * 100:.0f} %)"
    elif isinstance(weight, (int, float)):
        text += f" (weight {weight:g})"
    return text


def evidence(kpis: Sequence[Mapping[str, Any]] = (), signals: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """Card blocks for the case's expected KPI movements and root-cause signals; none when it has neither."""
    blocks: list[dict[str, Any]] = []
    for label, items, key, shown in (("Expected KPI movement", kpis, "metric", _movement),
                                     ("Root-cause signals", signals, "name", _signal)):
        if not items:
            continue
        facts = [{"title": clip(md(item.get(key)), 80), "value": clip(shown(item), 200)}
                 for item in items[:MAX_FACTS]]
        if len(items) > MAX_FACTS:
            facts.append({"title": "…", "value": f"{len(items) - MAX_FACTS} more in the app"})
        blocks += [textblock(label, weight="Bolder", spacing="Medium"), {"type": "FactSet", "facts": facts}]
    return blocks


def textblock(text: str, **style: Any) -> dict[str, Any]:
    """A TextBlock of Markdown the app wrote: data in it must already have gone through `md`."""
    return {"type": "TextBlock", "text": clip(text), "wrap": True, **style}


def helpful_input() -> dict[str, Any]:
    """'Was this helpful?': answered with the decision, recorded per action version (telemetry)."""
    return {"type": "Input.ChoiceSet", "id": "helpful", "label": "Was this card helpful?", "style": "expanded",
            "isMultiSelect": False, "choices": [{"title": "Yes", "value": "yes"}, {"title": "No", "value": "no"}]}


def card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    return _fit({"type": "AdaptiveCard", "$schema": SCHEMA, "version": "1.5", "body": body, "actions": actions})


def _fit(card: dict[str, Any]) -> dict[str, Any]:
    """Shorten texts and fact values until the card is under MAX_BYTES: non-Latin text is sent as \\u escapes,
    six bytes a character, so clipping by characters alone does not bound the bytes."""
    limit = _TEXT
    while not size_ok(card) and limit > 10:
        limit //= 2
        for block in card["body"]:
            if block["type"] == "TextBlock":
                block["text"] = clip(block["text"], limit)
            elif block["type"] == "FactSet":
                for fact in block["facts"]:
                    fact["title"], fact["value"] = clip(fact["title"], min(80, limit)), clip(fact["value"], limit)
    return card


def buttons(approval_id: str, choices: Sequence[tuple[str, str, str]], links: Mapping[str, str] | None,
            extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One button per (decision, title, style): OpenUrl to a signed link, or Submit with the decision."""
    if links is not None:
        # A link card takes no inputs: "Was this helpful?" is two more signed links (to a page that asks to confirm).
        return [*({"type": "Action.OpenUrl", "title": title, "url": links[decision]}
                  for decision, title, _ in choices if decision in links),
                *({"type": "Action.OpenUrl", "title": title, "url": links[key]}
                  for key, title in (("helpful:yes", "Helpful"), ("helpful:no", "Not helpful")) if key in links)]
    return [{"type": "Action.Submit", "title": title, "style": style,
             "data": {"approvalId": approval_id, "decision": decision, **(extra or {})}}
            for decision, title, style in choices]


def action_notes(effort_hours: float | None, prerequisites: Sequence[str],
                 failure_modes: Sequence[str]) -> dict[str, str]:
    """What the catalog says a person should know before choosing an action: its effort, what must hold first,
    how it is known to fail (only what it says)."""
    notes = {}
    if effort_hours is not None:
        notes["Effort"] = f"{effort_hours:g} h"
    if prerequisites:
        notes["Prerequisites"] = "; ".join(prerequisites)
    if failure_modes:
        notes["Known failure modes"] = "; ".join(failure_modes)
    return notes


def _notes(notes: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [textblock("Before you decide", weight="Bolder", spacing="Medium"), factset(notes)] if notes else []


def approval_card(approval_id: str, case: Mapping[str, Any], plan: Mapping[str, Any], risk: str, rationale: str,
                  links: Mapping[str, str] | None = None, kpis: Sequence[Mapping[str, Any]] = (),
                  signals: Sequence[Mapping[str, Any]] = (), notes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Approve or reject one proposed action: the case, what it should move and why, the action and its
    parameters, what the catalog says of it (`action_notes`), risk and reasons."""
    body = [
        textblock(f"Approve {md(plan['actionId'])} v{md(plan['actionVersion'])}?", size="Medium", weight="Bolder"),
        *([textblock(f"Summary (AI-generated): {md(plan['summary'])}")] if plan.get("summary") else []),
        factset(case),
        *evidence(kpis, signals),
        textblock("Proposed parameters", weight="Bolder", spacing="Medium"),
        factset(plan.get("parameters") or {}),
        *_notes(notes or {}),
        textblock(f"Risk: {md(risk)}", color="Warning"),
        textblock(f"Why: {md(rationale)}", isSubtle=True),
    ]
    if links is None:  # inputs travel only with Action.Submit
        body.append(helpful_input())
    return card(body, buttons(approval_id, [("approve", "Approve", "positive"),
                                              ("reject", "Reject", "destructive")], links))


def enrich_card(approval_id: str, case: Mapping[str, Any], action_id: str, missing: Sequence[str],
                links: Mapping[str, str] | None = None, kpis: Sequence[Mapping[str, Any]] = (),
                signals: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Ask for exactly the contract fields that are missing; the answer goes back through triage."""
    body: list[dict[str, Any]] = [
        textblock(f"{md(action_id)} needs data", size="Medium", weight="Bolder"),
        factset(case),
        *evidence(kpis, signals),
        textblock(f"Missing: {', '.join(md(name) for name in missing)}"),
    ]
    if links is None:
        body += [{"type": "Input.Text", "id": name, "label": name, "isRequired": True,
                  "errorMessage": f"{name} is required"} for name in missing]
        body.append(helpful_input())
    return card(body, buttons(approval_id, [("provide", "Send", "positive")], links))


def escalation_card(case: Mapping[str, Any], headline: str, details: Mapping[str, Any],
                    link: str | None = None, kpis: Sequence[Mapping[str, Any]] = (),
                    signals: Sequence[Mapping[str, Any]] = (), *, approval_id: str | None = None,
                    plan: Mapping[str, Any] | None = None, risk: Mapping[str, Any] | None = None,
                    options: Sequence[str] = (), recommended: tuple[str, str] | None = None,
                    links: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Tell a person something needs them: a breach, a failed flow, a recurrence, an unanswered request (with
    `approval_id` and `options`: answerable), or a dead letter or a freeze (no case to act on: the link only).

    `plan` (parameters masked by the caller), `risk` notes and the `recommended` (answer, why) are shown; the
    `submit` form takes the owner and reason as inputs, the `links` form (`links` given) sends the person to
    the confirmation page that asks for them."""
    body = [textblock(md(headline), size="Medium", weight="Bolder", color="Attention"), factset(case),
            *evidence(kpis, signals), factset(details)]  # what happened: the execution's status and message
    if plan:
        method = f" ({md(plan['method'])})" if plan.get("method") else ""
        body += [textblock(f"Plan: {md(plan.get('actionId'))} v{md(plan.get('actionVersion'))}{method}",
                           weight="Bolder", spacing="Medium"), factset(plan.get("parameters") or {})]
    if risk:
        body += [textblock("Risk notes", weight="Bolder", spacing="Medium"), factset(risk)]
    if recommended and recommended[0] in options:
        body.append(textblock(f"Recommended: {ESCALATION_LABELS.get(recommended[0], recommended[0])}. "
                              f"{md(recommended[1])}", color="Good", spacing="Medium"))
    # "Open" (and on a link card "Was this helpful?") go in the body: the answers keep the card's action row,
    # which Teams and the official parser cap at five buttons.
    opened = [{"type": "Action.OpenUrl", "title": "Open", "url": link}] if link else []
    if approval_id is None or not options:
        return card(body + ([{"type": "ActionSet", "actions": opened}] if opened else []), [])
    best = recommended[0] if recommended else None
    ordered = sorted(options, key=lambda o: o != best)[:5]  # the recommended answer first, then in the given order
    if links is None:
        body += [{"type": "ActionSet", "actions": opened}] if opened else []
        body += [{"type": "Input.Text", "id": "owner", "label": "Owner (to hand over)", "isRequired": False},
                 {"type": "Input.Text", "id": "reason", "label": "Reason (to accept or close)", "isMultiline": True,
                  "isRequired": False, "maxLength": 500},
                 helpful_input()]
        choices = [(o, ESCALATION_LABELS.get(o, o), "positive" if o == best else "default") for o in ordered]
        return card(body, buttons(approval_id, choices, None))
    shown = [o for o in ordered if o in links][:4]
    helpful = buttons(approval_id, [], {k: v for k, v in links.items() if k.startswith("helpful:")})
    body.append({"type": "ActionSet", "actions": [*opened, *helpful]})
    return card(body, buttons(approval_id, [(o, ESCALATION_LABELS.get(o, o), "default") for o in shown],
                              {k: v for k, v in links.items() if k in shown}))


# The escalation answers as buttons name them (shared/domain/escalation.py decides which a case offers).
ESCALATION_LABELS = {"retry": "Retry", "undo": "Undo (compensate)", "accept": "Accept as is", "handover": "Hand over",
                     "close": "Close"}


def size_ok(card: Mapping[str, Any]) -> bool:
    return len(json.dumps(card).encode()) <= MAX_BYTES
