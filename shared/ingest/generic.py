"""Normalized findings (`POST /api/findings`), and the one decoder of every JSON request body.

The happy path decodes and validates in one msgspec call. When it fails, msgspec names only the
first problem, so the error path walks the same Struct fields to name every bad one.
Every route's JSON body goes through `decode_json` (or `decode_as`, its typed fast path): a body that is not
JSON, not UTF-8 or nested past MAX_DEPTH is a 400, and what JSON allows but the app cannot keep (an integer past
64 bits, a lone surrogate) a 422; each names where it is.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from ..domain.errors import FieldError, InvalidInput, MalformedBody, ProblemError, pointer
from ..domain.findings import MAX_ATTRIBUTES_CHARS, MAX_BATCH, Finding, attribute_name_errors

_ONE = msgspec.json.Decoder(Finding, strict=False)
_MANY = msgspec.json.Decoder(list[Finding], strict=False)
_PATH = re.compile(r"\.([^.\[]+)|\[(\d+)\]")

# The deepest body the app takes, an action's data contract, nests 9 levels. Python's recursion limit (1,000
# frames) is shared by every frame of a request, and json, msgspec and the audit masking recurse once a level:
# arrays 1,000 deep made a 500. 32 leaves room for any real document.
MAX_DEPTH = 32
# Integers are 64-bit, as msgspec decodes them and Table Storage keeps them (Edm.Int64); json's int() raises
# ValueError past 4,300 digits, which a body of 4,401 digits turned into a 500.
_INT_MIN, _INT_MAX = -2 ** 63, 2 ** 64 - 1
_BOM = b"\xef\xbb\xbf"
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # only \uD800-\uDFFF escapes can decode to a surrogate
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]')


class _Huge:
    """An integer literal outside 64 bits, kept as its digit count until the walk names where it sits."""

    __slots__ = ("digits",)

    def __init__(self, digits: int):
        self.digits = digits


def _integer(text: str) -> Any:
    if len(text) > 20:  # 2**64 has 20 digits: longer is out of range without converting (int() of 4,301 raises)
        return _Huge(len(text.lstrip("-")))
    value = int(text)
    return value if _INT_MIN <= value <= _INT_MAX else _Huge(len(text.lstrip("-")))


def decode_json(body: bytes) -> Any:
    """The JSON value of a request body: 400 when it is not UTF-8 JSON or nests past MAX_DEPTH; 422 for an integer
    past 64 bits or a lone surrogate; each error names where (a JSON Pointer)."""
    body = body[3:] if body[:3] == _BOM else body
    if not body.strip():
        raise MalformedBody("The request body is empty; send a JSON object or array.", [FieldError("", "empty")])
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody("The request body is not UTF-8 text.", [_not_utf8(body, exc.start)]) from None
    try:
        value = json.loads(text, parse_int=_integer)
    except json.JSONDecodeError as exc:
        where = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise MalformedBody(f"The request body is not valid JSON: {where}.", [FieldError("", where)]) from None
    except RecursionError:  # deeper than json itself can go: find where by scanning the text
        raise _unkeepable([FieldError(_deep_pointer(text), f"nests deeper than {MAX_DEPTH} levels")]) from None
    errors = audit(value, surrogates=_SURROGATE_ESCAPE.search(text) is not None)
    if errors:
        raise _unkeepable(errors)
    return value


def decode_as(decoder: msgspec.json.Decoder, body: bytes) -> tuple[bool, Any]:
    """(True, the typed value) when the body decodes as the decoder's type (the fast path); else (False, its plain
    JSON value) for the caller to name the bad fields. Bodies decode_json refuses never get that far."""
    body = body[3:] if body[:3] == _BOM else body
    try:
        return True, decoder.decode(body)
    except msgspec.ValidationError:
        return False, decode_json(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        decode_json(body)  # not UTF-8, not JSON, a lone surrogate, too deep: named there
        # What json takes and msgspec does not: NaN and Infinity, which JSON has no words for.
        raise MalformedBody("The request body is not valid JSON (NaN and Infinity are not JSON numbers).",
                            [FieldError("", "not JSON")]) from None


def audit(value: Any, at: tuple = (), surrogates: bool = True, most: int = 20) -> list[FieldError]:
    """What JSON allows but the app cannot keep, named by pointer: nesting past MAX_DEPTH (counted from the
    body's root, `at` being where `value` sits), integers past 64 bits, and lone surrogates (which no UTF-8
    encoder, the store's included, can write)."""
    errors: list[FieldError] = []
    root = _scalar_error(value, at, surrogates)
    if root is not None or value.__class__ not in (dict, list):
        return [root] if root is not None else []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, at)]
    key: Any  # a name in a dict, an index in a list
    while stack and len(errors) < most:
        node, where = stack.pop()
        if len(where) >= MAX_DEPTH:
            errors.append(FieldError(pointer(*where), f"nests deeper than {MAX_DEPTH} levels"))
            continue
        is_dict = node.__class__ is dict
        for key, item in node.items() if is_dict else enumerate(node):
            if is_dict and surrogates and _SURROGATE.search(key):
                errors.append(FieldError(pointer(*where, key), "the name holds a lone surrogate (\\ud800-\\udfff), "
                                                               "which is not text"))
            cls = item.__class__
            if cls is dict or cls is list:
                stack.append((item, (*where, key)))
            elif cls is _Huge or (surrogates and cls is str):
                found = _scalar_error(item, (*where, key), surrogates)
                if found is not None:
                    errors.append(found)
    return errors[:most]


def _scalar_error(value: Any, at: tuple, surrogates: bool) -> FieldError | None:
    if value.__class__ is _Huge:
        return FieldError(pointer(*at), f"an integer of {value.digits} digits is out of range (64 bits); "
                                        "send it as text")
    if surrogates and value.__class__ is str and _SURROGATE.search(value):
        return FieldError(pointer(*at), "holds a lone surrogate (\\ud800-\\udfff), which is not text")
    return None


def _unkeepable(errors: list[FieldError]) -> ProblemError:
    """Nesting past MAX_DEPTH is no body the app takes (400, as a body too deep to parse always was); integers
    out of range and lone surrogates are values it cannot keep (422)."""
    if any(e.detail.startswith("nests deeper") for e in errors):
        return MalformedBody(f"The body nests deeper than {MAX_DEPTH} levels; nothing was stored.", errors)
    return InvalidInput("The body holds values the app cannot keep; nothing was stored.", errors)


def _not_utf8(body: bytes, start: int) -> FieldError:
    """Where the first byte that is not UTF-8 sits: the string holding it (a pointer), else its offset."""
    try:
        # surrogateescape turns each bad byte into a lone surrogate, which the walk then finds.
        value = json.loads(body.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return FieldError("", f"byte {start} is not UTF-8")
    found = audit(value, most=1)
    return FieldError(found[0].pointer if found else "", f"byte {start} is not UTF-8")


def _deep_pointer(text: str) -> str:
    """The pointer of the first container past MAX_DEPTH, by scanning the text (for bodies json cannot parse)."""
    path: list[Any] = []
    arrays: list[bool] = []
    key_next = False
    for m in _TOKEN.finditer(text):
        token = m.group()
        if token in ("[", "{"):
            if len(arrays) >= MAX_DEPTH:
                return pointer(*path)
            arrays.append(token == "[")
            path.append(0 if token == "[" else "")
            key_next = token == "{"
        elif token in ("]", "}"):
            if arrays:
                arrays.pop()
                path.pop()
            key_next = False
        elif token == ",":
            if arrays and arrays[-1]:
                path[-1] += 1
            else:
                key_next = True
        elif token == ":":
            key_next = False
        elif key_next and path:
            try:
                path[-1] = json.loads(token)
            except ValueError:
                path[-1] = token[1:-1]
    return ""


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
    """What the schema cannot say cheaply: blank text, and attributes too large to store. Attributes nested past
    MAX_DEPTH are a 400, as the decoder answers them."""
    errors, deep = [], []
    for i, f in enumerate(findings):
        at = (i,) if batch else ()
        if f.eventId.isspace() or f.processArea.isspace() or f.deviationPattern.isspace() or f.caseKey.isspace() \
                or f.source.isspace():
            errors += [FieldError(pointer(*at, name), "must not be blank") for name in f.blank_fields()]
        attributes = f.attributes
        if not attributes:
            continue
        # Nesting first: str() of a value ~1,000 deep raises RecursionError. msgspec already refused
        # integers past 64 bits and lone surrogates, so only depth is left to check.
        found = [e for key, value in attributes.items() if value.__class__ in _NESTED
                 for e in audit(value, (*at, "attributes", key), surrogates=False, most=1)]
        if found:
            deep += found
        # str() runs in C; an exact JSON length would cost a Python-level encode per finding.
        elif len(str(attributes)) > MAX_ATTRIBUTES_CHARS:
            errors.append(FieldError(pointer(*at, "attributes"),
                                     f"attributes take more than {MAX_ATTRIBUTES_CHARS} characters"))
    if deep:
        raise _unkeepable(deep)
    return errors


_NESTED = (dict, list)


def _explain(data: Any, batch: bool) -> InvalidInput:
    if batch:
        errors = [e for i, item in enumerate(data)
                  for e in struct_errors(item, Finding, (i,)) + attribute_name_errors(item, (i,))]
        return invalid_batch(errors or [FieldError("", "invalid findings")])
    return InvalidInput("The finding is invalid; nothing was stored.",
                        struct_errors(data, Finding) + attribute_name_errors(data)
                        or [FieldError("", "invalid finding")])


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
    batch = body.lstrip(b" \t\r\n" + _BOM)[:1] == b"["
    typed, value = decode_as(_MANY if batch else _ONE, body)
    if not typed:
        if batch or isinstance(value, dict):
            if batch and len(value) > MAX_BATCH:
                check_batch_size(len(value))
            raise _explain(value, batch)
        raise InvalidInput("Send a finding object or a list of findings.",
                           [FieldError("", f"expected an object or an array, got {type(value).__name__}")])
    findings = value if batch else [value]
    check_batch_size(len(findings))
    problems = _content_errors(findings, batch)
    if problems:
        raise invalid_batch(problems) if batch else InvalidInput("The finding is invalid; nothing was stored.",
                                                                 problems)
    return findings
