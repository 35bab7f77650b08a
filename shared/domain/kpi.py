"""Named KPI impact: which KPI a finding expects to move, which way and by how much (README "Named KPI impact").

A finding's `kpiImpact` may name a metric (`{"metric": "days_to_close", "estimate": 4, "unit": "days"}`). Each
named entry becomes one expectation on the opportunity, in the `POST /api/outcomes` vocabulary (catalog/aliases.json
`metrics`), so the control group can later test it. Which way it moves: `direction` when sent; else a negative
estimate is a decrease; else the metric's convention (catalog/policy.json `measurement.metrics`: where lower is
better, a reported gain is a decrease; an unknown metric grows). An estimate in days or hours of a decrease is days
saved (hours ÷ 24) when `daysSaved` is not given, so it counts in the money impact. A kpiImpact none of whose
entries carries money (days saved, value at stake, penalty avoided) reports no money impact: the score keeps the
severity's estimate. Pure: no I/O.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .aliases import Aliases
from .errors import FieldError, pointer
from .findings import MAX_DAYS_SAVED, KpiImpact
from .policy import Measurement

DAYS = frozenset({"days", "day", "d"})
HOURS = frozenset({"hours", "hour", "h"})
# Units are words, symbols or currency codes (days, h, percent, %, count, EUR, pp): never free text, since the
# unit is shown in the rationale and on cards.
UNIT = re.compile(r"[A-Za-z%][A-Za-z0-9%/._-]{0,15}")
UNIT_RULE = "a unit is a word, symbol or currency code: a letter or %, then at most 15 letters, digits, % / . _ -"
# A KPI's name as miners show it ("days_to_close", "Throughput time (days)"): letters first, no control characters.
METRIC = re.compile(r"[^\W\d_][\w .()%/-]{0,63}")
METRIC_RULE = "a metric name starts with a letter, then at most 63 letters, digits, blanks or _ . ( ) % / -"


def _unit_key(unit: str | None) -> str:
    return unit.strip().casefold() if unit else ""


def is_named(kpi: Any) -> bool:
    """Whether a finding's kpiImpact names a KPI (or is a list): only then is there any work past the money."""
    return kpi.__class__ is list or (kpi.__class__ is KpiImpact and (kpi.metric is not None
                                                                     or kpi.estimate is not None))


def errors(kpi: Any, at: tuple = ()) -> list[FieldError]:
    """What the schema cannot say about a decoded kpiImpact: a metric needs an estimate and an estimate a metric
    (each error names the missing field), units and metric names are words, and a days estimate is at most ten
    years. `at` is where the kpiImpact sits (e.g. `(3, "kpiImpact")`)."""
    if kpi.__class__ is list:
        return [e for j, k in enumerate(kpi) for e in errors(k, (*at, j))]
    if kpi.__class__ is not KpiImpact:
        return []
    out: list[FieldError] = []
    named = kpi.metric is not None or kpi.estimate is not None or kpi.unit is not None or kpi.direction is not None
    if not named:
        return out
    if kpi.metric is None:
        out.append(FieldError(pointer(*at, "metric"), "an estimate needs the metric it moves (e.g. cycle_time_days)"))
    elif not METRIC.fullmatch(kpi.metric) or kpi.metric.isspace():
        out.append(FieldError(pointer(*at, "metric"), METRIC_RULE))
    if kpi.estimate is None:
        out.append(FieldError(pointer(*at, "estimate"), "a metric needs an estimate: by how much it moves"))
    elif _unit_key(kpi.unit) in DAYS or _unit_key(kpi.unit) in HOURS:
        days = abs(kpi.estimate) / (24.0 if _unit_key(kpi.unit) in HOURS else 1.0)
        if days > MAX_DAYS_SAVED:
            out.append(FieldError(pointer(*at, "estimate"), f"more than {MAX_DAYS_SAVED} days (ten years)"))
    if kpi.unit is not None and not UNIT.fullmatch(kpi.unit):
        out.append(FieldError(pointer(*at, "unit"), UNIT_RULE))
    return out


def _direction(kpi: KpiImpact, metric: str, measurement: Measurement | None) -> str:
    if kpi.direction is not None:
        return kpi.direction
    estimate = kpi.estimate or 0.0
    if estimate < 0:
        return "decrease"
    spec = measurement.spec(metric) if measurement is not None else None
    # "4 days" of days-to-close means 4 days fewer: where lower is better, a reported gain is a decrease.
    return "decrease" if spec is not None and spec.better == "lower" else "increase"


def _money(kpi: KpiImpact, days_told: bool = False) -> float | None:
    """What one entry is worth, or None when it carries no money: no days saved (given, or told from a days
    estimate), no value at stake, no penalty avoided. A percent or count KPI alone is no money estimate."""
    if kpi.daysSaved is None and not days_told and kpi.valueAtStake is None and kpi.penaltyAvoided is None:
        return None
    return kpi.money()


def _expectation(kpi: KpiImpact, aliases: Aliases | None, measurement: Measurement | None
                 ) -> tuple[dict[str, Any] | None, float | None]:
    """(the kpis entry of one KpiImpact, or None when it names no metric; its money, None when it carries none)."""
    if kpi.metric is None or kpi.estimate is None:
        return None, _money(kpi)
    sent = kpi.metric.strip()
    metric = aliases.metric(sent) if aliases is not None else sent
    direction = _direction(kpi, metric, measurement)
    size = abs(kpi.estimate)
    unit = _unit_key(kpi.unit)
    entry: dict[str, Any] = {"metric": metric}
    if metric != sent:
        entry["reported"] = sent
    entry.update(estimate=size, unit=kpi.unit, direction=direction)
    change = -size if direction == "decrease" else size
    # `change` is in the metric's own unit (the one its outcomes are posted in), so a measured effect compares
    # with it as is: hours of a days metric are converted, and the unit of the change named.
    spec = measurement.spec(metric) if measurement is not None else None
    target = _unit_key(spec.unit) if spec is not None else ""
    if unit in HOURS and target in DAYS:
        change, entry["changeUnit"] = change / 24.0, spec.unit  # type: ignore[union-attr]
    elif unit in DAYS and target in HOURS:
        change, entry["changeUnit"] = change * 24.0, spec.unit  # type: ignore[union-attr]
    entry["change"] = change + 0.0  # never -0.0
    told = kpi.daysSaved is None and direction == "decrease" and (unit in DAYS or unit in HOURS)
    money = _money(kpi, told)
    if told:
        days = size / 24.0 if unit in HOURS else size
        entry["daysSaved"] = days
        money = (money or 0.0) + days * (kpi.costOfDelayPerDay or 0.0)
    return entry, money


def expectations(kpi: KpiImpact | Sequence[KpiImpact], aliases: Aliases | None = None,
                 measurement: Measurement | None = None) -> tuple[list[dict[str, Any]], float | None]:
    """(the opportunity's `kpis`, the money impact) of a kpiImpact object or list. A list's money is the sum
    of its entries' money: each entry is one KPI's own estimate (days saved × cost of delay + value at stake +
    penalty avoided), and a sender splits what it expects across them rather than repeating it. The money is
    None when no entry carries any: `{"metric": "sla_met", "estimate": 5, "unit": "percent"}` is a hypothesis,
    not a reported impact of 0, so scoring keeps the severity's estimate (a 0 made the priority 0)."""
    entries: list[dict[str, Any]] = []
    money: float | None = None
    for k in (kpi,) if isinstance(kpi, KpiImpact) else kpi:
        entry, value = _expectation(k, aliases, measurement)
        if value is not None:
            money = value if money is None else money + value
        if entry is not None:
            entries.append(entry)
    return entries, money


def _number(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def describe(kpis: Sequence[dict[str, Any]]) -> str:
    """The expected movements in words, for the rationale: 'expects cycle_time_days −4 days (reported as
    days_to_close)'; empty when there are none."""
    parts = []
    for k in kpis:
        change = float(k.get("change") or 0.0)
        unit = k.get("changeUnit") or k.get("unit")
        sign = "−" if change < 0 else "+"
        text = f"{k.get('metric')} {sign}{_number(abs(change))}" + (f" {unit}" if unit else "")
        if k.get("reported"):
            text += f" (reported as {k['reported']})"
        parts.append(text)
    return "expects " + ", ".join(parts) if parts else ""
