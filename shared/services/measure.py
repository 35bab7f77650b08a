"""Measurement: outcomes in; treated-vs-control impact, baselines and ROI out (JSON and CSV)."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any

from ..domain import impact, roi
from ..domain.impact import Assignment
from ..domain.outcomes import Outcome, case_of
from ..logs import bind
from ..ports import Filter, Services

log = logging.getLogger(__name__)
BASELINES = "baselines"
METHOD = ("difference, ci, se: intention to treat (every case drawn for the action version, in the cohort it was "
          "drawn into); acted: the effect on the cases the arm's action version ran on (ITT ÷ the share it ran on), "
          "None with actedWhy when another action ran on over 5% of treated cases; attribution: treated cases by "
          "the action that actually ran, and the control cohort; expected: the miners' mean predicted change over "
          "the cases the action ran on; roi: see each term's basis; portfolio: every version's total, the "
          "projection over each action's latest version")
# A full scan of assignments and outcomes: often enough to catch a new experiment's first hour.
BASELINE_EVERY = timedelta(hours=1)


def record_outcomes(services: Services, outcomes: Sequence[Outcome], cid: str) -> dict[str, Any]:
    """Store a validated batch (a redelivered observation replaces itself) and say what was kept."""
    services.reference.add_outcomes(outcomes)
    metrics = sorted({o.metric for o in outcomes})
    bind(log, cid).info("%d outcome(s) stored (%s)", len(outcomes), ", ".join(metrics))
    return {"accepted": len(outcomes), "metrics": metrics, "correlationId": cid}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _expected(kpis: Any) -> dict[str, tuple[float, str | None]]:
    """The opportunity's expected KPI changes by metric (several entries for one metric add up)."""
    out: dict[str, tuple[float, str | None]] = {}
    for k in _json(kpis) or ():
        if isinstance(k, dict) and k.get("metric") and isinstance(k.get("change"), (int, float)):
            held = out.get(k["metric"], (0.0, None))
            out[k["metric"]] = (held[0] + float(k["change"]), held[1] or k.get("changeUnit") or k.get("unit"))
    return out


def _touched(history: Any) -> bool:
    return any(h.get("to") in impact.TOUCHED for h in _json(history) or ())


def assignments(services: Services, where: Filter = Filter()) -> list[Assignment]:
    """Every opportunity drawn into a cohort for an action version, with the version the agent ran on it, the share
    it was drawn with, what the miners expected of it, and whether a person touched it on the way."""
    out = []
    catalog, policy = services.catalog, services.policy
    for row in services.store.scan(where, ["processArea", "deviationPattern", "caseKey", "cohort", "status", "arm",
                                           "plan", "echoes", "recurrences", "kpis", "history"]):
        arm = row.get("arm")
        if not arm or not row.get("cohort"):
            continue
        arm = _json(arm)
        key = (arm["actionId"], int(arm["version"]))
        holdout = arm.get("holdout")
        if holdout is None:  # drawn before the arm recorded its share: the arm's action's, else the policy's
            action = catalog.versions.get(key)
            holdout = action.holdoutPercent if action and action.holdoutPercent is not None else policy.holdoutPercent
        echoes, recurred = int(row.get("echoes") or 0), row.get("recurrences")
        # Only a case the agent acted on has echoes, or a verification for its recurrence rate: most rows skip this.
        plan = _json(row.get("plan")) if row["status"] in impact.ACTED or echoes else None
        closed_from = plan.get("closedFrom") if plan else None
        ran = (plan["actionId"], int(plan["actionVersion"])) if plan else None
        treated = row["cohort"] == "treated"
        # Only a verified case can be deflected, and only one the arm's action ran on has an expectation to compare.
        resolved = row["status"] == "verified" or (row["status"] == "closed" and closed_from == "verified")
        out.append(Assignment(row["processArea"], row["deviationPattern"], row["caseKey"], row["cohort"], *key,
                              datetime.fromisoformat(arm["at"]), row["status"], ran, echoes,
                              len(_json(recurred)) if recurred else 0, closed_from, float(holdout),
                              _expected(row.get("kpis")) if treated and ran == key else {},
                              resolved and _touched(row.get("history"))))
    return out


def _key(row: dict[str, Any]) -> str:
    text = "|".join(str(row[k]) for k in ("processArea", "deviationPattern", "actionId", "actionVersion", "metric"))
    return sha256(text.encode()).hexdigest()[:16]


def kpis(services: Services, where: Filter = Filter(), action_id: str | None = None,
         version: int | None = None, metric: str | None = None, weekly: bool = True) -> dict[str, Any]:
    """Impact per action version (processArea + pattern + action + version), each KPI with its CI, and ROI."""
    # Both scans mostly wait on the store: read the outcomes while the assignments are read.
    with ThreadPoolExecutor(1, thread_name_prefix="kpis") as pool:
        pending = pool.submit(lambda: list(services.reference.outcomes()))
        arms = [a for a in assignments(services, where)
                if (action_id is None or a.actionId == action_id) and (version is None or a.version == version)]
        everything = pending.result()
    known = {case_of(a.processArea, a.caseKey) for a in arms}
    outcomes = [o for o in everything if metric is None or o.metric == metric]
    matched = [o for o in outcomes if case_of(o.processArea, o.caseKey) in known]
    rows = impact.measure(arms, matched, services.policy.measurement, weekly)
    frozen = (services.coordination.state(BASELINES) or {}).get("items", {})
    volumes = impact.volumes(arms)
    experiments: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        exp = (r["processArea"], r["deviationPattern"], r["actionId"], r["actionVersion"])
        snap = frozen.get(_key(r))
        r["baseline"] = {**(snap["baseline"] if snap else r["baseline"]), "frozen": bool(snap),
                         "at": snap["at"] if snap else None}
        e = experiments.get(exp)
        if e is None:
            e = experiments[exp] = {"processArea": exp[0], "deviationPattern": exp[1], "actionId": exp[2],
                                    "actionVersion": exp[3], "cases": r["cases"],
                                    "startedAt": volumes[exp].first.isoformat(), "metrics": []}
        e["metrics"].append({k: v for k, v in r.items() if k not in
                             ("processArea", "deviationPattern", "actionId", "actionVersion", "cases")})
    for exp, e in experiments.items():
        e["actedShare"] = max((m["actedShare"] for m in e["metrics"] if m["actedShare"] is not None), default=None)
        e["roi"] = roi.compute(e["metrics"], services.policy.measurement.roi_for(exp[2]), volumes[exp])
    items = list(experiments.values())
    return {"items": items, "generatedAt": services.clock.now().isoformat(),
            "recurrence": impact.recurrence(arms), "portfolio": roi.portfolio(items),
            "minSamples": services.policy.measurement.minSamples, "outcomes": len(outcomes),
            "unmatchedOutcomes": len(outcomes) - len(matched), "method": METHOD}


def snapshot_baselines(services: Services, cid: str, force: bool = False) -> int:
    """Freeze each new experiment's baseline (per cohort, outcomes before assignment); hourly from the sweep."""
    doc = services.coordination.state(BASELINES) or {"items": {}}
    now = services.clock.now()
    checked = doc.get("checkedAt")
    if not force and checked and now - datetime.fromisoformat(checked) < BASELINE_EVERY:
        return 0
    rows = impact.measure(assignments(services), services.reference.outcomes(), services.policy.measurement, False)
    added = 0
    for r in rows:
        key = _key(r)
        if key in doc["items"] or not any(c["n"] for c in r["baseline"].values()):
            continue
        doc["items"][key] = {"baseline": r["baseline"], "at": now.isoformat(),
                             "experiment": {k: r[k] for k in ("processArea", "deviationPattern", "actionId",
                                                              "actionVersion", "metric")}}
        added += 1
    doc["checkedAt"] = now.isoformat()
    services.coordination.put_state(BASELINES, doc)
    if added:
        bind(log, cid).info("baseline frozen for %d new experiment metric(s)", added)
    return added


CSV_COLUMNS = ["processArea", "deviationPattern", "actionId", "actionVersion", "metric", "week", "status",
               "treatedN", "controlN", "treatedMean", "controlMean", "difference", "ciLow", "ciHigh", "pValue",
               "method", "verdict", "actedShare", "baselineTreatedMean", "baselineControlMean", "roiTotal",
               "roiLow", "roiHigh", "currency", "se", "actedDifference", "actedCiLow", "actedCiHigh", "actedRanShare",
               "expectedChange", "srmPValue", "srmMismatch", "roiCostOfDelay", "roiDeflection", "roiThroughput",
               "roiLeakage", "roiAnnualized", "roiWeeks", "roiDays"]
# The ROI terms as CSV columns: only what the total adds (freed hours once), so the columns sum to roiTotal.
_TERMS = ("costOfDelay", "deflection", "throughput", "leakage")


def _in_total(r: dict[str, Any], term: str) -> float | None:
    values = [t["value"] for t in r.get("terms", ()) if t["term"] == term and t["inTotal"]]
    return round(sum(values), 2) if values else None


# OWASP CSV injection: a spreadsheet takes a text cell starting with one of these as a formula
# (=HYPERLINK(...) exfiltrates the sheet; tab and CR shift what a cell starts with); NUL per ASVS 1.2.10.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")


def csv_cell(value: Any) -> str:
    """One RFC 4180 field. Text that a spreadsheet would run as a formula gets a leading ' and quotes; numbers
    the app computed (int, float) are written as numbers, so a negative difference stays a number."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    neutralized = text.startswith(_FORMULA_START)
    if neutralized:
        text = "'" + text
    if neutralized or any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def to_csv(report: dict[str, Any]) -> str:
    """One line per experiment × metric × period ("all", then each ISO week): a flat table for Power BI.
    Every cell goes through csv_cell: process areas and patterns come from the catalog, i.e. from people."""
    lines = [",".join(CSV_COLUMNS)]
    for e in report["items"]:
        r = e["roi"] or {}
        total = r.get("total") or {}
        tail = [*(_in_total(r, t) for t in _TERMS), (r.get("annualized") or {}).get("value"),
                (r.get("period") or {}).get("weeks"), (r.get("period") or {}).get("days")]
        for m in e["metrics"]:
            periods: Iterable[tuple[str, dict[str, Any]]] = [("all", m), *((x["week"], x) for x in m.get("weeks", []))]
            for week, p in periods:
                ci, acted, srm = p.get("ci") or {}, p.get("acted") or {}, p.get("srm") or {}
                row = [e["processArea"], e["deviationPattern"], e["actionId"], e["actionVersion"], m["metric"],
                       week, p["status"], p["treated"]["n"], p["control"]["n"], p["treated"]["mean"],
                       p["control"]["mean"], p.get("difference"), ci.get("low"), ci.get("high"), p.get("pValue"),
                       p.get("method"), p["verdict"], m["actedShare"],
                       m["baseline"]["treated"]["mean"], m["baseline"]["control"]["mean"],
                       total.get("value"), total.get("low"), total.get("high"), r.get("currency"), p.get("se"),
                       acted.get("difference"), (acted.get("ci") or {}).get("low"), (acted.get("ci") or {}).get("high"),
                       acted.get("share"), (p.get("expected") or {}).get("change"), srm.get("pValue"),
                       srm.get("mismatch"), *tail]
                lines.append(",".join(csv_cell(v) for v in row))
    return "\r\n".join(lines) + "\r\n"
