"""Normalized findings (`POST /api/findings`): one object or a list, validated in one pass."""
from __future__ import annotations

import json
from typing import Any, Iterable

from pydantic import TypeAdapter, ValidationError

from ..domain.errors import FieldError, InvalidInput, MalformedBody, from_pydantic
from ..domain.findings import MAX_BATCH, Finding

_FINDINGS = TypeAdapter(list[Finding])


def decode_json(body: bytes) -> Any:
    """Parse a JSON body or raise MalformedBody (400) saying where it broke."""
    if not body.strip():
        raise MalformedBody("The request body is empty; send a JSON object or array.")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise MalformedBody("The request body is not UTF-8 text.") from None
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} "
                            f"column {exc.colno}.") from None


def check_batch_size(count: int) -> None:
    if count == 0:
        raise InvalidInput("The batch is empty.", [FieldError("", "send at least one finding")])
    if count > MAX_BATCH:
        raise InvalidInput(f"A batch holds at most {MAX_BATCH} findings; this one has {count}.",
                           [FieldError("", f"at most {MAX_BATCH} findings per request")])


def invalid_batch(errors: list[FieldError]) -> InvalidInput:
    """One 422 for a whole batch, naming every bad field and the index of every bad finding."""
    indexes = sorted({int(e.pointer.split("/")[1]) for e in errors
                      if e.pointer.count("/") >= 1 and e.pointer.split("/")[1].isdigit()})
    detail = (f"{len(indexes)} finding(s) are invalid (indexes {indexes[:20]}); nothing was stored."
              if indexes else "The finding is invalid; nothing was stored.")
    return InvalidInput(detail, errors, invalidIndexes=indexes)


def validate_findings(items: Iterable[dict[str, Any]] | list[Any]) -> list[Finding]:
    """Validate already-decoded normalized findings (a list) into models; 422 names each bad field."""
    items = list(items)
    check_batch_size(len(items))
    try:
        return _FINDINGS.validate_python(items)
    except ValidationError as exc:
        raise invalid_batch(from_pydantic(exc)) from None


def parse_findings(body: bytes) -> list[Finding]:
    """Parse `POST /api/findings`: a finding object or a list of up to MAX_BATCH of them."""
    head = body.lstrip()[:1]
    if head == b"[":
        try:
            findings = _FINDINGS.validate_json(body)
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                decode_json(body)  # re-parse for a precise message
            raise invalid_batch(from_pydantic(exc)) from None
        check_batch_size(len(findings))
        return findings
    data = decode_json(body)
    if isinstance(data, dict):
        try:
            return [Finding.model_validate(data)]
        except ValidationError as exc:
            raise InvalidInput("The finding is invalid; nothing was stored.", from_pydantic(exc)) from None
    raise InvalidInput("Send a finding object or a list of findings.",
                       [FieldError("", f"expected an object or an array, got {type(data).__name__}")])
