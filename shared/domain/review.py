"""A review: what a reviewer is offered (the candidate actions, their parameters prefilled from the finding) and
how a reviewer's inputs are read back (only contract fields; a value shown masked and sent back unchanged is the
finding's own value)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .catalog import Action
from .contracts import properties
from .errors import FieldError
from .pii import redact, scrub
from .planning import parameters_for

MAX_CANDIDATES = 10  # per card and record: a pattern with more has a catalog problem, not a review one
MAX_FIELDS = 25  # contract fields shown per candidate
MAX_NOTES = 5  # prerequisites or failure modes per candidate
_VALUE = 200  # characters of any one value kept on the record


def _short(value: Any) -> Any:
    return value[:_VALUE] if isinstance(value, str) else value


def shown_parameters(action: Action, attributes: Mapping[str, Any], pii_fields: frozenset[str]) -> dict[str, Any]:
    """The parameters a card shows for `action`: prefilled from the finding, personal data masked, scrubbed."""
    prefilled = parameters_for(action, attributes)
    masked = redact(prefilled, pii_fields)
    return {k: _short(v) for k, v in masked.items() if isinstance(v, (str, int, float, bool))}


def candidate(action: Action, attributes: Mapping[str, Any], pii_fields: frozenset[str]) -> dict[str, Any]:
    """One candidate as the review record keeps it: what a reviewer needs to choose, and nothing personal."""
    return {"id": action.id, "version": action.version, "name": action.name[:_VALUE],
            "riskTier": action.riskTier.value, "approvalRole": action.approvalRole,
            "effortHours": action.effortHours,
            "prerequisites": [p[:_VALUE] for p in action.prerequisites[:MAX_NOTES]],
            "failureModes": [f[:_VALUE] for f in action.failureModes[:MAX_NOTES]],
            "fields": list(properties(action))[:MAX_FIELDS],
            "required": [f for f in action.required_fields() if f in properties(action)][:MAX_FIELDS],
            "parameters": shown_parameters(action, attributes, pii_fields)}


def context(candidates: Sequence[Action], attributes: Mapping[str, Any], reason: str,
            problems: Sequence[FieldError], pii_fields: frozenset[str]) -> dict[str, Any]:
    """What a review card offers, kept on its record (small: the confirmation page renders from it)."""
    return {"candidates": [candidate(a, attributes, pii_fields) for a in candidates[:MAX_CANDIDATES]],
            "reason": scrub(reason)[:500],
            "problems": [{"pointer": p.pointer, "detail": scrub(p.detail)[:_VALUE]} for p in problems[:MAX_NOTES]]}


def _coerce(schema: Mapping[str, Any], value: Any) -> Any:
    """A form's text as the contract's type ("900" for a number is 900); anything else is left for the schema."""
    if not isinstance(value, str):
        return value
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    text = value.strip()
    try:
        if "integer" in kinds and text.lstrip("-").isdigit():
            return int(text)
        if "number" in kinds:
            return float(text) if "." in text or "e" in text.lower() else int(text)
    except ValueError:
        return value
    if "boolean" in kinds and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return value


def _as_shown(value: Any, shown: Any) -> bool:
    """Whether a value came back as the card showed it: equal, or the start a long value was shortened to."""
    text, full = str(value).lower() if isinstance(value, bool) else str(value), str(shown)
    return text in (full, full.lower()) or (text.endswith("…") and full.startswith(text[:-1]))


def overrides(action: Action, attributes: Mapping[str, Any], given: Mapping[str, Any] | None,
              pii_fields: frozenset[str], at: str = "/parameters") -> tuple[dict[str, Any], list[FieldError]]:
    """The reviewer's changes to the prefilled parameters: only contract fields (others are errors naming them);
    an empty value, or the value the card showed (masked or scrubbed), leaves the finding's value."""
    props = action.dataContract.get("properties", {})
    errors = [FieldError(f"{at}/{k}", f"not a field of {action.id}'s data contract") for k in (given or {})
              if k not in props]
    shown = shown_parameters(action, attributes, pii_fields)
    changed: dict[str, Any] = {}
    for name, value in (given or {}).items():
        if name not in props or value is None or value == "":
            continue
        if name in shown and _as_shown(value, shown[name]):
            continue  # sent back as shown: the card's copy may be masked, the finding's value stands
        changed[name] = _coerce(props[name] if isinstance(props[name], Mapping) else {}, value)
    return changed, errors
