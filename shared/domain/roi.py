"""ROI of one action version in four terms, each labelled with where its figure comes from (docs/measurement.md).

- cost of delay: the measured improvement of each metric valued per unit (not leakage) × the cases the action ran
  on × value per unit; the effect on those cases (impact's `acted`) when there is one, else intention to treat;
- leakage: the same for the money metrics the policy declares as leakage (`leakageMetrics`), valued 1:1;
- deflection: cases the action resolved with no person touching them (counted) × handling hours × hourly cost;
- throughput: the cases the hours freed could resolve × `valuePerResolvedCase`: projected, not measured.
Deflection and throughput value the same freed hours: the total adds the one `freedHoursAs` names (its label says
when that is the projected one). A metric whose difference is not told apart from zero (or has too few cases) is
worth None, not 0; a harmful one stays negative. The annual figure is a projection, per version and in the portfolio.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .impact import Volume
from .policy import RoiParams

MEASURED, COUNTED, PROJECTED, NOT_VALUED, NOT_ENOUGH_DATA, NO_EFFECT = (
    "measured", "counted", "projected", "not_valued", "not_enough_data", "no_effect")
DAY_SECONDS = 86_400
POPULATION = ("the treated cases drawn for this action version over the period: measured terms are the effect on "
              "the cases the action ran on × those cases (intention to treat × treated cases where no effect on "
              "them is known); counted terms count cases by their history")


def _money(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _term(term: str, label: str, basis: str, value: float | None = None, low: float | None = None,
          high: float | None = None, formula: str = "", why: str | None = None) -> dict[str, Any]:
    out = {"term": term, "label": label, "basis": basis, "value": _money(value), "low": _money(low),
           "high": _money(high), "inTotal": basis in (MEASURED, COUNTED, PROJECTED), "formula": formula}
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
    # Intention to treat because other actions ran too: the value is that of drawing cases for this version.
    mixed = (f"intention to treat: {row['actedWhy']}; this is the value of drawing cases for this action version, "
             "whatever ran on them") if not acted and row.get("actedWhy") else None
    if not row["significant"]:
        return _term(term, label, NO_EFFECT, None, low, high, formula,
                     "; ".join(filter(None, ("no effect told apart from zero: the range is what the interval allows",
                                             mixed))))
    return _term(term, label, MEASURED, sign * effect["difference"] * cases * unit_value, low, high, formula, mixed)


def _span(days: float) -> str:
    """A period in words: "3 days", "1 week", "2.57 weeks"."""
    if days < 7:
        return f"{days:g} day" + ("" if days == 1 else "s")
    weeks = round(days / 7, 2)
    return f"{weeks:g} week" + ("" if weeks == 1 else "s")


def _freed(params: RoiParams, volume: Volume, days: float) -> list[dict[str, Any]]:
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
    cases = hours / per_case if per_case else 0.0
    # A rate a week only over a week or more: a burst of a few days says nothing about a week.
    rate = f" ({cases / (days / 7):.2f} extra cases a week)" if days >= 7 else ""
    formula = (f"{hours:.1f} h freed ÷ {per_case:.3g} h per case = {cases:.1f} cases the freed hours could resolve "
               f"over {_span(days)}{rate}")
    label = "extra cases the freed hours could resolve (projected)"
    if params.valuePerResolvedCase is None or per_case == 0:
        throughput = _term("throughput", label, NOT_VALUED, formula=formula,
                           why="valuePerResolvedCase is not set" if per_case else "handlingMinutes is 0")
    else:
        value = cases * params.valuePerResolvedCase
        # No case was counted resolving: from none (the hours went to no new case) to every freed hour on one.
        throughput = _term("throughput", label, PROJECTED, value, 0.0, value,
                           f"{formula} × {params.valuePerResolvedCase:g} {params.currency}",
                           "projected, not measured: what the freed hours could resolve at handlingMinutes a case, "
                           "from 0 (the hours went to no new case) to every freed hour resolving one")
    named = deflection if params.freedHoursAs == "labour" else throughput
    for t in (deflection, throughput):
        if t is not named and t["inTotal"]:
            t["inTotal"] = False
            once = f"the same hours are valued as {params.freedHoursAs} (freedHoursAs): counted once"
            t["why"] = f"{t['why']}; {once}" if t.get("why") else once
    return [deflection, throughput]


def _total(terms: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The sum of the terms in the total, labelled with what it holds (a projected term said so)."""
    counted = [t for t in terms if t["inTotal"]]
    if not counted:  # nothing valued: no total, not a total of 0
        return {"value": None, "low": None, "high": None, "label": "nothing valued yet"}
    projected = [t["label"] for t in counted if t["basis"] == PROJECTED]
    label = (f"includes a projected term, not measured: {', '.join(projected)}; the others are measured or counted"
             if projected else "measured and counted terms")
    return {**{k: _money(sum(t[k] for t in counted)) for k in ("value", "low", "high")}, "label": label}


def compute(rows: Sequence[dict[str, Any]], params: RoiParams | None, volume: Volume) -> dict[str, Any] | None:
    """ROI of one action version from its metric rows (impact.measure) and cases (impact.volumes), or None
    without parameters."""
    if params is None:
        return None
    by_metric = {r["metric"]: r for r in rows}
    days = round((volume.last - volume.first).total_seconds() / DAY_SECONDS, 2)
    # The projection counts a period under a week as one: 3 days × 365 ÷ 3 would multiply a burst by 122.
    weeks = round(max(days / 7, 1.0), 2)
    leakage = list(dict.fromkeys(params.leakageMetrics))
    delay = [m for m in params.valuePerUnit if m not in leakage]
    terms = [_measured("costOfDelay", f"cost of delay avoided: {m}", by_metric.get(m), params.valuePerUnit[m],
                       volume, params.currency) for m in delay]
    if not delay:
        terms.append(_term("costOfDelay", "cost of delay avoided", NOT_VALUED,
                           why="no metric valued per unit (valuePerUnit) outside leakageMetrics"))
    terms += _freed(params, volume, days)
    terms += [_measured("leakage", f"leakage avoided: {m}", by_metric.get(m), 1.0, volume, params.currency)
              for m in leakage]
    if not leakage:
        terms.append(_term("leakage", "leakage avoided", NOT_VALUED, why="no leakageMetrics for this action"))
    total = _total(terms)
    scale = 52 / weeks
    over = (f"the total over {_span(days)}, counted as 1 week (a shorter burst is not scaled up further) × 52"
            if days < 7 else f"the total over {_span(days)} × 52 ÷ {weeks:g}")
    out: dict[str, Any] = {
        "currency": params.currency,
        "period": {"from": volume.first.isoformat(), "to": volume.last.isoformat(), "days": days, "weeks": weeks},
        "population": POPULATION, "terms": terms, "total": total,
        "annualized": {**{k: _money(total[k] * scale if total[k] is not None else None)
                          for k in ("value", "low", "high")},
                       "label": f"projection: {over}, assuming the same volume and effects for a year"},
        "throughputPerFte": None}
    if params.teamFte:
        per_week = (volume.treated + volume.control) / weeks
        freed = volume.deflected * params.handlingMinutes / 60 / weeks / params.fteHoursPerWeek
        out["throughputPerFte"] = {"before": round(per_week / params.teamFte, 2),
                                   "after": round(per_week / max(params.teamFte - freed, 0.1), 2),
                                   "fteFreed": round(freed, 2), "casesPerWeek": round(per_week, 1)}
    return out


def portfolio(experiments: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per currency: every action version's total summed (superseded versions too: their value happened), and the
    projection summed over each action's latest version in the report only (v1 retired and v2 both projected
    would count a year of the same process twice). `experiments` carry actionId, actionVersion and roi."""
    valued = [e for e in experiments if e.get("roi")]
    latest: dict[str, int] = {}
    for e in valued:
        latest[e["actionId"]] = max(latest.get(e["actionId"], 0), int(e["actionVersion"]))
    sums: dict[str, dict[str, Any]] = {}
    for e in valued:
        r = e["roi"]
        s = sums.setdefault(r["currency"], {"currency": r["currency"], "versions": 0, "valued": 0, "projected": 0,
                                            "total": {"value": 0.0, "low": 0.0, "high": 0.0},
                                            "annualized": {"value": 0.0, "low": 0.0, "high": 0.0}, "guess": False})
        s["versions"] += 1
        if r["total"]["value"] is None:
            continue
        s["valued"] += 1
        s["guess"] |= any(t["basis"] == PROJECTED and t["inTotal"] for t in r["terms"])
        parts = ["total"]
        if int(e["actionVersion"]) == latest[e["actionId"]]:
            s["projected"] += 1
            parts.append("annualized")
        for part in parts:
            for k in ("value", "low", "high"):
                s[part][k] = round(s[part][k] + r[part][k], 2)
    out = []
    for _, s in sorted(sums.items()):
        projected = s.pop("guess")
        if not s["valued"]:  # nothing to add up: no total, not a total of 0
            s["total"] = {"value": None, "low": None, "high": None}
        if not s["projected"]:
            s["annualized"] = {"value": None, "low": None, "high": None}
        s["total"]["label"] = ("every version's total, superseded ones included" +
                               ("; includes a projected term, not measured" if projected else ""))
        out.append({**s, "annualized": {**s["annualized"], "label": "projection: the sum of the projections of each "
                                        "action's latest version in the report (superseded versions are in the "
                                        "total, not projected)"}})
    return out
