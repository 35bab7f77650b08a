"""Normalized findings (`POST /api/findings`): one object or a list, validated in one pass.

The happy path decodes and validates in one msgspec call. When it fails, msgspec names only the
first problem, so the error path walks the same Struct fields to name every bad one.
"""
from __future__ import annotations

import json
import re
from typing import Any, Sequence

import msgspec

from ..domain.errors import FieldError, InvalidInput, MalformedBody, pointer
from ..domain.findings import MAX_ATTRIBUTES_CHARS, MAX_BATCH, Finding

_ONE = msgspec.json.Decoder(Finding, strict=False)
_MANY = msgspec.json.Decoder(list[Finding], strict=False)
_PATH = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


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
    except RecursionError:  # a body nested thousands deep is no finding or outcome
        raise MalformedBody("The request body nests too deeply to be a finding or an outcome.") from None


def check_batch_size(count: int) -> None:
    if count == 0:
        raise InvalidInput("The batch is empty.", [FieldError("", "send at least one finding")])
    if count > MAX_BATCH:
        raise InvalidInput(f"A batch holds at most {MAX_BATCH} findings; this one has {count}.",
                           [FieldError("", f"at most {MAX_BATCH} findings per request")])


def invalid_batch(errors: list[FieldError]) -> InvalidInput:
    """One 422 for a whole batch, naming every bad field and the index of every bad finding."""
    indexes = sorted({int(e.pointer.split("/")[1]) for e in errors
                      if e.pointer.count("/") >= 1 and e.pointer.split("/")[1].isdecimal()})
    detail = (f"{len(indexes)} finding(s) are invalid (indexes {indexes[:20]}); nothing was stored."
              if indexes else "The finding is invalid; nothing was stored.")
    return InvalidInput(detail, errors, invalidIndexes=indexes)


def struct_errors(item: Any, typ: type, where: tuple = ()) -> list[FieldError]:
    """Every bad field of one object against a msgspec Struct, each with its JSON Pointer."""
    if not isinstance(item, dict):
        return [FieldError(pointer(*where), f"expected an object, got {type(item).__name__}")]
    fields = {f.encode_name: f for f in msgspec.structs.fields(typ)}
    errors = [FieldError(pointer(*where, k), "unknown field") for k in item if k not in fields]
    for name, f in fields.items():
        if name not in item:
            if f.default is msgspec.NODEFAULT and f.default_factory is msgspec.NODEFAULT:
                errors.append(FieldError(pointer(*where, name), "required field missing"))
            continue
        try:
            msgspec.convert(item[name], f.type, strict=False)
        except msgspec.ValidationError as exc:
            message, _, at = str(exc).partition(" - at `$")
            inner = tuple(m.group(1) or int(m.group(2)) for m in _PATH.finditer(at.rstrip("`")))
            errors.append(FieldError(pointer(*where, name, *inner), message))
    return errors


def _content_errors(findings: Sequence[Finding], batch: bool) -> list[FieldError]:
    """What the schema cannot say cheaply: blank text, and attributes too large to store."""
    errors = []
    for i, f in enumerate(findings):
        at = (i,) if batch else ()
        if f.eventId.isspace() or f.processArea.isspace() or f.deviationPattern.isspace() or f.caseKey.isspace() \
                or f.source.isspace():
            errors += [FieldError(pointer(*at, name), "must not be blank") for name in f.blank_fields()]
        # str() runs in C; an exact JSON length would cost a Python-level encode per finding.
        if f.attributes and len(str(f.attributes)) > MAX_ATTRIBUTES_CHARS:
            errors.append(FieldError(pointer(*at, "attributes"),
                                     f"attributes take more than {MAX_ATTRIBUTES_CHARS} characters"))
    return errors


def _explain(data: Any, batch: bool) -> InvalidInput:
    if batch:
        errors = [e for i, item in enumerate(data) for e in struct_errors(item, Finding, (i,))]
        return invalid_batch(errors or [FieldError("", "invalid findings")])
    return InvalidInput("The finding is invalid; nothing was stored.",
                        struct_errors(data, Finding) or [FieldError("", "invalid finding")])


def validate_findings(items: Sequence[Any]) -> list[Finding]:
    """Validate already-decoded normalized findings (a list of dicts); 422 names each bad field."""
    items = list(items)
    check_batch_size(len(items))
    try:
        findings = msgspec.convert(items, list[Finding], strict=False)
    except msgspec.ValidationError:
        raise _explain(items, True) from None
    problems = _content_errors(findings, True)
    if problems:
        raise invalid_batch(problems)
    return findings


def parse_findings(body: bytes) -> list[Finding]:
    """Parse `POST /api/findings`: a finding object or a list of up to MAX_BATCH of them."""
    stripped = body.lstrip()
    batch = stripped[:1] == b"["
    try:
        findings = _MANY.decode(body) if batch else [_ONE.decode(body)]
    except msgspec.ValidationError:
        data = decode_json(body)
        if batch or isinstance(data, dict):
            if batch and len(data) > MAX_BATCH:
                check_batch_size(len(data))
            raise _explain(data, batch) from None
        raise InvalidInput("Send a finding object or a list of findings.",
                           [FieldError("", f"expected an object or an array, got {type(data).__name__}")]) from None
    except msgspec.DecodeError:
        decode_json(body)  # names where the JSON broke
        raise MalformedBody("The request body is not valid JSON.") from None
    check_batch_size(len(findings))
    problems = _content_errors(findings, batch)
    if problems:
        raise invalid_batch(problems) if batch else InvalidInput("The finding is invalid; nothing was stored.",
                                                                 problems)
    return findings
