"""CloudEvents 1.0 over HTTP on `POST /api/findings` and `POST /api/findings/celonis` (README "CloudEvents").

Three modes (github.com/cloudevents/spec v1.0.2: http-protocol-binding.md, json-format.md):
- binary: the attributes in `ce-*` headers (values percent-encoded), the body is the event's data (JSON here);
  recognised by `ce-specversion` alone, as the binding says;
  what Celonis Orchestration Engine sends (docs.celonis.com/en/cloud-events.html);
- structured: `Content-Type: application/cloudevents+json`, one object holding the attributes and `data` (or
  `data_base64` holding JSON);
- batch: `application/cloudevents-batch+json`, a JSON array of structured events.

An event's data is what the route takes without CloudEvents: a finding or a list of them (or, on the Celonis route,
a subscription envelope). `id` + `source` identify an event: the findings it carries get the eventId
`ce:<source>:<id>` (`:<index>` after it when the data is a list; `celonis-ce:` on the Celonis route), so the same
event posted twice is a duplicate.
A finding's data may leave out what the event says already: `detectedAt` is the event's `time` (else when it was
received), `caseKey` its `subject`, `source` the route's.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from ..domain.errors import FieldError, InvalidInput, ProblemError, pointer
from ..domain.findings import MAX_BATCH, Finding, instant
from . import signing
from .generic import decode_json, invalid_batch, validate_findings

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
SPEC_VERSION = "1.0"
REQUIRED = ("id", "source", "specversion", "type")
MAX_EVENT_ID = 256  # a finding's eventId (domain.findings.Key)


@dataclass(frozen=True)
class Event:
    """One event of a request: its attributes, its data (decoded JSON), and where each sits in the request."""

    id: str
    source: str
    type: str
    data: Any
    time: datetime | None = None
    subject: str | None = None
    binary: bool = False  # attributes in headers, data the whole body
    at: tuple = ()  # the event's place in a batch body: () or (k,)

    def where(self, attribute: str) -> str:
        """Where an attribute was sent: `header:ce-<name>` in binary mode, else its JSON Pointer."""
        return f"header:ce-{attribute}" if self.binary else pointer(*self.at, attribute)

    @property
    def data_at(self) -> tuple:
        """The path of the data in the body (binary: the body itself)."""
        return () if self.binary else (*self.at, "data")


def read(kind: str, header: Callable[[str], str | None], body: bytes) -> tuple[list[Event], bool] | None:
    """The request's events and whether it was a batch; None when the request is no CloudEvent. 422 names each bad
    attribute (`header:ce-id`, `/specversion`, `/0/time`); data that is not JSON is a 400 as any body's."""
    if kind == STRUCTURED:
        doc = decode_json(body)
        if not isinstance(doc, dict):
            raise InvalidInput("A structured CloudEvent is a JSON object.", [FieldError("", "expected an object")])
        return _counted([_structured(doc, (), refuse=True)]), False
    if kind == BATCH:
        doc = decode_json(body)
        if not isinstance(doc, list) or not doc:
            raise InvalidInput("A CloudEvents batch is a JSON array of events.",
                               [FieldError("", "expected an array of at least one event")])
        if len(doc) > MAX_BATCH:
            raise InvalidInput(f"A batch holds at most {MAX_BATCH} events; this one has {len(doc)}.",
                               [FieldError("", f"at most {MAX_BATCH} events per request")])
        errors: list[FieldError] = []
        events = [_structured(e, (k,), errors=errors) for k, e in enumerate(doc)]
        if errors:
            raise invalid_batch(errors)
        return _counted([e for e in events if e is not None]), True
    # The HTTP binding's marker of binary mode is ce-specversion: a stray ce-id a proxy adds turns no plain body
    # into a refused event.
    if header("ce-specversion") is None:
        return None
    sent = {name: header(f"ce-{name}") for name in (*REQUIRED, "time", "subject")}
    return _counted([_binary(sent, body)]), False


def _counted(events: list[Event]) -> list[Event]:
    """The events, unless their data hold more than MAX_BATCH findings (a list's length, else one): refused before
    anything is expanded, as 1,000 events of 1,300 findings each took 11 s to reach the same 422 after."""
    total = sum(len(e.data) if isinstance(e.data, list) else 1 for e in events)
    if total > MAX_BATCH:
        raise _too_many(total)
    return events


def _too_many(total: int) -> InvalidInput:
    return InvalidInput(f"The events carry {total} findings; a request takes at most {MAX_BATCH}.",
                        [FieldError("", f"at most {MAX_BATCH} findings per request")])


def _binary(sent: dict[str, str | None], body: bytes) -> Event:
    values = {k: unquote(v).strip() for k, v in sent.items() if v is not None}
    errors = [FieldError(f"header:ce-{name}", "required CloudEvents attribute missing")
              for name in REQUIRED if not values.get(name)]
    if values.get("specversion") and values["specversion"] != SPEC_VERSION:
        errors.append(FieldError("header:ce-specversion", f"expected {SPEC_VERSION}, got {values['specversion']!r}"))
    time = _time(values.get("time"), "header:ce-time", errors)
    if errors:
        raise InvalidInput("The CloudEvent's attributes are incomplete; nothing was stored.", errors)
    return Event(values["id"], values["source"], values["type"], decode_json(body), time,
                 values.get("subject") or None, binary=True)


def _structured(doc: Any, at: tuple, errors: list[FieldError] | None = None, refuse: bool = False) -> Any:
    if not isinstance(doc, dict):
        if errors is not None:
            errors.append(FieldError(pointer(*at), "expected an object (a structured CloudEvent)"))
        return None
    mine: list[FieldError] = []
    for name in REQUIRED:
        value = doc.get(name)
        if not isinstance(value, str) or not value.strip():
            mine.append(FieldError(pointer(*at, name), "required CloudEvents attribute: a non-empty string"))
    version = doc.get("specversion")
    if isinstance(version, str) and version.strip() and version != SPEC_VERSION:
        mine.append(FieldError(pointer(*at, "specversion"), f"expected {SPEC_VERSION!r}, got {version!r}"))
    kind = doc.get("datacontenttype")
    if kind is not None and not _json_type(kind):
        mine.append(FieldError(pointer(*at, "datacontenttype"), "expected application/json or a +json type"))
    subject = doc.get("subject")
    if subject is not None and not isinstance(subject, str):
        mine.append(FieldError(pointer(*at, "subject"), "expected a string"))
    time, when = doc.get("time"), None
    if isinstance(time, str):
        when = _time(time, pointer(*at, "time"), mine)
    elif time is not None:
        mine.append(FieldError(pointer(*at, "time"), "expected an RFC 3339 time as a string"))
    data = _data(doc, at, mine)
    if mine:
        if refuse:
            raise InvalidInput("The CloudEvent is malformed; nothing was stored.", mine)
        if errors is not None:
            errors += mine
        return None
    return Event(doc["id"], doc["source"], doc["type"], data, when, doc.get("subject") or None, at=at)


def _json_type(kind: Any) -> bool:
    if not isinstance(kind, str):
        return False
    base = kind.split(";", 1)[0].strip().lower()
    return base == "application/json" or base.endswith("+json") or base == "text/json"


def _data(doc: dict[str, Any], at: tuple, errors: list[FieldError]) -> Any:
    if "data" in doc and "data_base64" in doc:
        errors.append(FieldError(pointer(*at, "data_base64"), "send data or data_base64, not both"))
        return None
    if "data" in doc:
        return doc["data"]
    if "data_base64" not in doc:
        errors.append(FieldError(pointer(*at, "data"), "required: the finding(s) the event carries"))
        return None
    where = pointer(*at, "data_base64")
    try:
        raw = base64.b64decode(doc["data_base64"], validate=True) if isinstance(doc["data_base64"], str) else None
    except (binascii.Error, ValueError):
        raw = None
    if raw is None:
        errors.append(FieldError(where, "expected Base64 text"))
        return None
    try:
        return decode_json(raw)
    except ProblemError as exc:
        errors.append(FieldError(where, f"does not hold JSON: {exc.detail}"))
        return None


def _time(text: str | None, where: str, errors: list[FieldError]) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        errors.append(FieldError(where, "expected an RFC 3339 time, e.g. 2026-12-03T10:00:00Z"))
        return None
    try:
        return instant(parsed)
    except (ValueError, OverflowError) as exc:  # past year 9999 or before 1 once in UTC: it was a 500
        errors.append(FieldError(where, str(exc)))
        return None


def event_id(source: str, id_: str, index: int | None = None, namespace: str = "ce") -> str:
    """The eventId of a finding an event carries: `ce:<source>:<id>`, ':' and '%' in either percent-encoded so
    no two events share one; a hash (`ceh:`) when that would pass the finding's 256 characters. A route may mint
    its own `namespace` (the Celonis route's `celonis-ce`) so no other route can give its ids."""
    quoted = f"{source.replace('%', '%25').replace(':', '%3A')}:{id_.replace('%', '%25').replace(':', '%3A')}"
    suffix = "" if index is None else f":{index}"
    if len(quoted) + len(suffix) + len(namespace) + 1 > MAX_EVENT_ID:
        return f"{namespace}h:{hashlib.sha256(quoted.encode()).hexdigest()}{suffix}"
    return f"{namespace}:{quoted}{suffix}"


@dataclass
class Place:
    """Where a finding's fields came from, for a refusal to name them in the sender's terms."""

    at: tuple  # the finding in the body (its data, or an item of it)
    filled: dict[str, str] = field(default_factory=dict)  # field → where the event said it (`header:ce-subject`)
    hints: dict[str, str] = field(default_factory=dict)  # field → how to supply it, when it is missing
    origins: dict[str, Any] | None = None  # set for a finding built from a Celonis envelope (common.validated)


# (event, finding dict, its Place, whether the event's attributes are unsigned) → refusals; fills in what the route
# knows of a finding its data leaves out.
Fill = Callable[[Event, dict[str, Any], Place, bool], list[FieldError]]


def items_of(event: Event, route_source: str, now: datetime, fill: Fill | None = None, namespace: str = "ce",
             body_id: str | None = None) -> tuple[list[Any], list[Place], list[FieldError]]:
    """The finding dicts an event's data holds, completed from its attributes, each with its Place (eventIds in
    `namespace`, see event_id).

    `body_id`: the request was proven by its body's signature alone, and this is the body's id. A binary event's
    headers are then anyone's (a captured body replayed with a fresh ce-id, or aimed at another case by ce-subject):
    its findings take their eventId from the body (`<body_id>`, `:<index>` per item of a list), and a field only a
    header would give (caseKey from ce-subject, detectedAt from ce-time) is refused naming the header."""
    data, many = event.data, isinstance(event.data, list)
    if many and not data:
        return [], [], [FieldError(pointer(*event.data_at), "expected at least one finding")]
    unsigned = event.binary and body_id is not None
    items, places, errors = [], [], []
    for j, entry in enumerate(data if many else [data]):
        place = Place((*event.data_at, j) if many else event.data_at)
        item = entry
        if isinstance(entry, dict):
            item = dict(entry)
            if unsigned:
                item["eventId"] = f"{body_id}:{j}" if many else body_id
            else:
                item["eventId"] = event_id(event.source, event.id, j if many else None, namespace)
                place.filled["eventId"] = event.where("id")
            item.setdefault("source", route_source)
            if "caseKey" not in item and event.subject and unsigned:
                errors.append(FieldError(event.where("subject"), signing.not_signed("caseKey")))
            elif "caseKey" not in item and event.subject:
                item["caseKey"] = event.subject
                place.filled["caseKey"] = event.where("subject")
            elif "caseKey" not in item:
                place.hints["caseKey"] = ("send caseKey in the data" if unsigned else
                                          "send caseKey in the data or the event's subject")
            if "detectedAt" not in item and event.time is not None and unsigned:
                errors.append(FieldError(event.where("time"), signing.not_signed("detectedAt")))
            elif "detectedAt" not in item:
                item["detectedAt"] = event.time or now
                if event.time is not None:
                    place.filled["detectedAt"] = event.where("time")
            if fill is not None:
                errors += fill(event, item, place, unsigned)
        items.append(item)
        places.append(place)
    return items, places, errors


def validate(items: list[Any], places: list[Place], batch: bool, strict: bool = False,
             reserved: bool = False) -> list[Finding]:
    """validate_findings over the items of every event at once, each refusal pointed where the sender put it;
    `reserved`: findings speaking for the signed Celonis route are refused (signing.refuse_claims)."""
    if len(items) > MAX_BATCH:  # read() counted them already; kept for callers that build events themselves
        raise _too_many(len(items))
    try:
        found = validate_findings(items, strict=strict)
    except ProblemError as exc:
        errors = [repoint(e, places) for e in exc.errors]
        if isinstance(exc, InvalidInput):
            raise invalid_batch(errors) if batch else \
                InvalidInput("The event's data is invalid; nothing was stored.", errors) from None
        raise type(exc)(exc.detail, errors) from None
    if reserved and (claimed := signing.claims(found)):
        raise signing.refused_claims([repoint(FieldError(pointer(k, name), why), places)
                                      for k, name, why in claimed])
    return found


def repoint(error: FieldError, places: Sequence[Place]) -> FieldError:
    """An error of validate_findings (`/<k>/<field>...`) pointed at where the sender put that field."""
    parts = error.pointer.split("/")[1:]
    if not parts or not parts[0].isdecimal() or int(parts[0]) >= len(places):
        return error
    place, rest = places[int(parts[0])], parts[1:]
    name = rest[0] if rest else ""
    if place.origins is not None:  # a Celonis envelope: the field came from one of its parts
        origin = place.origins.get("/".join(rest[:2])) or place.origins.get(name) or place.origins[""]
        at = origin if isinstance(origin, str) else pointer(*origin)
        return FieldError(at, f"{error.detail} (as the finding's {'/'.join(rest)})" if rest else error.detail)
    if name in place.filled:
        return FieldError(place.filled[name], f"{error.detail} (as the finding's {name})")
    detail = f"{error.detail}: {place.hints[name]}" if name in place.hints else error.detail
    return FieldError(pointer(*place.at) + "".join("/" + p for p in rest), detail)


def findings(events: Sequence[Event], batch: bool, route_source: str, now: datetime,
             strict: bool = False, reserved: bool = False) -> list[Finding]:
    """The findings a request's events carry (`POST /api/findings`; `reserved` while Celonis events are signed)."""
    items: list[Any] = []
    places: list[Place] = []
    errors: list[FieldError] = []
    for event in events:
        more, where, wrong = items_of(event, route_source, now)
        items += more
        places += where
        errors += wrong
    if errors:
        raise invalid_batch(errors) if batch else InvalidInput("The event carries no finding.", errors)
    return validate(items, places, batch, strict, reserved)
