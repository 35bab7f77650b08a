"""A review: what a reviewer is offered (the candidate actions, their parameters prefilled from the finding) and
how a reviewer's inputs are read back (only contract fields; a value shown masked and sent back unchanged is the
finding's own value; the fields that identify the record the action changes stay the finding's)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from . import identifying
from .catalog import Action
from .contracts import properties
from .errors import FieldError, pointer
from .pii import redact, scrub
from .planning import parameters_for
from .verify import record_ref

MAX_CANDIDATES = 10  # per card and record: a pattern with more has a catalog problem, not a review one
MAX_FIELDS = 25  # contract fields shown per candidate
MAX_NOTES = 5  # prerequisites or failure modes per candidate
_VALUE = 200  # characters of any one value kept on the record
LOCKED = "identifies the record; it cannot be changed on review"
MISSING = "identifies the record; supply it with provide"


def _short(value: Any) -> Any:
    return value[:_VALUE] if isinstance(value, str) else value


def shown_parameters(action: Action, attributes: Mapping[str, Any], pii_fields: frozenset[str]) -> dict[str, Any]:
    """The parameters a card shows for `action`: prefilled from the finding, personal data masked, scrubbed."""
    prefilled = parameters_for(action, attributes)
    masked = redact(prefilled, pii_fields)
    return {k: _short(v) for k, v in masked.items() if isinstance(v, (str, int, float, bool))}


def locked(action: Action, attributes: Mapping[str, Any], case_key: str) -> tuple[str, ...]:
    """The contract fields that identify the record the action changes or whom it addresses
    (identifying.fields), a field taken from the attribute holding the case key, and the verify policy's record
    id (`<kind>Id`, as the watchdog reads it). A reviewer changing one would act on another record (or write to
    another person), past the case's claim and holdout, and credit the effect to this case."""
    props, mapped = properties(action), action.parameterMap or {}
    keys = {"caseKey", *(k for k, v in attributes.items() if isinstance(v, str) and v == case_key)}
    ref = record_ref(action.verify or {})
    ids = {f"{ref[0]}Id", *(["orderId"] if ref[0] == "case" else [])} if ref else set()
    named = identifying.fields(action)
    return tuple(n for n in props if n in named or mapped.get(n, n) in keys or n in ids)


def candidate(action: Action, attributes: Mapping[str, Any], pii_fields: frozenset[str],
              case_key: str = "") -> dict[str, Any]:
    """One candidate as the review record keeps it: what a reviewer needs to choose, and nothing personal.
    `locked`: the identifying fields the finding gives (a card shows them, read-only)."""
    shown = shown_parameters(action, attributes, pii_fields)
    return {"id": action.id, "version": action.version, "name": action.name[:_VALUE],
            "riskTier": action.riskTier.value, "approvalRole": action.approvalRole,
            "effortHours": action.effortHours,
            "prerequisites": [p[:_VALUE] for p in action.prerequisites[:MAX_NOTES]],
            "failureModes": [f[:_VALUE] for f in action.failureModes[:MAX_NOTES]],
            "fields": list(properties(action))[:MAX_FIELDS],
            "required": [f for f in action.required_fields() if f in properties(action)][:MAX_FIELDS],
            "parameters": shown,
            "locked": [n for n in locked(action, attributes, case_key) if n in shown][:MAX_FIELDS]}


def context(candidates: Sequence[Action], attributes: Mapping[str, Any], reason: str,
            problems: Sequence[FieldError], pii_fields: frozenset[str], case_key: str = "") -> dict[str, Any]:
    """What a review card offers, kept on its record (small: the confirmation page renders from it)."""
    return {"candidates": [candidate(a, attributes, pii_fields, case_key) for a in candidates[:MAX_CANDIDATES]],
            "reason": scrub(reason)[:500],
            "problems": [{"pointer": p.pointer, "detail": scrub(p.detail)[:_VALUE]} for p in problems[:MAX_NOTES]]}


def _coerce(schema: Mapping[str, Any], value: Any) -> Any:
    """A form's text as the contract's type ("900" for a number is 900, "true" a boolean, "a, b" a list);
    anything else is left as sent for the schema to judge. Text that reads as no finite number stays text."""
    if not isinstance(value, str):
        return value
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    text = value.strip()
    if "string" in kinds:
        return value
    try:
        if "integer" in kinds and text.lstrip("-").isdigit():
            return int(text)
        if "number" in kinds:
            number = float(text) if "." in text or "e" in text.lower() else int(text)
            return number if math.isfinite(number) else value
    except ValueError:
        return value
    if "boolean" in kinds and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "array" in kinds:
        items = schema.get("items")
        of: Mapping[str, Any] = items if isinstance(items, Mapping) else {}
        return [_coerce(of, part.strip()) for part in text.split(",") if part.strip()]
    return value


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _as_shown(value: Any, shown: Any) -> bool:
    """Whether a value came back as the card showed it: equal, or the start a long value was shortened to."""
    text, full = str(value).lower() if isinstance(value, bool) else str(value), str(shown)
    return text in (full, full.lower()) or (text.endswith("…") and full.startswith(text[:-1]))


def _schema_of(action: Action, name: str) -> Mapping[str, Any]:
    prop = action.dataContract.get("properties", {}).get(name)
    return prop if isinstance(prop, Mapping) else {}


def _changed(action: Action, attributes: Mapping[str, Any], given: Mapping[str, Any],
             pii_fields: frozenset[str]) -> dict[str, Any]:
    """The contract fields of `given` that differ from what the card showed (empty ones are absent): an
    unchanged value, masked or scrubbed on the card, leaves the finding's value."""
    props = properties(action)
    shown = shown_parameters(action, attributes, pii_fields)
    return {k: v for k, v in given.items() if k in props and v is not None and v != ""
            and not (k in shown and _as_shown(v, shown[k]))}


def overrides(action: Action, attributes: Mapping[str, Any], given: Mapping[str, Any] | None,
              pii_fields: frozenset[str], at: str = "/parameters", case_key: str = "",
              names: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[FieldError]]:
    """The reviewer's changes to the prefilled parameters, read as the contract's types: only contract fields
    (others are errors naming them); a changed field that identifies the record is refused. `names`: the key
    each field was sent under, for the errors."""
    props = properties(action)
    sent = names or {}
    errors = [FieldError(f"{at}/{sent.get(k, k)}", f"not a field of {action.id}'s data contract")
              for k in (given or {}) if k not in props]
    fixed, before = locked(action, attributes, case_key), parameters_for(action, attributes)
    changed: dict[str, Any] = {}
    for name, value in _changed(action, attributes, given or {}, pii_fields).items():
        where = f"{at}/{sent.get(name, name)}"
        if name in fixed:  # changed, or given where the finding has none: run takes neither
            errors.append(FieldError(where, LOCKED if name in before else MISSING))
            continue
        changed[name] = _coerce(_schema_of(action, name), value)
        if not _finite(changed[name]):
            errors.append(FieldError(where, "must be a finite number"))
    # A required identifying field the finding lacks: a person supplies it first (provide), never run alone.
    errors += [FieldError(f"{at}/{sent.get(n, n)}", MISSING) for n in action.required_fields()
               if n in fixed and n not in before and n not in changed
               and not any(e.pointer == f"{at}/{sent.get(n, n)}" for e in errors)]
    return changed, errors


def _owner(key: str, ids: Sequence[str]) -> str | None:
    """The candidate a namespaced key (`<actionId>.<field>`) belongs to: the longest id it starts with."""
    return max((i for i in ids if key.startswith(i + ".")), key=len, default=None)


def for_action(action: Action, others: Sequence[Action], attributes: Mapping[str, Any],
               given: Mapping[str, Any] | None, pii_fields: frozenset[str],
               at: str = "/parameters") -> tuple[dict[str, Any], dict[str, str], list[FieldError]]:
    """What was sent for `action` out of a form that carries every candidate's fields: its own namespaced
    inputs (`<actionId>.<field>`, as the card and the page name them) and plain fields (a changed one wins over
    one come back as shown); another candidate's inputs, and a plain field of another candidate sent back as
    shown, are not for it. A plain field only another candidate has, changed, is an error naming it.
    Returns (fields, the key each came under, errors)."""
    ids = [action.id, *(a.id for a in others if a.id != action.id)]
    spaced: dict[str, tuple[str, Any]] = {}
    plain: dict[str, tuple[str, Any]] = {}
    errors: list[FieldError] = []
    for key, value in (given or {}).items():
        owner = _owner(key, ids)
        if owner is not None:
            if owner == action.id:
                spaced[key[len(owner) + 1:]] = (key, value)
        elif key in properties(action):
            plain[key] = (key, value)
        elif not any(key in properties(o) and not _changed(o, attributes, {key: value}, pii_fields)
                     for o in others):
            errors.append(FieldError(pointer(*at.strip("/").split("/"), key),
                                     f"not a field of {action.id}'s data contract"))
    picked = {**plain, **spaced}
    for name in set(plain) & set(spaced):  # sent twice: the value the reviewer changed counts
        picked[name] = next((p for p in (spaced[name], plain[name])
                             if _changed(action, attributes, {name: p[1]}, pii_fields)), spaced[name])
    return {k: v for k, (_, v) in picked.items()}, {k: key for k, (key, _) in picked.items()}, errors


def card_changes(candidates: Sequence[Action], attributes: Mapping[str, Any], given: Mapping[str, Any] | None,
                 pii_fields: frozenset[str]) -> tuple[dict[str, Any], list[FieldError]]:
    """The fields a reviewer changed on a form carrying every candidate's fields (the submit card's provide):
    per candidate, its namespaced and plain fields that differ from what it showed; the first change wins."""
    ids = [a.id for a in candidates]
    errors = [FieldError(pointer("parameters", k), "not a contract field") for k in (given or {})
              if _owner(k, ids) is None and not any(k in properties(a) for a in candidates)]
    out: dict[str, Any] = {}
    for action in candidates:
        mine, _, _ = for_action(action, candidates, attributes, given, pii_fields)
        out.update({k: v for k, v in _changed(action, attributes, mine, pii_fields).items() if k not in out})
    return out, errors


_PARTIAL: dict[tuple[str, int], Any] = {}


def _check(action: Action, fields: Mapping[str, Any]) -> list[FieldError]:
    """`fields` against the contract's schemas for them, nothing required: a person supplies some fields."""
    import fastjsonschema

    fn = _PARTIAL.get((action.id, action.version))
    if fn is None:
        schema = {k: v for k, v in action.dataContract.items() if k != "required"}
        fn = _PARTIAL[(action.id, action.version)] = fastjsonschema.compile(schema)
    try:
        fn(dict(fields))
    except fastjsonschema.JsonSchemaValueException as exc:
        path = list((exc.path or [])[1:])
        return [FieldError(pointer(*path) if path else "", exc.message.replace("data.", "", 1).replace("data ", ""))]
    return []


def read_data(actions: Sequence[Action], attributes: Mapping[str, Any], data: Mapping[str, Any] | None,
              case_key: str = "", at: str = "/data", locked_as: str = LOCKED,
              pii_fields: frozenset[str] = frozenset()) -> tuple[dict[str, Any], list[FieldError]]:
    """Data a person supplies (a review's provide, an enrichment): contract fields of `actions` only, read as
    their contract types (form text "300" for a number is 300), each checked against its contract. A field that
    identifies the record may be supplied where the finding has none, never changed where it has one (sent back
    as the card showed it, masked, it is no change and stays the finding's). Empty values are absent."""
    allowed = {name: a for a in reversed(actions) for name in properties(a)}  # the first action's schema wins
    errors = [FieldError(f"{at}/{k}", "not a contract field") for k in (data or {}) if k not in allowed]
    given = {k: _coerce(_schema_of(allowed[k], k), v) for k, v in (data or {}).items()
             if k in allowed and v not in (None, "", [])}
    errors += [FieldError(f"{at}/{k}", "must be a finite number") for k, v in given.items() if not _finite(v)]
    kept = set(given)
    for action in actions:
        mine = {k: v for k, v in given.items() if k in properties(action)}
        before, shown = parameters_for(action, attributes), shown_parameters(action, attributes, pii_fields)
        for k in locked(action, attributes, case_key):
            if k not in mine or k not in before:
                continue
            if (k in shown and _as_shown(mine[k], shown[k])) or str(mine[k]) == str(before[k]):
                kept.discard(k)  # the finding's own value, as shown: nothing supplied
            else:
                errors.append(FieldError(f"{at}/{k}", locked_as))
        mine = {k: v for k, v in mine.items() if k in kept}
        if mine:
            errors += [FieldError(at + e.pointer, e.detail) for e in _check(action, mine)]
    unique = list({e.pointer: e for e in errors}.values())  # one per field, the first reason
    return {k: v for k, v in given.items() if k in kept}, unique


def newly_identified(actions: Sequence[Action], attributes: Mapping[str, Any], given: Mapping[str, Any],
                     case_key: str = "") -> list[str]:
    """The fields of `given` that identify the record for one of `actions` and that the finding lacked: what
    a person supplied, recorded with their id on the opportunity (Opportunity.supplied)."""
    return sorted({k for a in actions for k in locked(a, attributes, case_key)
                   if k in given and k not in parameters_for(a, attributes)})
