"""Impact per action version: treated vs control on each KPI, overall and by ISO week, with a baseline.

The unit is the case. Each case was drawn into a cohort for one action version when triage first saw
it (its *assignment*); the comparison keeps every case in the cohort it was drawn into, whatever
happened next (intention to treat), because dropping treated cases that a person rejected would let
selection, not the action, make the difference. A case's latest observation of a metric after its
assignment is its outcome; its latest one before is its baseline.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import stats
from .cohort import CONTROL, TREATED
from .outcomes import Outcome, case_of
from .policy import Measurement

# Statuses where the agent's action reached the system of record (a rollback still touched it).
ACTED = frozenset({"executed", "verified", "compensated", "closed"})


def acted(status: str, closed_from: str | None) -> bool:
    """The agent's action reached the system of record: executed, verified or rolled back, or closed from one of
    those (a case closed after a failed flow, a rejection or a review never was acted on)."""
    ended = closed_from if status == "closed" else status
    return ended in ACTED and ended != "closed"


@dataclass(frozen=True, slots=True)
class Assignment:
    """One opportunity's draw: its case, cohort, the action version it was drawn for, and how it ended."""

    processArea: str
    deviationPattern: str
    caseKey: str
    cohort: str
    actionId: str
    version: int
    at: datetime
    status: str
    # The action version the agent ran on the case (its plan), echoes and recurrences recorded on it
    # (shared/domain/recurrence.py): what the recurrence rate per action version is counted from.
    ran: tuple[str, int] | None = None
    echoes: int = 0
    recurrences: int = 0
    # The status the case ended in before it was closed (the plan's closedFrom), if it was.
    closedFrom: str | None = None

    @property
    def acted(self) -> bool:
        return acted(self.status, self.closedFrom)

    @property
    def verified(self) -> bool:
        """Verified, or closed after its observation window (or by a person) once it was."""
        return self.status == "verified" or (self.status == "closed" and self.closedFrom == "verified")

    @property
    def experiment(self) -> tuple[str, str, str, int]:
        return self.processArea, self.deviationPattern, self.actionId, self.version


def week_of(when: datetime) -> str:
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def _cohort(values: Sequence[float]) -> dict[str, Any]:
    return {"n": len(values), "mean": _r(stats.mean(values)) if values else None}


def estimate(treated: Sequence[float], control: Sequence[float], better: str | None, method: str,
             min_samples: int, seed: str) -> dict[str, Any]:
    """n and means per cohort; the difference, 95% CI and p-value once both cohorts have `min_samples`."""
    out: dict[str, Any] = {"treated": _cohort(treated), "control": _cohort(control), "minSamples": min_samples}
    if len(treated) < min_samples or len(control) < min_samples:
        short = [f"{name} has {len(v)}" for name, v in (("treated", treated), ("control", control))
                 if len(v) < min_samples]
        return {**out, "status": "not_enough_data", "verdict": "not_enough_data",
                "reason": f"needs {min_samples} cases with an outcome per cohort; {' and '.join(short)}"}
    e = stats.compare(treated, control, method, seed)
    significant = e.low > 0 or e.high < 0
    if not significant or better is None:
        verdict = "no_detectable_effect" if not significant else "changed"
    else:
        verdict = "better" if (e.difference < 0) == (better == "lower") else "worse"
    return {**out, "status": "ok", "difference": _r(e.difference), "ci": {"low": _r(e.low), "high": _r(e.high),
            "level": 0.95}, "pValue": _r(e.p_value, 6), "method": e.method, "significant": significant,
            "verdict": verdict}


def measure(assignments: Iterable[Assignment], outcomes: Iterable[Outcome], policy: Measurement,
            weekly: bool = True) -> list[dict[str, Any]]:
    """One row per (processArea, pattern, action, version, metric) that has outcomes, ranked by action."""
    by_case: dict[tuple[str, str], list[Assignment]] = {}
    arms: dict[tuple, dict[str, int]] = {}
    for a in assignments:
        by_case.setdefault(case_of(a.processArea, a.caseKey), []).append(a)
        tally = arms.setdefault(a.experiment, {"treated": 0, "control": 0, "acted": 0})
        tally[a.cohort] = tally.get(a.cohort, 0) + 1
        tally["acted"] += a.cohort == TREATED and a.acted
    # (experiment, metric) → case → [latest after, latest before] as (observedAt, value, assignment)
    latest: dict[tuple, dict[tuple[str, str], list[tuple[datetime, float, Assignment] | None]]] = {}
    for o in outcomes:
        for a in by_case.get(case_of(o.processArea, o.caseKey), ()):
            slot = latest.setdefault((a.experiment, o.metric), {}).setdefault(case_of(a.processArea, a.caseKey),
                                                                                 [None, None])
            i = 0 if o.observedAt >= a.at else 1
            held = slot[i]
            if held is None or o.observedAt > held[0]:
                slot[i] = (o.observedAt, o.value, a)
    rows = []
    for (experiment, metric), cases in latest.items():
        spec = policy.spec(metric)
        better, method = (spec.better, spec.method) if spec else (None, "auto")
        seed = "|".join(map(str, (*experiment, metric)))
        after = [s[0] for s in cases.values() if s[0] is not None]
        before = [s[1] for s in cases.values() if s[1] is not None]
        split = {c: [v for _, v, a in after if a.cohort == c] for c in (TREATED, CONTROL)}
        tally = arms[experiment]
        treated_with_outcome = [a for _, _, a in after if a.cohort == TREATED]
        row = {"processArea": experiment[0], "deviationPattern": experiment[1], "actionId": experiment[2],
               "actionVersion": experiment[3], "metric": metric, "better": better,
               "unit": spec.unit if spec else None,
               "cases": {"treated": tally["treated"], "control": tally["control"]},
               "actedShare": _r(sum(a.acted for a in treated_with_outcome) / len(treated_with_outcome))
               if treated_with_outcome else None,
               **estimate(split[TREATED], split[CONTROL], better, method, policy.minSamples, seed),
               "baseline": {c: _cohort([v for _, v, a in before if a.cohort == c]) for c in (TREATED, CONTROL)}}
        if weekly:
            weeks: dict[str, dict[str, list[float]]] = {}
            for when, v, a in after:
                weeks.setdefault(week_of(when), {TREATED: [], CONTROL: []})[a.cohort].append(v)
            row["weeks"] = [{"week": w, **estimate(g[TREATED], g[CONTROL], better, method, policy.minSamples,
                                                     f"{seed}|{w}")} for w, g in sorted(weeks.items())]
        rows.append(row)
    rows.sort(key=lambda r: (r["processArea"], r["deviationPattern"], r["actionId"], r["actionVersion"],
                             r["metric"]))
    return rows


def recurrence(assignments: Iterable[Assignment]) -> list[dict[str, Any]]:
    """Per action version the agent ran: verified cases, those whose deviation came back after verification
    (≥ 1 recurrence), their share (`recurrenceRate`, None before any case is verified), recurrences and echoes."""
    tally: dict[tuple[str, int], list[int]] = {}
    for a in assignments:
        if a.ran is None:
            continue
        t = tally.setdefault(a.ran, [0, 0, 0, 0])  # verified, recurred, recurrences, echoes
        if a.verified:
            t[0] += 1
            t[1] += a.recurrences > 0
        t[2] += a.recurrences
        t[3] += a.echoes
    return [{"actionId": action, "actionVersion": version, "verified": v, "recurred": r,
             "recurrenceRate": _r(r / v) if v else None, "recurrences": n, "echoes": e}
            for (action, version), (v, r, n, e) in sorted(tally.items())]
