"""ROI from the measured difference, never from the miners' estimates (formulas in docs/measurement.md).

Per action version:
- value of each improved KPI = improvement per case (treated − control, the sign made "better is
  positive") × treated cases × value per unit (cost of delay per day, or 1.0 for a money metric,
  which makes it leakage avoided); its range comes from the difference's 95% CI;
- deflection = the share of treated cases the agent acted on (measured), hours saved = deflection ×
  treated cases × handling minutes ÷ 60, labour saved = hours × hourly cost;
- throughput per FTE = cases a week ÷ team FTE, before and after the hours saved free people up.
A KPI without a significant estimate adds nothing: an effect not told apart from zero is worth zero here.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .policy import RoiParams


def _label(metric: str) -> str:
    if metric.endswith("_days"):
        return "cost of delay avoided"
    if "leak" in metric:
        return "leakage avoided"
    return "value of improvement"


def compute(rows: Sequence[dict[str, Any]], params: RoiParams | None, first: datetime | None,
            last: datetime | None) -> dict[str, Any] | None:
    """ROI of one action version from its metric rows (impact.measure), or None without parameters."""
    if params is None or not rows:
        return None
    treated = rows[0]["cases"]["treated"]
    components, total, low, high = [], 0.0, 0.0, 0.0
    for r in rows:
        unit_value = params.valuePerUnit.get(r["metric"])
        if unit_value is None:
            continue
        if r["status"] != "ok" or not r["significant"] or r["better"] is None:
            components.append({"metric": r["metric"], "label": _label(r["metric"]), "value": 0.0,
                               "why": "no effect told apart from zero" if r["status"] == "ok" else r["reason"]})
            continue
        sign = -1.0 if r["better"] == "lower" else 1.0
        bounds = sorted((sign * r["ci"]["low"], sign * r["ci"]["high"]))
        scale = treated * unit_value
        value = sign * r["difference"] * scale
        components.append({"metric": r["metric"], "label": _label(r["metric"]), "value": round(value, 2),
                           "low": round(bounds[0] * scale, 2), "high": round(bounds[1] * scale, 2),
                           "formula": f"{sign * r['difference']:.4g} per case × {treated} treated cases × "
                                      f"{unit_value:g} {params.currency}"})
        total, low, high = total + value, low + bounds[0] * scale, high + bounds[1] * scale
    acted = [r["actedShare"] for r in rows if r["actedShare"] is not None]
    deflection = max(acted) if acted else 0.0
    hours = deflection * treated * params.handlingMinutes / 60
    labour = hours * params.hourlyCost
    out: dict[str, Any] = {"currency": params.currency, "components": components,
                           "deflectionRate": round(deflection, 4), "hoursSaved": round(hours, 1),
                           "labourSaved": round(labour, 2), "total": round(total + labour, 2),
                           "totalLow": round(low + labour, 2), "totalHigh": round(high + labour, 2)}
    if params.teamFte and first and last:
        weeks = max((last - first).total_seconds() / 604_800, 1.0)
        per_week = (treated + rows[0]["cases"]["control"]) / weeks
        freed = hours / weeks / params.fteHoursPerWeek
        out["throughputPerFte"] = {"before": round(per_week / params.teamFte, 2),
                                   "after": round(per_week / max(params.teamFte - freed, 0.1), 2),
                                   "fteFreed": round(freed, 2), "casesPerWeek": round(per_week, 1)}
    return out
