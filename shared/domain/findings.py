"""The normalized finding: one deviation on one case, as any miner reports it.

This is the edge schema of `POST /api/findings`; the Celonis and Process Mining normalizers produce
the same shape, so everything after ingest sees one vocabulary. It is a msgspec Struct because the
ingest path decodes and validates it ~3× faster than pydantic (2.9 µs vs 8 µs a finding measured
here), which is what lets normalize + validate + score reach 100,000 findings a second.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec

from .errors import FieldError, pointer

MAX_BATCH = 1000
MAX_ATTRIBUTES = 100
# Characters of the attributes as compact JSON (as the store writes them): under a third of what one Table Storage
# string property holds (32K UTF-16 characters), so a merge of two reports still fits.
MAX_ATTRIBUTES_CHARS = 10_000
# Epoch values up to this are seconds, above it milliseconds (the rule pydantic and most miners use).
EPOCH_MS_THRESHOLD = 20_000_000_000
_MAX_EPOCH = 253_402_300_799_999  # 9999-12-31 in milliseconds
MAX_DAYS_SAVED = 3650
# How far after the app's clock a detection time may be. Servers on NTP (Celonis' cloud, Azure) agree within a
# second, a miner on its own VM within a minute or two; 5 minutes is also the window signed Celonis events get. A
# detection later than that is no observation: one finding dated 2099 on a verified case became its newest
# recurrence and made every real one until 2099 a silent repeat (domain/recurrence.py).
MAX_AHEAD = timedelta(minutes=5)
# Unknown fields kept per finding, as compact JSON: a typo or two and a sender's own ids fit many times over, and
# 4 KB of every finding of a 1,000 batch still fits the 4 MB body limit.
MAX_EXTENSIONS_BYTES = 4096

# No `pattern` here: msgspec runs Python's re per value (~1 µs each); blank text is caught after decoding.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Text = Annotated[str, msgspec.Meta(max_length=2000)]
Money = Annotated[float, msgspec.Meta(ge=0, le=1e15)]
Epoch = Annotated[int, msgspec.Meta(ge=0, le=_MAX_EPOCH)] | Annotated[float, msgspec.Meta(ge=0, le=_MAX_EPOCH)]
Severity = Literal["low", "medium", "high", "critical"]

# Attribute names reach the LLM prompt (llm_plan.shape), and a sender chooses them: only identifiers,
# never free text ("ignore previous instructions…", an e-mail address) are accepted.
ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
ATTRIBUTE_NAME_RULE = "not an attribute name: a letter, then at most 63 letters, digits, '_', '.' or '-'"
# Names seen valid: miners send the same few dozen, so a finding's check is one C-level superset test
# (~0.05 µs) instead of a regex per name (~0.3 µs each). Bounded, since senders choose the names; past
# the bound a new name costs its regex each time, never a refusal.
_VALID_NAMES: set[str] = set()
_MAX_VALID_NAMES = 4096


def bad_attribute_names(attributes: Any) -> list[str]:
    """The keys of `attributes` that are not attribute names (none when it is no dict)."""
    if not isinstance(attributes, dict) or _VALID_NAMES.issuperset(attributes):
        return []
    bad = [k for k in attributes if not (isinstance(k, str) and ATTRIBUTE_NAME.fullmatch(k))]
    if not bad and len(_VALID_NAMES) < _MAX_VALID_NAMES:
        _VALID_NAMES.update(attributes)
    return bad


def attribute_name_errors(item: Any, at: tuple = ()) -> list[FieldError]:
    """One error per bad attribute name of a finding as sent, pointed at `/attributes/<name>`."""
    attributes = item.get("attributes") if isinstance(item, dict) else None
    return [FieldError(pointer(*at, "attributes", name), ATTRIBUTE_NAME_RULE)
            for name in bad_attribute_names(attributes)]


def signal_name_errors(item: Any, at: tuple = ()) -> list[FieldError]:
    """One error per root-cause signal whose name is not an attribute name, at `/rootCause/<k>/name`: the names
    reach the LLM prompt as candidate context, like attribute names. Takes a finding as sent (dict) or decoded."""
    cause = item.get("rootCause") if isinstance(item, dict) else getattr(item, "rootCause", None)
    if cause.__class__ is not list:
        return []
    out = []
    for k, signal in enumerate(cause):
        name = signal.get("name") if isinstance(signal, dict) else getattr(signal, "name", None)
        if isinstance(name, str) and name not in _VALID_NAMES:
            if not ATTRIBUTE_NAME.fullmatch(name):
                out.append(FieldError(pointer(*at, "rootCause", k, "name"),
                                      ATTRIBUTE_NAME_RULE.replace("attribute", "signal")))
            elif len(_VALID_NAMES) < _MAX_VALID_NAMES:
                _VALID_NAMES.add(name)
    return out


class KpiImpact(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """Expected KPI movement; money = days × cost of delay + value at stake + penalty avoided."""

    daysSaved: Annotated[float, msgspec.Meta(ge=0, le=MAX_DAYS_SAVED)] | None = None
    costOfDelayPerDay: Money | None = None
    valueAtStake: Money | None = None
    penaltyAvoided: Money | None = None
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] | None = None
    # The named KPI the finding expects to move (README "Named KPI impact"): the hypothesis the control group
    # later tests. `metric` is mapped to the outcome vocabulary through catalog/aliases.json `metrics`.
    metric: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    estimate: Annotated[float, msgspec.Meta(ge=-1e15, le=1e15)] | None = None
    unit: Annotated[str, msgspec.Meta(min_length=1, max_length=16)] | None = None
    direction: Literal["decrease", "increase"] | None = None

    def money(self) -> float:
        return ((self.daysSaved or 0.0) * (self.costOfDelayPerDay or 0.0) + (self.valueAtStake or 0.0)
                + (self.penaltyAvoided or 0.0))


MAX_KPIS = 10
MAX_SIGNALS = 20


class Signal(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One root-cause signal as Celonis or Process Mining root-cause analysis yields it (vendor = V300, 34 %)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    value: Annotated[str, msgspec.Meta(max_length=200)] | int | float | bool | None = None
    share: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    weight: Annotated[float, msgspec.Meta(ge=-1e6, le=1e6)] | None = None


class Finding(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One normalized finding (README "Feeding findings", `POST /api/findings`)."""

    eventId: Key
    processArea: Name
    deviationPattern: Name
    caseKey: Key
    detectedAt: datetime | Epoch
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "generic"
    kpiImpact: Money | KpiImpact | Annotated[list[KpiImpact], msgspec.Meta(max_length=MAX_KPIS)] | None = None
    attributes: Annotated[dict[str, Any], msgspec.Meta(max_length=MAX_ATTRIBUTES)] = {}
    rootCause: Text | Annotated[list[Signal], msgspec.Meta(max_length=MAX_SIGNALS)] | None = None
    recommendedAction: Text | None = None
    severity: Severity | None = None
    complianceFlags: Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=20)] = []
    # Fields this app does not know, kept as sent (bounded: findings.MAX_EXTENSIONS_BYTES) and named in the
    # ingest response; a sender may also put its own data here directly.
    extensions: dict[str, Any] = {}

    def __post_init__(self) -> None:
        # Here, not as a key `pattern`: msgspec would run the regex per key (~1 µs each, ~5 a finding); this
        # hook costs ~0.25 µs a finding (decode of the bench findings 1.01 → 1.26 µs, best of 300 × 5).
        if not _VALID_NAMES.issuperset(self.attributes):
            bad = bad_attribute_names(self.attributes)
            if bad:
                raise ValueError(f"attribute names {bad[:5]}: {ATTRIBUTE_NAME_RULE}")

    def blank_fields(self) -> list[str]:
        """Required text fields holding only whitespace."""
        return [name for name in ("eventId", "processArea", "deviationPattern", "caseKey", "source")
                if getattr(self, name).isspace()]

    def impact_money(self) -> float | None:
        """Money at stake as reported, or None when the miner sent no estimate. Days saved told from a named KPI's
        estimate are not in it: they depend on the metric's convention (domain/kpi.py, at ingest)."""
        kpi = self.kpiImpact
        if kpi is None:
            return None
        if isinstance(kpi, list):
            return sum(k.money() for k in kpi)
        return kpi.money() if isinstance(kpi, KpiImpact) else float(kpi)


OUT_OF_RANGE = "outside the years 1 to 9999 once in UTC"


def instant(value: datetime | int | float) -> datetime:
    """A UTC datetime from ISO text (naive taken as UTC) or epoch seconds/milliseconds by magnitude. ValueError
    when it leaves datetime's range once in UTC (`9999-12-31T23:59:59-23:59` is in year 10000)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        if value.tzinfo is UTC:
            return value
        try:
            return value.astimezone(UTC)
        except OverflowError:  # the 500 this was: a sender's offset pushed the time past year 9999 or before 1
            raise ValueError(f"{value.isoformat()} is {OUT_OF_RANGE}") from None
    seconds = value / 1000 if value > EPOCH_MS_THRESHOLD else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"epoch {value} is {OUT_OF_RANGE}") from None
