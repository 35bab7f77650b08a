"""ROI of one action version in four terms, each labelled with where its figure comes from (docs/measurement.md).

- cost of delay: the measured improvement of each metric valued per unit (not leakage) × the cases the action ran
  on × value per unit; the effect on those cases (impact's `acted`) when there is one, else intention to treat;
- leakage: the same for the money metrics the policy declares as leakage (`leakageMetrics`), valued 1:1;
- deflection: cases the action resolved with no person touching them (counted) × handling hours × hourly cost;
- throughput: the extra cases a week the hours freed could work × `valuePerResolvedCase`.
Deflection and throughput value the same freed hours: the total adds the one `freedHoursAs` names. A metric whose
difference is not told apart from zero (or has too few cases) is worth None, not 0; a harmful one stays negative.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .impact import Volume
from .policy import RoiParams

MEASURED, COUNTED, NOT_VALUED, NOT_ENOUGH_DATA, NO_EFFECT = (
    "measured", "counted", "not_valued", "not_enough_data", "no_effect")
WEEK_SECONDS = 604_800
POPULATION = ("the treated cases drawn for this action version over the period: measured terms are the effect on "
              "the cases the action ran on × those cases (intention to treat × treated cases where no effect on "
              "them is known); counted terms count cases by their history")


def _money(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _term(term: str, label: str, basis: str, value: float | None = None, low: float | None = None,
          high: float | None = None, formula: str = "", why: str | None = None) -> dict[str, Any]:
    out = {"term": term, "label": label, "basis": basis, "value": _money(value), "low": _money(low),
           "high": _money(high), "inTotal": basis in (MEASURED, COUNTED), "formula": formula}
    if why:
        out["why"] = why
    return out


def _measured(term: str, label: str, row: dict[str, Any] | None, unit_value: float, volume: Volume,
              currency: str) -> dict[str, Any]:
    """A metric's value: improvement per case × cases × value per unit, its range from the effect's CI."""
    if row is None:
        return _term(term, label, NOT_ENOUGH_DATA, why="no outcomes for this metric yet")
    if row["better"] is None:
        return _term(term, label, NOT_VALUED, why=f"{row['metric']} has no direction in measurement.metrics")
    if row["status"] != "ok":
        return _term(term, label, NOT_ENOUGH_DATA, why=row.get("reason"))
    sign = -1.0 if row["better"] == "lower" else 1.0
    acted = row.get("acted")
    effect, cases, whom = ((acted, volume.acted, "cases the action ran on") if acted
                           else (row, volume.treated, "treated cases (intention to treat)"))
    low, high = sorted((sign * effect["ci"]["low"] * cases * unit_value, sign * effect["ci"]["high"] * cases *
                        unit_value))
    unit = f" {row['unit']}" if row.get("unit") else ""
    formula = (f"{sign * effect['difference']:.4g}{unit} better per case on {whom} × {cases} cases × "
               f"{unit_value:g} {currency}")
    if not row["significant"]:
        return _term(term, label, NO_EFFECT, None, low, high, formula,
                     "no effect told apart from zero: the range is what the interval allows")
    return _term(term, label, MEASURED, sign * effect["difference"] * cases * unit_value, low, high, formula)


def _freed(params: RoiParams, volume: Volume, weeks: float) -> list[dict[str, Any]]:
    """Deflection and throughput: the same hours freed, valued as labour or as extra cases; one is in the total."""
    hours = volume.deflected * params.handlingMinutes / 60
    per_case = params.handlingMinutes / 60
    if per_case == 0 or params.hourlyCost == 0:
        deflection = _term("deflection", "labour saved (deflection)", NOT_VALUED,
                           why="handlingMinutes and hourlyCost are needed to value the hours freed")
    else:
        labour = hours * params.hourlyCost
        deflection = _term("deflection", "labour saved (deflection)", COUNTED, labour, labour, labour,
                           f"{volume.deflected} cases resolved with no person touching them × "
                           f"{params.handlingMinutes:g} min ÷ 60 × {params.hourlyCost:g} {params.currency}")
    extra = hours / weeks / per_case if per_case else 0.0
    formula = (f"{hours:.1f} h freed ÷ {weeks:g} weeks ÷ {per_case:.3g} h per case = {extra:.2f} extra cases a week "
               f"× {weeks:g} weeks")
    if params.valuePerResolvedCase is None or per_case == 0:
        throughput = _term("throughput", "extra cases the freed hours work", NOT_VALUED, formula=formula,
                           why="valuePerResolvedCase is not set" if per_case else "handlingMinutes is 0")
    else:
        value = extra * weeks * params.valuePerResolvedCase
        throughput = _term("throughput", "extra cases the freed hours work", COUNTED, value, value, value,
                           f"{formula} × {params.valuePerResolvedCase:g} {params.currency}")
    named = deflection if params.freedHoursAs == "labour" else throughput
    for t in (deflection, throughput):
        if t is not named and t["inTotal"]:
            t["inTotal"] = False
            t["why"] = f"the same hours are valued as {params.freedHoursAs} (freedHoursAs): counted once"
    return [deflection, throughput]


def compute(rows: Sequence[dict[str, Any]], params: RoiParams | None, volume: Volume) -> dict[str, Any] | None:
    """ROI of one action version from its metric rows (impact.measure) and cases (impact.volumes), or None
    without parameters."""
    if params is None:
        return None
    by_metric = {r["metric"]: r for r in rows}
    weeks = round(max((volume.last - volume.first).total_seconds() / WEEK_SECONDS, 1.0), 2)
    leakage = list(dict.fromkeys(params.leakageMetrics))
    delay = [m for m in params.valuePerUnit if m not in leakage]
    terms = [_measured("costOfDelay", f"cost of delay avoided: {m}", by_metric.get(m), params.valuePerUnit[m],
                       volume, params.currency) for m in delay]
    if not delay:
        terms.append(_term("costOfDelay", "cost of delay avoided", NOT_VALUED,
                           why="no metric valued per unit (valuePerUnit) outside leakageMetrics"))
    terms += _freed(params, volume, weeks)
    terms += [_measured("leakage", f"leakage avoided: {m}", by_metric.get(m), 1.0, volume, params.currency)
              for m in leakage]
    if not leakage:
        terms.append(_term("leakage", "leakage avoided", NOT_VALUED, why="no leakageMetrics for this action"))
    counted = [t for t in terms if t["inTotal"]]
    total = ({"value": _money(sum(t["value"] for t in counted)), "low": _money(sum(t["low"] for t in counted)),
              "high": _money(sum(t["high"] for t in counted))} if counted
             else {"value": None, "low": None, "high": None})
    scale = 52 / weeks
    out: dict[str, Any] = {
        "currency": params.currency,
        "period": {"from": volume.first.isoformat(), "to": volume.last.isoformat(), "weeks": weeks},
        "population": POPULATION, "terms": terms, "total": total,
        "annualized": {**{k: _money(v * scale if v is not None else None) for k, v in total.items()},
                       "label": f"projection: the total over {weeks:g} weeks × 52 ÷ {weeks:g}, assuming the same "
                                "volume and effects for a year"},
        "throughputPerFte": None}
    if params.teamFte:
        per_week = (volume.treated + volume.control) / weeks
        freed = volume.deflected * params.handlingMinutes / 60 / weeks / params.fteHoursPerWeek
        out["throughputPerFte"] = {"before": round(per_week / params.teamFte, 2),
                                   "after": round(per_week / max(params.teamFte - freed, 0.1), 2),
                                   "fteFreed": round(freed, 2), "casesPerWeek": round(per_week, 1)}
    return out


def portfolio(items: Iterable[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Every action version's total summed, per currency, with how many versions there are and how many had a
    total to add (never the first version's alone)."""
    sums: dict[str, dict[str, Any]] = {}
    for r in items:
        if r is None:
            continue
        s = sums.setdefault(r["currency"], {"currency": r["currency"], "versions": 0, "valued": 0,
                                            "total": {"value": 0.0, "low": 0.0, "high": 0.0},
                                            "annualized": {"value": 0.0, "low": 0.0, "high": 0.0}})
        s["versions"] += 1
        if r["total"]["value"] is None:
            continue
        s["valued"] += 1
        for part in ("total", "annualized"):
            for k in ("value", "low", "high"):
                s[part][k] = round(s[part][k] + r[part][k], 2)
    out = []
    for _, s in sorted(sums.items()):
        if not s["valued"]:  # nothing to add up: no total, not a total of 0
            s["total"] = s["annualized"] = {"value": None, "low": None, "high": None}
        out.append({**s, "annualized": {**s["annualized"], "label": "projection: the sum of each version's "
                                                                     "projection"}})
    return out
