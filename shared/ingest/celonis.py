"""Celonis event-subscription callbacks (`POST /api/findings/celonis`) → normalized findings.

A body is one subscription event or a list of them. A body without `event` is normalized findings, as a Celonis
Action Flow posts them, parsed as `POST /api/findings`. What each trigger means lives in mappings/celonis.json;
the callback URI's `processArea` and `deviationPattern` query parameters win over it.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Annotated, Any

import msgspec

from ..domain.errors import FieldError, InvalidInput, pointer
from ..domain.findings import ATTRIBUTE_NAME, ATTRIBUTE_NAME_RULE, MAX_BATCH, Epoch
from .common import Normalized, iso, number, query_name, shape_errors, shown, validated, when
from .generic import check_batch_size, decode_as, invalid_batch, parse_findings

SOURCE = "celonis"
MAPPING = Path(__file__).parent / "mappings" / "celonis.json"
_ENVELOPE_KEYS = frozenset({"event", "subscriberId", "triggerId"})
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class _Field(msgspec.Struct, gc=False):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    value: Any = None
    type: str | None = None  # None: the value is kept as sent
    isIdentifier: bool | None = False


class _Event(msgspec.Struct, gc=False):
    # "celonis:" + two ids of at most 64 + this id must fit the finding's 256-character eventId.
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    identifier: str | int | None = None
    fields: list[_Field] = []


class _Envelope(msgspec.Struct, gc=False):
    subscriberId: _Id
    triggerId: _Id
    creationDate: datetime | Epoch
    event: _Event
    offset: int | None = None


_ONE = msgspec.json.Decoder(_Envelope, strict=False)
_MANY = msgspec.json.Decoder(list[_Envelope], strict=False)


@dataclass(frozen=True)
class _Settings:
    area: str | None
    pattern: str | None
    aliases: dict[str, str]
    case_fields: tuple[str, ...] | None
    kpi: tuple[tuple[str, str | None, Any], ...]  # (kpiImpact key, field holding it, else constant)
    severity_field: str | None
    severity: str | None
    root_cause_field: str | None
    list_fields: frozenset[str]
    wanted: frozenset[str]  # fields the case key, severity, root cause or impact are read from
    names: dict[str, str]  # field id → attribute name, filled as ids are seen


def normalize(body: bytes, params: Mapping[str, str]) -> Normalized:
    """Findings from Celonis subscription events (one or a list), or normalized findings from an Action Flow."""
    batch = body.lstrip(b" \t\r\n\xef\xbb\xbf")[:1] == b"["
    typed, value = decode_as(_MANY if batch else _ONE, body)
    if not typed:
        sent = value if isinstance(value, list) else [value]
        if not any(isinstance(x, dict) and _ENVELOPE_KEYS & x.keys() for x in sent):
            return Normalized(parse_findings(body))
        if len(sent) > MAX_BATCH:
            check_batch_size(len(sent))
        shapes = [e for k, x in enumerate(sent) for e in shape_errors(x, _Envelope, (k,) if batch else ())]
        raise invalid_batch(shapes or [FieldError("", "invalid Celonis event")])
    envelopes = value if batch else [value]
    check_batch_size(len(envelopes))
    errors: list[FieldError] = []
    given = {key: query_name(params, key, errors) for key in ("processArea", "deviationPattern") if key in params}
    triggers: dict[str, _Trigger] = {}
    items: list[dict[str, Any]] = []
    origins: list[dict[str, tuple]] = []
    for k, envelope in enumerate(envelopes):
        trigger = triggers.get(envelope.triggerId)
        if trigger is None:
            trigger = triggers[envelope.triggerId] = _trigger(envelope.triggerId, given, errors)
        _finding(envelope, (k,) if batch else (), *trigger, items, origins, errors)
    if errors:
        if all(e.pointer.startswith("?") for e in errors):
            raise InvalidInput("The query parameters or the mapping leave findings incomplete; nothing was stored.",
                               errors)
        raise invalid_batch(errors)
    return Normalized(validated(items, origins, invalid_batch))


@lru_cache(maxsize=4096)
def camel(field_id: str) -> str:
    """`INVOICE_ID` → `invoiceId`; ids neither UPPER_SNAKE nor snake_case stay as they are."""
    if not (field_id.isupper() or "_" in field_id):
        return field_id
    words = [w for w in re.split(r"[_\s-]+", field_id) if w]
    if not words:
        return field_id
    return words[0].lower() + "".join(w[:1].upper() + w[1:].lower() for w in words[1:])


@cache
def _mapping() -> dict[str, Any]:
    return json.loads(MAPPING.read_text(encoding="utf-8"))


@lru_cache(maxsize=512)  # keyed by what senders send, so bounded
def _settings(trigger_id: str) -> _Settings:
    mapping = _mapping()
    base, over = mapping.get("default") or {}, (mapping.get("triggers") or {}).get(trigger_id) or {}
    s = {**base, **over}
    for key in ("fieldAliases", "kpiImpact"):
        s[key] = {**(base.get(key) or {}), **(over.get(key) or {})}
    kpi = tuple((key, spec, None) if isinstance(spec, str) else (key, None, spec["value"] if isinstance(spec, dict)
                                                                  else spec) for key, spec in s["kpiImpact"].items())
    case = tuple(s.get("caseKeyFields") or ())
    wanted = {*case, s.get("severityField"), s.get("rootCauseField"), *(field for _, field, _ in kpi)} - {None}
    return _Settings(s.get("processArea"), s.get("deviationPattern"), s["fieldAliases"], case or None, kpi,
                     s.get("severityField"), s.get("severity"), s.get("rootCauseField"),
                     frozenset(s.get("listFields") or ()), frozenset(wanted), {})


_Trigger = tuple[_Settings, str | None, str | None]  # the settings, the process area, the pattern


def _trigger(trigger_id: str, given: dict[str, str | None], errors: list[FieldError]) -> _Trigger:
    s = _settings(trigger_id)
    names = []
    for key, mapped in (("processArea", s.area), ("deviationPattern", s.pattern)):
        if key not in given and not mapped:
            errors.append(FieldError(f"?{key}", f"not known for trigger {trigger_id!r}: add {key} to the "
                                                f"callback URI's query or to shared/ingest/mappings/celonis.json"))
        names.append(given.get(key, mapped))
    return s, names[0], names[1]


def _finding(envelope: _Envelope, at: tuple, s: _Settings, area: str | None, pattern: str | None,
             items: list[dict[str, Any]], origins: list[dict[str, tuple]], errors: list[FieldError]) -> None:
    event, failed = envelope.event, len(errors)
    attributes: dict[str, Any] = {}
    # (index, value) by field id and by attribute name; looked up by optional names, so None is a key no
    # field ever has.
    found: dict[str | None, tuple[int, Any]] = {}
    identifiers: list[tuple[int, Any]] = []
    fields_at = (*at, "event", "fields")
    names, wanted, lists = s.names, s.wanted, s.list_fields
    for k, f in enumerate(event.fields):
        fid, value = f.id, f.value
        if value.__class__ is not str or f.type != "STRING" or fid in lists:  # most fields are text sent as text
            try:
                value = _coerce(value, f.type, fid in lists)
            except ValueError as exc:
                errors.append(FieldError(pointer(*fields_at, k, "value"), f"{f.type} field: {exc}"))
                continue
        name = names.get(fid)
        if name is None:
            name = s.aliases.get(fid) or camel(fid)
            if not ATTRIBUTE_NAME.fullmatch(name):  # checked once per field id: valid names are cached below
                errors.append(FieldError(pointer(*fields_at, k, "id"), f"becomes the attribute {name!r}, "
                                         f"{ATTRIBUTE_NAME_RULE} (map it in fieldAliases)"))
                continue
            if len(names) < 4096:
                names[fid] = name
        attributes[name] = value
        if fid in wanted or name in wanted:
            found[fid] = found[name] = (k, value)
        if f.isIdentifier:
            identifiers.append((k, value))
    case_key, case_at = "", at  # set below, or an error drops the finding
    if s.case_fields:
        looked_up = [found.get(fid) for fid in s.case_fields]
        missing = [fid for fid, p in zip(s.case_fields, looked_up, strict=True) if p is None]
        parts = [p for p in looked_up if p is not None]
    else:
        missing, parts = [], identifiers
    if missing:
        errors.append(FieldError(pointer(*fields_at), f"no field {missing} for the case key (caseKeyFields of "
                                                      f"trigger {envelope.triggerId!r})"))
    elif parts:
        errors += [FieldError(pointer(*fields_at, k, "value"), "a case key field needs a value")
                   for k, v in parts if v is None or v == ""]
        case_key, case_at = "|".join(str(v) for _, v in parts), (*fields_at, parts[0][0], "value")
    elif event.identifier is not None:
        case_key, case_at = str(event.identifier), (*at, "event", "identifier")
    else:
        errors.append(FieldError(pointer(*at, "event", "identifier"), "no case key: send event.identifier, mark a "
                                                                      "field isIdentifier, or map caseKeyFields"))
    severity, severity_at = s.severity, fields_at
    raw_at, raw = found.get(s.severity_field) or (None, None)
    if raw not in (None, ""):
        severity, severity_at = _SEVERITY.get(str(raw).strip().lower()), (*fields_at, raw_at, "value")
        if severity is None:
            errors.append(FieldError(pointer(*severity_at), f"expected one of {', '.join(_SEVERITY)}"))
    if len(errors) > failed or area is None or pattern is None:
        return
    origin = {"": at, "eventId": (*at, "event", "id"), "caseKey": case_at, "detectedAt": (*at, "creationDate"),
              "attributes": fields_at, "kpiImpact": fields_at, "severity": severity_at, "rootCause": fields_at}
    kpi = {}
    for key, field, constant in s.kpi:
        value_at, value = found.get(field) or (None, constant if field is None else None)
        if value is not None and value != "":
            kpi[key] = value
            if value_at is not None:
                origin[f"kpiImpact/{key}"] = (*fields_at, value_at, "value")
    cause_at, cause = found.get(s.root_cause_field) or (None, None)
    if cause_at is not None:
        origin["rootCause"] = (*fields_at, cause_at, "value")
    item = {"eventId": f"celonis:{envelope.subscriberId}:{envelope.triggerId}:{event.id}", "source": SOURCE,
            "processArea": area, "deviationPattern": pattern, "caseKey": case_key,
            "detectedAt": envelope.creationDate, "attributes": attributes, "severity": severity,
            "rootCause": None if cause is None else str(cause)}
    # Without an amount or a duration the object would claim an impact of 0, hiding the severity estimate.
    if "daysSaved" in kpi or "valueAtStake" in kpi or "penaltyAvoided" in kpi:
        item["kpiImpact"] = kpi
    items.append(item)
    origins.append(origin)


_SEVERITY = {"low": "low", "medium": "medium", "high": "high", "critical": "critical", "info": "low",
             "warning": "medium", "error": "high"}
_BOOLEAN = {"true": True, "1": True, "yes": True, "y": True, "false": False, "0": False, "no": False, "n": False}


def _text(v: Any) -> str:
    if isinstance(v, (dict, list)):
        raise ValueError
    return v if isinstance(v, str) else json.dumps(v)


def _integer(v: Any) -> int | None:
    f = v if isinstance(v, int) and not isinstance(v, bool) else number(v)
    if f is not None and not float(f).is_integer():
        raise ValueError
    return None if f is None else int(f)


def _date(v: Any) -> str | None:
    if isinstance(v, str):
        return iso(when(v.strip())) if v.strip() else None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError
    return iso(v)  # epoch seconds or milliseconds, told apart by magnitude


def _boolean(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    word = str(v).strip().lower()
    return _BOOLEAN[word] if word else None  # KeyError: not a boolean


def _list(v: Any) -> list[str]:
    return [_text(x) for x in v] if isinstance(v, list) else [p.strip() for p in _text(v).split(",") if p.strip()]


# Celonis names its field types STRING, INTEGER, FLOAT, DATE, BOOLEAN; the other spellings cost nothing to accept.
_COERCE = {**dict.fromkeys(("STRING", "TEXT"), (_text, "text")),
           **dict.fromkeys(("INTEGER", "INT", "LONG"), (_integer, "an integer")),
           **dict.fromkeys(("FLOAT", "DOUBLE", "DECIMAL", "NUMBER"), (number, "a number")),
           **dict.fromkeys(("DATE", "DATETIME", "TIMESTAMP"), (_date, "a date (ISO-8601 or epoch s/ms)")),
           **dict.fromkeys(("BOOLEAN", "BOOL"), (_boolean, "true or false"))}
_LIST = (_list, "comma-separated text or a list of text")


def _coerce(value: Any, kind: str | None, as_list: bool) -> Any:
    """The value as its Celonis type says; a type not known here keeps the value as sent."""
    entry = _LIST if as_list else (_COERCE.get(kind) or _COERCE.get(kind.upper())) if kind else None
    if value is None or entry is None:
        return value
    try:
        return entry[0](value)
    except (ValueError, TypeError, KeyError, OverflowError, OSError):
        raise ValueError(f"expected {entry[1]}, got {shown(value)}") from None
