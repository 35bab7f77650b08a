"""`POST /api/outcomes`: one KPI observation or a list, every bad field named, nothing stored on error."""
from __future__ import annotations

import math
from typing import Any

import msgspec

from ..domain.errors import FieldError, InvalidInput, pointer
from ..domain.findings import instant
from ..domain.outcomes import MAX_OUTCOMES, Outcome, OutcomeIn, outcome_id
from .generic import decode_json, struct_errors


def parse_outcomes(body: bytes) -> list[Outcome]:
    """Outcomes from a JSON object or array of up to MAX_OUTCOMES; 400 for bad JSON, 422 naming fields."""
    data = decode_json(body)
    batch = isinstance(data, list)
    items: list[Any] = data if batch else [data]
    if not batch and not isinstance(data, dict):
        raise InvalidInput("Send an outcome object or a list of outcomes.",
                           [FieldError("", f"expected an object or an array, got {type(data).__name__}")])
    if not items:
        raise InvalidInput("The batch is empty.", [FieldError("", "send at least one outcome")])
    if len(items) > MAX_OUTCOMES:
        raise InvalidInput(f"A batch holds at most {MAX_OUTCOMES} outcomes; this one has {len(items)}.",
                           [FieldError("", f"at most {MAX_OUTCOMES} outcomes per request")])
    errors: list[FieldError] = []
    out: list[Outcome] = []
    for i, item in enumerate(items):
        at = (i,) if batch else ()
        try:
            o = msgspec.convert(item, OutcomeIn, strict=False)
        except msgspec.ValidationError:
            errors += struct_errors(item, OutcomeIn, at) or [FieldError(pointer(*at), "invalid outcome")]
            continue
        value = float(o.value)
        if not math.isfinite(value):
            errors.append(FieldError(pointer(*at, "value"), "must be a finite number"))
            continue
        blank = [name for name in ("processArea", "caseKey") if getattr(o, name).isspace()]
        if blank:
            errors += [FieldError(pointer(*at, name), "must not be blank") for name in blank]
            continue
        when = instant(o.observedAt)
        out.append(Outcome(outcome_id(o.processArea, o.caseKey, o.metric, when), o.processArea.strip(),
                           o.caseKey.strip(), o.metric, value, when, o.source))
    if errors:
        bad = sorted({int(e.pointer.split("/")[1]) for e in errors if batch and e.pointer.count("/") >= 1
                      and e.pointer.split("/")[1].isdecimal()})
        detail = (f"{len(bad)} outcome(s) are invalid (indexes {bad[:20]}); nothing was stored." if batch
                  else "The outcome is invalid; nothing was stored.")
        raise InvalidInput(detail, errors, **({"invalidIndexes": bad} if batch else {}))
    return out
