"""Impact per action version: treated vs control on each KPI, overall and by ISO week, with a baseline.

The unit is the case. Each case was drawn into a cohort for one action version when triage first saw
it (its *assignment*); the comparison keeps every case in the cohort it was drawn into, whatever
happened next (intention to treat), because dropping treated cases that a person rejected would let
selection, not the action, make the difference. A case's latest observation of a metric after its
assignment is its outcome; its latest one before is its baseline. Beside the intention-to-treat
difference each row gives the effect on the cases the arm's action ran on (Bloom's complier estimate),
what the miners expected, what actually ran on each treated case, and the sample-ratio check.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import srm, stats
from .cohort import CONTROL, TREATED
from .outcomes import Outcome, case_of
from .policy import Measurement

# Statuses where the agent's action reached the system of record (a rollback still touched it).
ACTED = frozenset({"executed", "verified", "compensated", "closed"})
# A case whose history passed one of these was touched by a person (approval, review, enrichment, a retry after a
# failure: failed -> executing only by a person's answer) or rolled back: never deflected.
TOUCHED = frozenset({"awaiting_approval", "needs_review", "needs_data", "compensated", "failed"})
Z95 = 1.959964
ITT_POPULATION = "every case drawn for this action version, in the cohort it was drawn into (intention to treat)"
ACTED_POPULATION = "cases the action ran on (ITT ÷ share acted; assumes a case nobody acted on is unaffected)"
# Bloom's estimate assumes a treated case this action did not run on is unaffected. Another action run on a share s
# of the treated cases adds s ÷ c × its effect to the estimate: at 5% with this action on 60% that is 0.08 × the
# other's effect; at 50% / 50% (the review's case: −1 true, −3 other) it reads −4. Above 5% no estimate is given.
OTHER_MAX = 0.05


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
    # The control share the case was drawn with, in percent (the arm's `holdout`); None when unknown.
    holdout: float | None = None
    # What the miners expected of each KPI on this case (the opportunity's `kpis`): metric -> (change, unit).
    expected: dict[str, tuple[float, str | None]] = field(default_factory=dict, hash=False)
    # Its history passed a status where a person touched it or it was rolled back (TOUCHED).
    touched: bool = False

    @property
    def acted(self) -> bool:
        return acted(self.status, self.closedFrom)

    @property
    def arm_ran(self) -> bool:
        """The agent ran the very action version the case was drawn for, and it reached the system of record."""
        return self.acted and self.ran == (self.actionId, self.version)

    @property
    def other_ran(self) -> bool:
        """The planner, the LLM or a person ran another action (or version) than the one the case was drawn for."""
        return self.acted and self.ran is not None and self.ran != (self.actionId, self.version)

    @property
    def deflected(self) -> bool:
        """Resolved with no person touching it: verified (or closed from verified), no approval, review, enrichment,
        retry or rollback on the way."""
        return self.verified and not self.touched and self.ran is not None

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


def _se(e: stats.Estimate) -> float:
    """The standard error behind an interval: Welch's from its t quantile; a bootstrap's as (high − low) ÷ 3.92."""
    if e.method == stats.WELCH:
        return 0.0 if e.df is None else (e.high - e.low) / (2 * stats.t_quantile(0.975, e.df))
    return (e.high - e.low) / (2 * Z95)


def complier(treated: Sequence[float], ran: Sequence[bool], e: stats.Estimate, se: float) -> dict[str, Any] | None:
    """The effect on the treated cases the action ran on: ITT ÷ c (Bloom), c the share of `treated` it ran on, with
    the delta-method se (var(c) = c(1 − c)/n and the covariance of the treated mean with c); None when c is 0."""
    n = len(treated)
    c = sum(ran) / n
    if c == 0:
        return None
    effect = e.difference / c
    mean_y = stats.mean(treated)
    # Without the covariance term the se is too wide: 97.6% coverage at 200 treated / 200 control over 2,000
    # seeded runs (96.2% with it), outside a 93-97% band.
    cov = math.fsum((y - mean_y) * (d - c) for y, d in zip(treated, ran, strict=True)) / (n - 1) / n
    var = (se * se - 2 * effect * cov + effect * effect * c * (1 - c) / n) / (c * c)
    se_acted = math.sqrt(max(var, 0.0))
    q = (e.high - e.low) / (2 * se) if se > 0 else Z95  # the ITT interval's own quantile (Welch's t)
    return {"difference": _r(effect), "se": _r(se_acted), "ci": {"low": _r(effect - q * se_acted),
            "high": _r(effect + q * se_acted), "level": 0.95}, "share": _r(c), "population": ACTED_POPULATION}


def _acted(treated: Sequence[float], ran: Sequence[bool], other: Sequence[bool], e: stats.Estimate,
           se: float) -> dict[str, Any]:
    """`acted` (the complier effect), or None with `actedWhy` when it is not identified."""
    share = sum(other) / len(treated)
    if share > OTHER_MAX:
        return {"acted": None, "actedWhy": f"another action ran on {100 * share:.3g}% of treated cases: the effect "
                                           "of this action alone is not identified"}
    found = complier(treated, ran, e, se)
    return {"acted": found} if found else {"acted": None, "actedWhy": "this action ran on none of the treated cases "
                                                                      "with an outcome"}


def estimate(treated: Sequence[float], control: Sequence[float], better: str | None, method: str,
             min_samples: int, seed: str, ran: Sequence[bool] | None = None,
             other: Sequence[bool] = ()) -> dict[str, Any]:
    """n and means per cohort; the difference, its se, 95% CI and p-value once both cohorts have `min_samples`;
    with `ran` and `other` (per treated value: did the arm's action run on it, did another), `acted`."""
    out: dict[str, Any] = {"treated": _cohort(treated), "control": _cohort(control), "minSamples": min_samples}
    if ran is not None:
        out["acted"] = None
    if len(treated) < min_samples or len(control) < min_samples:
        short = [f"{name} has {len(v)}" for name, v in (("treated", treated), ("control", control))
                 if len(v) < min_samples]
        return {**out, "status": "not_enough_data", "verdict": "not_enough_data",
                "reason": f"needs {min_samples} cases with an outcome per cohort; {' and '.join(short)}"}
    e = stats.compare(treated, control, method, seed)
    se = _se(e)
    significant = e.low > 0 or e.high < 0
    if not significant or better is None:
        verdict = "no_detectable_effect" if not significant else "changed"
    else:
        verdict = "better" if (e.difference < 0) == (better == "lower") else "worse"
    if ran is not None:
        out.update(_acted(treated, ran, other, e, se))
    return {**out, "status": "ok", "difference": _r(e.difference), "se": _r(se), "ci": {"low": _r(e.low),
            "high": _r(e.high), "level": 0.95}, "pValue": _r(e.p_value, 6), "method": e.method,
            "significant": significant, "verdict": verdict}


def _srm(treated: Sequence[Assignment], control: Sequence[Assignment]) -> dict[str, Any] | None:
    # The expected control share is the mean of the shares each case was drawn with (a policy change mid-way).
    shares = [a.holdout for a in (*treated, *control) if a.holdout is not None]
    if not shares:
        return None
    return srm.check(len(treated), len(control), math.fsum(shares) / len(shares)).to_dict()


def _expected(treated: Sequence[tuple[float, Assignment]], metric: str, unit: str | None) -> dict[str, Any] | None:
    changes = [a.expected[metric] for _, a in treated if a.arm_ran and metric in a.expected]
    if not changes:
        return None
    return {"change": _r(math.fsum(c for c, _ in changes) / len(changes)), "n": len(changes),
            "unit": unit or next((u for _, u in changes if u), None)}


def _attribution(treated: Sequence[tuple[float, Assignment]], control: Sequence[float]) -> list[dict[str, Any]]:
    groups: dict[tuple[str | None, int | None], list[float]] = {}
    for v, a in treated:
        groups.setdefault(a.ran if a.acted and a.ran else (None, None), []).append(v)
    out = [{"cohort": TREATED, "actionId": k[0], "actionVersion": k[1], **_cohort(vs)}
           for k, vs in sorted(groups.items(), key=lambda kv: (kv[0][0] is None, kv[0][0] or "", kv[0][1] or 0))]
    return [*out, {"cohort": CONTROL, "actionId": None, "actionVersion": None, **_cohort(control)}]


def measure(assignments: Iterable[Assignment], outcomes: Iterable[Outcome], policy: Measurement,
            weekly: bool = True) -> list[dict[str, Any]]:
    """One row per (processArea, pattern, action, version, metric) that has outcomes, ranked by action."""
    by_case: dict[tuple[str, str], list[Assignment]] = {}
    members: dict[tuple, dict[str, list[Assignment]]] = {}
    for a in assignments:
        by_case.setdefault(case_of(a.processArea, a.caseKey), []).append(a)
        members.setdefault(a.experiment, {TREATED: [], CONTROL: []}).setdefault(a.cohort, []).append(a)
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
        unit = spec.unit if spec else None
        seed = "|".join(map(str, (*experiment, metric)))
        after = [s[0] for s in cases.values() if s[0] is not None]
        before = [s[1] for s in cases.values() if s[1] is not None]
        treated = [(v, a) for _, v, a in after if a.cohort == TREATED]
        control = [(v, a) for _, v, a in after if a.cohort == CONTROL]
        drawn = members[experiment]
        row = {"processArea": experiment[0], "deviationPattern": experiment[1], "actionId": experiment[2],
               "actionVersion": experiment[3], "metric": metric, "better": better, "unit": unit,
               "cases": {"treated": len(drawn[TREATED]), "control": len(drawn[CONTROL])},
               "population": ITT_POPULATION,
               "actedShare": _r(sum(a.acted for _, a in treated) / len(treated)) if treated else None,
               **estimate([v for v, _ in treated], [v for v, _ in control], better, method, policy.minSamples, seed,
                          [a.arm_ran for _, a in treated], [a.other_ran for _, a in treated]),
               "expected": _expected(treated, metric, unit),
               "attribution": _attribution(treated, [v for v, _ in control]),
               "srm": _srm([a for _, a in treated], [a for _, a in control]),
               "srmAssigned": _srm(drawn[TREATED], drawn[CONTROL]),
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


@dataclass(frozen=True, slots=True)
class Volume:
    """One experiment's cases: drawn per cohort, those the arm's action ran on, those it resolved with no person
    touching them (deflected), and when the first and last were drawn."""

    treated: int
    control: int
    acted: int
    deflected: int
    first: datetime
    last: datetime


def volumes(assignments: Iterable[Assignment]) -> dict[tuple[str, str, str, int], Volume]:
    """The Volume of each experiment (ROI counts from it)."""
    tally: dict[tuple[str, str, str, int], list[Any]] = {}
    for a in assignments:
        t = tally.setdefault(a.experiment, [0, 0, 0, 0, a.at, a.at])
        t[0 if a.cohort == TREATED else 1] += 1
        if a.cohort == TREATED and a.arm_ran:
            t[2] += 1
            t[3] += a.deflected
        t[4], t[5] = min(t[4], a.at), max(t[5], a.at)
    return {k: Volume(*v) for k, v in tally.items()}


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
