"""Normalized findings (`POST /api/findings`), and the one decoder of every JSON request body.

The happy path decodes and validates in one msgspec call. When it fails, msgspec names only the
first problem, so the error path walks the same Struct fields to name every bad one. A tolerant reader: a
field this app does not know (at the top level of a finding or in its kpiImpact) is kept under `extensions`
rather than refusing the batch, unless the caller asks for strict reading; only then is the body walked.
Every route's JSON body goes through `decode_json` (or `decode_as`, its typed fast path): a body that is not
JSON, not UTF-8, nested past MAX_DEPTH or holding NaN/Infinity (which Python's json takes) is a 400, and what JSON
allows but the app cannot keep (an integer past 64 bits, a number past float's range, a lone surrogate) a 422; each
names where it is.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..domain import kpi as kpis
from ..domain.errors import FieldError, InvalidInput, MalformedBody, ProblemError, pointer
from ..domain.findings import (
    EPOCH_MS_THRESHOLD,
    MAX_AHEAD,
    MAX_ATTRIBUTES_CHARS,
    MAX_BATCH,
    MAX_EXTENSIONS_BYTES,
    MAX_KPIS,
    MAX_SIGNALS,
    Finding,
    KpiImpact,
    Signal,
    attribute_name_errors,
    instant,
    signal_name_errors,
)

_ONE = msgspec.json.Decoder(Finding, strict=False)
_MANY = msgspec.json.Decoder(list[Finding], strict=False)
_FINDING_FIELDS = frozenset(f.encode_name for f in msgspec.structs.fields(Finding))
_KPI_FIELDS = frozenset(f.encode_name for f in msgspec.structs.fields(KpiImpact))
_ENCODE = msgspec.json.encode
_PATH = re.compile(r"\.([^.\[]+)|\[(\d+)\]")

# The deepest body the app takes, an action's data contract, nests 9 levels. Python's recursion limit (1,000
# frames) is shared by every frame of a request, and json, msgspec and the audit masking recurse once a level:
# arrays 1,000 deep made a 500. 32 leaves room for any real document.
MAX_DEPTH = 32
# Integers are 64-bit, as msgspec decodes them and Table Storage keeps them (Edm.Int64); json's int() raises
# ValueError past 4,300 digits, which a body of 4,401 digits turned into a 500.
_INT_MIN, _INT_MAX = -2 ** 63, 2 ** 64 - 1
_BOM = b"\xef\xbb\xbf"
_PLAIN = msgspec.json.Decoder().decode
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # only \uD800-\uDFFF escapes can decode to a surrogate
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]')
_NOT_JSON = "is not a JSON number"


class _Huge:
    """An integer literal outside 64 bits, kept as its digit count until the walk names where it sits."""

    __slots__ = ("digits",)

    def __init__(self, digits: int):
        self.digits = digits


class _Constant:
    """NaN, Infinity or -Infinity in a body, kept as its word until the walk names where it sits: json takes them,
    and NaN compares false with every limit (a contract's maximum, an approval threshold), so it would pass them."""

    __slots__ = ("word",)

    def __init__(self, word: str):
        self.word = word


def _integer(text: str) -> Any:
    if len(text) > 20:  # 2**64 has 20 digits: longer is out of range without converting (int() of 4,301 raises)
        return _Huge(len(text.lstrip("-")))
    value = int(text)
    return value if _INT_MIN <= value <= _INT_MAX else _Huge(len(text.lstrip("-")))


def decode_json(body: bytes) -> Any:
    """The JSON value of a request body: 400 when it is not UTF-8 JSON (NaN and Infinity are not) or nests past
    MAX_DEPTH; 422 for an integer past 64 bits, a number past float's range or a lone surrogate; each error names
    where (a JSON Pointer)."""
    body = body[3:] if body[:3] == _BOM else body
    if not body.strip():
        raise MalformedBody("The request body is empty; send a JSON object or array.", [FieldError("", "empty")])
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody("The request body is not UTF-8 text.", [_not_utf8(body, exc.start)]) from None
    try:
        value = json.loads(text, parse_int=_integer, parse_constant=_Constant)
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
        return False, plain_json(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        decode_json(body)  # not UTF-8, not JSON, a lone surrogate, too deep: named there
        # decode_json took what msgspec refused: nothing should be left, but a body is never taken on doubt.
        raise MalformedBody("The request body is not valid JSON (NaN and Infinity are not JSON numbers).",
                            [FieldError("", "not JSON")]) from None


def plain_json(body: bytes) -> Any:
    """decode_json's value of a body, decoded by msgspec when it can: a sender's unknown fields make the typed decode
    refuse every finding of the tolerant reader's bodies, and decode_json took ~8 µs a finding of those (json in
    Python, then a walk for what it must name) where msgspec and one lean walk take ~3. Anything either doubts (not
    JSON, not UTF-8, a lone surrogate, nesting past MAX_DEPTH, an integer past 64 bits) is decode_json's to name."""
    try:
        value = _PLAIN(body)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return decode_json(body)
    return value if _within_limits(value) else decode_json(body)


def _within_limits(value: Any) -> bool:
    """Whether a decoded value nests at most MAX_DEPTH levels and holds only 64-bit integers: msgspec takes both
    further (it decodes 40 digits into an int). Lone surrogates never reach here: msgspec refuses them. Level by
    level: ~15% faster than a stack of (node, depth) pairs."""
    cls = value.__class__
    if cls is not dict and cls is not list:
        return cls is not int or _INT_MIN <= value <= _INT_MAX
    level, depth, low, high = [value], 0, _INT_MIN, _INT_MAX
    while level:
        if depth >= MAX_DEPTH:
            return False
        below: list[Any] = []
        push = below.append
        for node in level:
            for item in node.values() if node.__class__ is dict else node:
                cls = item.__class__
                if cls is dict or cls is list:
                    push(item)
                elif cls is int and (item > high or item < low):
                    return False
        level, depth = below, depth + 1
    return True


def audit(value: Any, at: tuple = (), surrogates: bool = True, most: int = 20) -> list[FieldError]:
    """What JSON allows but the app cannot keep, named by pointer: nesting past MAX_DEPTH (counted from the
    body's root, `at` being where `value` sits), integers past 64 bits, numbers that are not finite (NaN, Infinity,
    1e999), and lone surrogates (which no UTF-8 encoder, the store's included, can write)."""
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
            elif cls is _Huge or cls is _Constant or cls is float or (surrogates and cls is str):
                found = _scalar_error(item, (*where, key), surrogates)
                if found is not None:
                    errors.append(found)
    return errors[:most]


def _scalar_error(value: Any, at: tuple, surrogates: bool) -> FieldError | None:
    if value.__class__ is _Huge:
        return FieldError(pointer(*at), f"an integer of {value.digits} digits is out of range (64 bits); "
                                        "send it as text")
    if value.__class__ is _Constant:
        return FieldError(pointer(*at), f"{value.word} {_NOT_JSON}; send a finite number")
    if value.__class__ is float and not math.isfinite(value):  # 1e999 from a body; NaN too from a caller's dict
        return FieldError(pointer(*at), "NaN is not a finite number" if value != value else
                          "the number is past the range of a float (±1.8e308); send a finite number")
    if surrogates and value.__class__ is str and _SURROGATE.search(value):
        return FieldError(pointer(*at), "holds a lone surrogate (\\ud800-\\udfff), which is not text")
    return None


def _unkeepable(errors: list[FieldError]) -> ProblemError:
    """Nesting past MAX_DEPTH is no body the app takes (400, as a body too deep to parse always was); integers
    out of range and lone surrogates are values it cannot keep (422)."""
    if any(e.detail.startswith("nests deeper") for e in errors):
        return MalformedBody(f"The body nests deeper than {MAX_DEPTH} levels; nothing was stored.", errors)
    if any(_NOT_JSON in e.detail for e in errors):
        return MalformedBody("The request body is not valid JSON (NaN and Infinity are not JSON numbers); nothing "
                             "was stored.", errors)
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
    """What the schema cannot say cheaply: blank text, a detection time out of range once in UTC or more than
    MAX_AHEAD after the clock, attributes and extensions too large to store, a named KPI without its estimate
    (kpi.errors), signal names that are no identifiers. Attributes or extensions nested past MAX_DEPTH are a 400,
    as the decoder answers them."""
    errors, deep = [], []
    kpi_type = KpiImpact
    # The wall clock, which is the app's (SystemClock) wherever it runs: the readers are given no clock. A test's
    # fixed clock lies in its past, so a test may still date findings after its own clock.
    latest = datetime.now(UTC) + MAX_AHEAD
    latest_epoch, utc_zone = latest.timestamp(), UTC
    for i, f in enumerate(findings):
        at = (i,) if batch else ()
        if f.eventId.isspace() or f.processArea.isspace() or f.deviationPattern.isspace() or f.caseKey.isspace() \
                or f.source.isspace():
            errors += [FieldError(pointer(*at, name), "must not be blank") for name in f.blank_fields()]
        detected = f.detectedAt
        # One comparison for a UTC time or an epoch; other offsets and naive times convert first. ~0.13 µs a finding
        # (_content_errors of the bench's findings 1.47 -> 1.60 µs, best of 30 × 20,000).
        if detected.__class__ is datetime:
            if detected.tzinfo is not utc_zone or detected > latest:
                errors += _detected_errors(detected, latest, at)
        elif (detected / 1000 if detected > EPOCH_MS_THRESHOLD else detected) > latest_epoch:  # type: ignore[operator]
            errors += _detected_errors(detected, latest, at)
        kpi = f.kpiImpact
        # Four attribute reads for the findings that name no KPI (~0.1 µs); only the others are checked.
        if kpi.__class__ is list or (kpi.__class__ is kpi_type and (
                kpi.metric is not None or kpi.estimate is not None or kpi.unit is not None
                or kpi.direction is not None)):
            errors += kpis.errors(kpi, (*at, "kpiImpact"))
        if f.rootCause.__class__ is list:
            errors += signal_name_errors(f, at)
        extensions = f.extensions
        if extensions:
            # Most senders' extra fields are flat (a typo, an id): the walk only for those holding objects or lists.
            found = None
            for value in extensions.values():
                if value.__class__ is dict or value.__class__ is list:
                    found = audit(extensions, (*at, "extensions"), surrogates=False, most=1)
                    break
            if found:
                deep += found
            else:
                size = len(_ENCODE(extensions))
                if size > MAX_EXTENSIONS_BYTES:
                    errors.append(FieldError(pointer(*at, "extensions"),
                                             f"unknown fields take {size:,} bytes of JSON, over the "
                                             f"{MAX_EXTENSIONS_BYTES:,} kept per finding: check the field names"))
        attributes = f.attributes
        if not attributes:
            continue
        # Nesting first: str() of a value ~1,000 deep raises RecursionError. msgspec already refused
        # integers past 64 bits and lone surrogates, so only depth is left to check.
        found = [e for key, value in attributes.items() if value.__class__ in _NESTED
                 for e in audit(value, (*at, "attributes", key), surrogates=False, most=1)]
        if found:
            deep += found
        elif _json_chars(attributes) > MAX_ATTRIBUTES_CHARS:
            errors.append(FieldError(pointer(*at, "attributes"),
                                     f"attributes take more than {MAX_ATTRIBUTES_CHARS} characters"))
    if deep:
        raise _unkeepable(deep)
    return errors


_NESTED = (dict, list)


def _detected_errors(detected: datetime | float, latest: datetime, at: tuple) -> list[FieldError]:
    """A detection time out of datetime's range once in UTC, or later than `latest` (the clock + MAX_AHEAD)."""
    try:
        when = instant(detected)
    except ValueError as exc:
        return [FieldError(pointer(*at, "detectedAt"), str(exc))]
    if when <= latest:
        return []
    minutes = int(MAX_AHEAD.total_seconds() // 60)
    return [FieldError(pointer(*at, "detectedAt"), f"{when.isoformat().replace('+00:00', 'Z')} is in the future: "
                                                   f"more than {minutes} minutes after the app's clock; send when "
                                                   "the miner detected the deviation")]


def _json_chars(value: Any) -> int:
    """Characters of `value` as compact JSON, as the store writes it (entities._dumps). msgspec encodes in C:
    ~0.25 µs for a finding's attributes where str() took ~1.7 (the bench's findings, timeit); UTF-8 bytes are
    never fewer than characters, so only a value past the bound in bytes is decoded to count them."""
    try:
        encoded = _ENCODE(value)
    except TypeError:  # a value a normalizer built that JSON has no word for: its text is the measure
        return len(str(value))
    return len(encoded) if len(encoded) <= MAX_ATTRIBUTES_CHARS else len(encoded.decode())


# Fields holding an object or a list of objects: msgspec names only the first problem inside them.
_NESTED_STRUCTS = (("kpiImpact", KpiImpact, MAX_KPIS), ("rootCause", Signal, MAX_SIGNALS))


def finding_errors(item: Any, at: tuple = ()) -> list[FieldError]:
    """Every bad field of one finding as sent, inside its kpiImpact and rootCause objects too."""
    errors = struct_errors(item, Finding, at)
    if not isinstance(item, dict):
        return errors
    for name, typ, most in _NESTED_STRUCTS:
        value = item.get(name)
        if isinstance(value, dict):
            inside = struct_errors(value, typ, (*at, name))
        elif isinstance(value, list) and len(value) <= most:
            inside = [e for j, entry in enumerate(value) for e in struct_errors(entry, typ, (*at, name, j))]
        else:
            continue
        if inside:
            base = pointer(*at, name)
            errors = [e for e in errors if e.pointer != base and not e.pointer.startswith(base + "/")] + inside
    return errors + attribute_name_errors(item, at) + signal_name_errors(item, at)


def _explain(data: Any, batch: bool) -> InvalidInput:
    if batch:
        errors = [e for i, item in enumerate(data) for e in finding_errors(item, (i,))]
        return invalid_batch(errors or [FieldError("", "invalid findings")])
    return InvalidInput("The finding is invalid; nothing was stored.",
                        finding_errors(data) or [FieldError("", "invalid finding")])


def tolerated(item: Any) -> Any:
    """A finding as sent with the fields this app does not know moved under `extensions`: top-level ones by
    name, a kpiImpact object's as "kpiImpact.<name>", a kpiImpact list entry's as "kpiImpact.<index>.<name>"
    (several KPIs may carry the same extra field). An `extensions` object sent is kept; a moved field of the
    same name wins. The item itself when there is nothing to move (or it is no object); never changes it."""
    if not isinstance(item, dict):
        return item
    # The unknown names by one set difference in C; their values in the order sent.
    extra = item.keys() - _FINDING_FIELDS
    moved: dict[str, Any] = ({} if not extra else {k: item[k] for k in extra} if len(extra) == 1 else
                             {k: v for k, v in item.items() if k in extra})
    kpi = item.get("kpiImpact")
    if isinstance(kpi, dict):
        if not _KPI_FIELDS.issuperset(kpi):
            moved.update((f"kpiImpact.{k}", v) for k, v in kpi.items() if k not in _KPI_FIELDS)
            kpi = {k: v for k, v in kpi.items() if k in _KPI_FIELDS}
    elif isinstance(kpi, list) and any(isinstance(k, dict) and not _KPI_FIELDS.issuperset(k) for k in kpi):
        kpi = list(kpi)
        for j, entry in enumerate(kpi):
            if isinstance(entry, dict) and not _KPI_FIELDS.issuperset(entry):
                moved.update((f"kpiImpact.{j}.{k}", v) for k, v in entry.items() if k not in _KPI_FIELDS)
                kpi[j] = {k: v for k, v in entry.items() if k in _KPI_FIELDS}
    if not moved:
        return item
    out = dict(item)
    for k in extra:
        del out[k]
    if "kpiImpact" in out:
        out["kpiImpact"] = kpi
    sent = item.get("extensions")
    # An `extensions` that is no object stays as sent, so its 422 names it; what was moved then goes with it.
    out["extensions"] = {**sent, **moved} if isinstance(sent, dict) else sent if "extensions" in item else moved
    return out


def _convert(items: list[Any], strict: bool) -> list[Finding]:
    """The findings of decoded items; 422 naming each bad field. Not strict: unknown fields go to extensions."""
    try:
        return msgspec.convert(items, list[Finding], strict=False)
    except msgspec.ValidationError:
        if strict:
            raise _explain(items, True) from None
    kept = [tolerated(x) for x in items]
    try:
        return msgspec.convert(kept, list[Finding], strict=False)
    except msgspec.ValidationError:
        raise _explain(kept, True) from None


def validate_findings(items: Sequence[Any], strict: bool = False) -> list[Finding]:
    """Validate already-decoded normalized findings (a list of dicts); 422 names each bad field. Fields the app
    does not know are kept under `extensions` (named back to the sender), or with `strict` refused by name."""
    items = list(items)
    check_batch_size(len(items))
    findings = _convert(items, strict)
    problems = _content_errors(findings, True)
    if problems:
        raise invalid_batch(problems)
    return findings


def is_array(body: bytes) -> bool:
    """Whether a JSON body is an array (a batch), told from its first byte past blanks and a BOM."""
    return body.lstrip(b" \t\r\n" + _BOM)[:1] == b"["


def parse_findings(body: bytes, strict: bool = False) -> list[Finding]:
    """Parse `POST /api/findings`: a finding object or a list of up to MAX_BATCH of them. Unknown fields are kept
    under `extensions`, or with `strict` a 422 naming each; wrong types in known fields are always a 422."""
    batch = is_array(body)
    typed, value = decode_as(_MANY if batch else _ONE, body)
    if not typed:
        if not (batch or isinstance(value, dict)):
            raise InvalidInput("Send a finding object or a list of findings.",
                               [FieldError("", f"expected an object or an array, got {type(value).__name__}")])
        if batch and len(value) > MAX_BATCH:
            check_batch_size(len(value))
        if strict:
            raise _explain(value, batch)
        # The slow path only: a body of known fields decoded above in one call.
        kept = [tolerated(x) for x in value] if batch else tolerated(value)
        try:
            value = msgspec.convert(kept, list[Finding] if batch else Finding, strict=False)
        except msgspec.ValidationError:
            raise _explain(kept, batch) from None
    findings = value if batch else [value]
    check_batch_size(len(findings))
    problems = _content_errors(findings, batch)
    if problems:
        raise invalid_batch(problems) if batch else InvalidInput("The finding is invalid; nothing was stored.",
                                                                 problems)
    return findings
