"""Power Automate Process Mining (`POST /api/findings/process-mining`) → normalized findings.

Two shapes: the connector trigger "When a Process data is refreshed" forwarded as-is (JSON), or the designer's
CSV export. Each case of a case-scope business rule becomes one finding; cases the rule rates OK are skipped.
"""
from __future__ import annotations

import csv
import io
from collections import namedtuple
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import msgspec

from ..domain.errors import FieldError, InvalidInput, MalformedBody, pointer
from ..domain.findings import ATTRIBUTE_NAME, ATTRIBUTE_NAME_RULE, MAX_BATCH, Epoch
from .common import Normalized, iso, number, query_name, shape_errors, shown, validated, when
from .generic import check_batch_size, decode_as

SOURCE = "process-mining"
# Microsoft documents the categories by name only (Error, Warning, OK: learn.microsoft.com "Business rules",
# "Process mining trigger"), not their integers. 0 = OK, 1 = Warning, 2 = Error is what the refresh bodies here
# carry (samples/process-mining-o2c-sla.json: the rows per integer match okCount, warningCount, errorCount).
# Any other integer, or none, is taken as Undefined: still a finding, without a severity.
_SKIP = "ok"
_CATEGORY: dict[int, str | None] = {0: _SKIP, 1: "medium", 2: "high"}
_WORDS: dict[str, str | None] = {"ok": _SKIP, "warning": "medium", "error": "high", "undefined": None,
                                    "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
_UNITS = ("days", "hours", "money")
# Designer export headers, matched case-insensitively in any order; Index and Event Count may be left out.
_COLUMNS = ("name", "index", "start date", "end date", "event count", "metric value", "severity")
_REQUIRED = ("name", "start date", "end date", "metric value", "severity")
# One reported case, from either shape; paths say where its parts sit in the body, for error pointers.
_Row = namedtuple("_Row", "name index start end count metric severity raw_start raw_end paths")


class _Stat(msgspec.Struct, gc=False):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    valueIndex: int | None = None  # without one, the position in the list stands in
    startDate: datetime | Epoch | None = None
    endDate: datetime | Epoch | None = None
    count: Annotated[int, msgspec.Meta(ge=0)] | None = None
    value: float | str | None = None  # the connector sends the metric as text
    category: int | None = None


class _Refresh(msgspec.Struct, gc=False):
    businessRuleStatistics: list[_Stat]
    businessRuleSummaryStatistics: dict[str, Any] | None = None


_DECODER = msgspec.json.Decoder(_Refresh | list[_Stat], strict=False)


def normalize(body: bytes, content_type: str, params: Mapping[str, str]) -> Normalized:
    """Findings from a refresh trigger body (JSON) or a designer CSV export; OK-rated cases are only counted."""
    options = _options(params)
    rows = _csv_rows(body) if content_type.lower().startswith("text/csv") else _json_rows(body)
    if not rows:
        check_batch_size(0)
    kept = [row for row in rows if row.severity != _SKIP]
    if len(kept) > MAX_BATCH:
        check_batch_size(len(kept))
    items: list[dict] = []
    origins: list[dict] = []
    errors = [e for row in kept if (e := _finding(options, row, items, origins))]
    if errors:
        raise _rejected(errors)
    return Normalized(validated(items, origins, _rejected) if items else [], len(rows) - len(kept))


# --- Process Mining ----------------------------------------------------------------------------------------

def _options(params: Mapping[str, str]) -> tuple:
    errors: list[FieldError] = []
    area, pattern = query_name(params, "processArea", errors), query_name(params, "deviationPattern", errors)
    errors += [FieldError(f"?{key}", "required query parameter") for key in ("processArea", "deviationPattern")
               if key not in params]
    rule = query_name(params, "businessRule", errors)
    # The mined case id is often a business key an action needs (orderId): copy it into that attribute.
    case_attribute = params.get("caseKeyAttribute") or None
    if case_attribute is not None and not ATTRIBUTE_NAME.fullmatch(case_attribute):
        errors.append(FieldError("?caseKeyAttribute", ATTRIBUTE_NAME_RULE))
    unit = (params.get("metricUnit") or "").strip().lower() or None
    if unit is not None and unit not in _UNITS:
        errors.append(FieldError("?metricUnit", f"one of {', '.join(_UNITS)}"))
    try:
        cost = number(params.get("costOfDelayPerDay"))
    except ValueError:
        cost = -1.0
    if cost is not None and cost < 0:
        errors.append(FieldError("?costOfDelayPerDay", "a number of at least 0: the money a day of delay costs"))
    elif cost is not None and unit not in ("days", "hours"):
        errors.append(FieldError("?metricUnit", "costOfDelayPerDay needs metricUnit=days or metricUnit=hours"))
    elif cost is None and unit in ("days", "hours"):
        errors.append(FieldError("?costOfDelayPerDay", f"required with metricUnit={unit}: what a day of delay costs"))
    if errors:
        raise InvalidInput("The query parameters are invalid; nothing was stored.", errors)
    return area, pattern, rule, unit, cost, case_attribute


def _rejected(errors: list[FieldError]) -> InvalidInput:
    # Items sit at /{i}, /businessRuleStatistics/{i} or /rows/{i}.
    indexes = sorted({int(s) for e in errors for s in e.pointer.split("/")[1:3] if s.isdecimal()})
    detail = (f"{len(indexes)} item(s) are invalid (indexes {indexes[:20]}); nothing was stored." if indexes
              else "The body is invalid; nothing was stored.")
    return InvalidInput(detail, errors, invalidIndexes=indexes)


def _json_rows(body: bytes) -> list[_Row]:
    typed, data = decode_as(_DECODER, body)
    if not typed:
        errors = ([e for k, v in enumerate(data) for e in shape_errors(v, _Stat, (k,))] if isinstance(data, list)
                  else shape_errors(data, _Refresh))
        raise _rejected(errors or [FieldError("", "expected a refresh trigger body")])
    stats, base = (data, ()) if isinstance(data, list) else (data.businessRuleStatistics, ("businessRuleStatistics",))
    rows, errors = [], []
    for k, s in enumerate(stats):
        at = (*base, k)
        try:
            metric = number(s.value)
        except ValueError:
            errors.append(FieldError(pointer(*at, "value"), f"expected a number, got {shown(s.value)}"))
            continue
        start, end = s.startDate or None, s.endDate or None  # the connector sends 0 for "not set"
        index = k if s.valueIndex is None else s.valueIndex
        rows.append(_Row(s.name, index, start, end, s.count, metric, _CATEGORY.get(s.category),
                         "" if start is None else start, "" if end is None else end,
                         {"": at, "name": (*at, "name"), "start": (*at, "startDate"), "end": (*at, "endDate"),
                          "value": (*at, "value")}))
    if errors:
        raise _rejected(errors)
    return rows


def _csv_rows(body: bytes) -> list[_Row]:
    """Rows of a designer export; a bad cell is `/rows/{i}/{column as sent}`, i counting data rows from 0."""
    try:
        text = body.decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text), delimiter=max(",;\t", key=text.split("\n", 1)[0].count))
        lines = [cells for cells in reader if any(c.strip() for c in cells)]
    except UnicodeDecodeError:
        raise MalformedBody("The CSV body is not UTF-8 text.") from None
    except csv.Error as exc:
        raise MalformedBody(f"The CSV body cannot be read: {exc}.") from None
    if not lines:
        raise MalformedBody("The request body is empty; send a header row, then one row per case.")
    header = {c.strip().lower().replace("_", " "): (i, c) for i, c in enumerate(lines[0])}
    missing = [FieldError(pointer("header", c.title()), "required column missing") for c in _REQUIRED
               if c not in header]
    if missing:
        raise InvalidInput(f"The CSV header needs the columns {', '.join(c.title() for c in _REQUIRED)}.", missing)
    cols = [(c, *header[c]) for c in _COLUMNS if c in header]
    sent = {c: name for c, _, name in cols}
    rows: list[_Row] = []
    errors: list[FieldError] = []
    for r, cells in enumerate(lines[1:]):
        row = _csv_row(r, {c: cells[i].strip() if i < len(cells) else "" for c, i, _ in cols}, sent, errors)
        if row is not None:
            rows.append(row)
    if errors:
        raise _rejected(errors)
    return rows


def _csv_row(r: int, cell: dict[str, str], sent: dict[str, str], errors: list[FieldError]) -> _Row | None:
    before, got = len(errors), {}
    for column, parse, what in _CELLS:
        text = cell.get(column, "")
        try:
            got[column] = parse(text) if text else None
        except (ValueError, OverflowError, OSError):
            errors.append(FieldError(pointer("rows", r, sent[column]), f"expected {what}, got {shown(text)}"))
    if not cell["name"]:
        errors.append(FieldError(pointer("rows", r, sent["name"]), "the case id is required"))
    if len(errors) > before:
        return None
    paths = {"": ("rows", r), "name": ("rows", r, sent["name"]), "start": ("rows", r, sent["start date"]),
             "end": ("rows", r, sent["end date"]), "value": ("rows", r, sent["metric value"])}
    return _Row(cell["name"], r if got["index"] is None else got["index"], got["start date"], got["end date"],
                got["event count"], got["metric value"], got["severity"], cell["start date"], cell["end date"], paths)


def _integer(text: str) -> int:
    value = float(text)
    if not value.is_integer():
        raise ValueError
    return int(value)


def _severity(text: str) -> str | None:
    word = text.lower()
    if word.lstrip("-").isdecimal():
        return _CATEGORY.get(int(word))
    if word not in _WORDS:
        raise ValueError(word)
    return _WORDS[word]


_DATE = "a date (ISO-8601, YYYY-MM-DD HH:MM:SS or epoch)"
_CELLS = (("start date", when, _DATE), ("end date", when, _DATE), ("index", _integer, "an integer"),
          ("event count", _integer, "an integer"), ("metric value", number, "a number"),
          ("severity", _severity, "a category number or ok, warning, error, undefined, low, medium, high, critical"))


def _finding(options: tuple, row: _Row, items: list, origins: list) -> FieldError | None:
    area, pattern, rule, unit, cost, case_attribute = options
    detected = row.end if row.end is not None else row.start
    if detected is None:
        return FieldError(pointer(*row.paths["end"]), "an end date or a start date is required")
    attributes = {"metricValue": row.metric, "eventCount": row.count, "startDate": iso(row.start),
                  "endDate": iso(row.end), "valueIndex": row.index, "businessRule": rule}
    if case_attribute:
        attributes[case_attribute] = row.name
    item = {"eventId": f"pm:{rule or pattern}:{row.name}:{row.raw_start}:{row.raw_end}:{row.index}",
            "source": SOURCE, "processArea": area, "deviationPattern": pattern, "caseKey": row.name,
            "detectedAt": detected, "severity": row.severity,
            "attributes": {k: v for k, v in attributes.items() if v is not None}}
    if row.metric is not None and unit is not None:
        item["kpiImpact"] = row.metric if unit == "money" else {
            "daysSaved": row.metric / 24 if unit == "hours" else row.metric, "costOfDelayPerDay": cost}
    items.append(item)
    paths = row.paths
    origins.append({"": paths[""], "eventId": paths["name"], "caseKey": paths["name"], "kpiImpact": paths["value"],
                    "detectedAt": paths["end" if row.end is not None else "start"]})
    return None
