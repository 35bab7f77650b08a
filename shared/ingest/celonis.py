"""Celonis event-subscription callbacks (`POST /api/findings/celonis`) → normalized findings.

A body is one subscription event or a list of them. A body without `event` is normalized findings, as a Celonis
Action Flow posts them, parsed as `POST /api/findings`. What each trigger means lives in mappings/celonis.json;
the callback URI's `processArea` and `deviationPattern` query parameters win over it. The same bodies may come as
the data of CloudEvents (cloudevents.py; an Orchestration Engine event's data holds finding fields): `from_events`.
Each subscription event's offset and creation time are handed back (`deliveries`) for services/sources.py.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from functools import cache, lru_cache, partial
from pathlib import Path
from typing import Annotated, Any

import msgspec

from ..domain.errors import FieldError, InvalidInput, pointer
from ..domain.findings import ATTRIBUTE_NAME, ATTRIBUTE_NAME_RULE, MAX_BATCH, Epoch, instant
from ..domain.offsets import MAX_OFFSET, Delivery
from . import cloudevents, signing
from .cloudevents import Event, Place
from .common import Normalized, iso, number, query_name, shape_errors, shown, validated, when
from .generic import check_batch_size, decode_as, invalid_batch, is_array, parse_findings

SOURCE = "celonis"
# This route's CloudEvents ids (`celonis-ce:<source>:<id>`), never what the unsigned generic route gives the same
# event (`ce:`): reserved, with this route's other namespaces, in signing.NAMESPACES.
CE_NAMESPACE = "celonis-ce"
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
    offset: Annotated[int, msgspec.Meta(ge=0, lt=MAX_OFFSET)] | None = None


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


@dataclass
class Received(Normalized):
    """The findings of one request, and the subscription events they came in (offset, creation time each)."""

    deliveries: list[Delivery] = dataclass_field(default_factory=list)


def normalize(body: bytes, params: Mapping[str, str], strict: bool = False, signed: bool = False) -> Received:
    """Findings from Celonis subscription events (one or a list), or normalized findings from an Action Flow
    (`strict`: unknown fields refused by name rather than kept under `extensions`; `signed`: proven by the body's
    signature alone, so the query may not name the pattern)."""
    batch = is_array(body)
    typed, value = decode_as(_MANY if batch else _ONE, body)
    if not typed:
        sent = value if isinstance(value, list) else [value]
        if not _envelopes_in(value):
            # An Action Flow's findings come from Celonis: without a source of their own they are Celonis', so its
            # pattern aliases (catalog/aliases.json "celonis") apply. "generic" is the Finding's default: sent or
            # not, it says nothing about the sender here.
            return Received([f if f.source != "generic" else msgspec.structs.replace(f, source=SOURCE)
                             for f in parse_findings(body, strict=strict)])
        if len(sent) > MAX_BATCH:
            check_batch_size(len(sent))
        shapes = [e for k, x in enumerate(sent) for e in shape_errors(x, _Envelope, (k,) if batch else ())]
        raise invalid_batch(shapes or [FieldError("", "invalid Celonis event")])
    envelopes = value if batch else [value]
    check_batch_size(len(envelopes))
    errors: list[FieldError] = []
    given = _given(params, errors, signed)
    triggers: dict[str, _Trigger] = {}
    items: list[dict[str, Any]] = []
    origins: list[dict[str, Any]] = []
    deliveries: list[Delivery] = []
    for k, envelope in enumerate(envelopes):
        at = (k,) if batch else ()
        _finding(envelope, at, *_cached_trigger(triggers, envelope.triggerId, given, errors), items, origins, errors)
        _delivery(envelope, at, deliveries, errors)
    _refuse(errors)
    return Received(validated(items, origins, invalid_batch), deliveries=deliveries)


def from_events(events: Sequence[Event], batch: bool, params: Mapping[str, str], now: datetime,
                strict: bool = False, signed_body: bytes | None = None) -> Received:
    """Findings from the data of CloudEvents: subscription envelopes as `normalize` takes them, or finding fields
    (an Orchestration Engine event, an Action Flow) completed from the event (cloudevents.items_of), the query's
    processArea and deviationPattern, then the mapping's `cloudEventTypes` entry for the event's type.

    `signed_body`: the request was proven by this body's x-emporix-hmac alone. The query and a binary event's
    headers are then unsigned: the finding's identity must be in the body, and a binary event's eventId is the
    body's, `oe:<sha256 hex[:40]>`, so the same signed bytes sent again with a fresh ce-id are a duplicate."""
    errors: list[FieldError] = []
    given = _given(params, errors, signed_body is not None)
    body_id = None if signed_body is None else f"oe:{hashlib.sha256(signed_body).hexdigest()[:40]}"
    triggers: dict[str, _Trigger] = {}
    items: list[Any] = []
    places: list[Place] = []
    deliveries: list[Delivery] = []
    for event in events:
        if not _envelopes_in(event.data):
            more, where, wrong = cloudevents.items_of(event, SOURCE, now, partial(_fill, given), CE_NAMESPACE,
                                                      body_id)
            items += more
            places += where
            errors += wrong
            continue
        many = isinstance(event.data, list)
        for j, sent in enumerate(event.data if many else [event.data]):
            at = (*event.data_at, j) if many else event.data_at
            try:
                envelope = msgspec.convert(sent, _Envelope, strict=False)
            except msgspec.ValidationError:
                errors += shape_errors(sent, _Envelope, at) or [FieldError(pointer(*at), "invalid Celonis event")]
                continue
            origins: list[dict[str, Any]] = []
            _finding(envelope, at, *_cached_trigger(triggers, envelope.triggerId, given, errors), items, origins,
                     errors)
            _delivery(envelope, at, deliveries, errors)
            if origins:  # keeps its `celonis:` eventId: the same subscription event sent plain is the same event
                places.append(Place(at, origins=origins[0]))
    _refuse(errors)
    return Received(cloudevents.validate(items, places, batch, strict), deliveries=deliveries)


def _envelopes_in(value: Any) -> bool:
    sent = value if isinstance(value, list) else [value]
    return any(isinstance(x, dict) and _ENVELOPE_KEYS & x.keys() for x in sent)


def _given(params: Mapping[str, str], errors: list[FieldError], signed: bool = False) -> dict[str, str | None]:
    if signed:  # the query is no part of a signed body: it may not say what the finding is
        errors += [FieldError(f"?{key}", signing.not_signed(key)) for key in ("processArea", "deviationPattern")
                   if key in params]
        return {}
    return {key: query_name(params, key, errors) for key in ("processArea", "deviationPattern") if key in params}


def _cached_trigger(triggers: dict[str, _Trigger], trigger_id: str, given: dict[str, str | None],
                    errors: list[FieldError]) -> _Trigger:
    trigger = triggers.get(trigger_id)
    if trigger is None:
        trigger = triggers[trigger_id] = _trigger(trigger_id, given, errors)
    return trigger


def _delivery(envelope: _Envelope, at: tuple, deliveries: list[Delivery], errors: list[FieldError]) -> None:
    # Read before the findings are validated: a creationDate that leaves the years 1 to 9999 once in UTC is named
    # here (it was a 500).
    where = pointer(*at, "creationDate")
    try:
        deliveries.append(Delivery(envelope.subscriberId, envelope.offset, instant(envelope.creationDate), where))
    except ValueError as exc:
        errors.append(FieldError(where, str(exc)))


def _refuse(errors: list[FieldError]) -> None:
    if not errors:
        return
    if any(e.detail.startswith(signing.NOT_SIGNED) for e in errors):
        raise InvalidInput("x-emporix-hmac signs only the body: what the finding is must be in it; nothing was "
                           "stored.", errors)
    if all(e.pointer.startswith("?") for e in errors):
        raise InvalidInput("The query parameters or the mapping leave findings incomplete; nothing was stored.",
                           errors)
    raise invalid_batch(errors)


def _fill(given: dict[str, str | None], event: Event, item: dict[str, Any], place: Place,
          unsigned: bool) -> list[FieldError]:
    """processArea and deviationPattern of an event's finding: its data's, else the query's, else the mapping's
    entry for the event's type (`cloudEventTypes`); from the data alone when the event's headers are `unsigned`."""
    mapped = (_mapping().get("cloudEventTypes") or {}).get(event.type) or {}
    errors = []
    for key in ("processArea", "deviationPattern"):
        if key in item:
            continue
        if given.get(key):
            item[key], place.filled[key] = given[key], f"?{key}"
        elif mapped.get(key) and unsigned:
            errors.append(FieldError(event.where("type"), signing.not_signed(key)))
        elif mapped.get(key):
            item[key], place.filled[key] = mapped[key], event.where("type")
        elif unsigned:
            place.hints[key] = f"send {key} in the event's data"
        else:
            place.hints[key] = (f"send {key} in the event's data or the query (?{key}=), or map the event type "
                                f"{event.type!r} under cloudEventTypes in shared/ingest/mappings/celonis.json")
    return errors


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
    # Without an amount, a duration or a named KPI's estimate the object would claim an impact of 0, hiding the
    # severity estimate.
    if "daysSaved" in kpi or "valueAtStake" in kpi or "penaltyAvoided" in kpi or "estimate" in kpi:
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
