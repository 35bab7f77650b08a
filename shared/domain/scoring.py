"""Priority = (Impact × Feasibility) ÷ (1 + Risk), with a rationale a person can check by hand.

The hot path computes numbers and keeps the terms (`Basis`); the rationale text is rendered from
them once, when the opportunity is stored, so scoring stays a few microseconds a finding.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .catalog import Candidate, Catalog
from .kpi import describe
from .policy import ScoringPolicy


class Basis(NamedTuple):
    """The terms behind a score, enough to rebuild its arithmetic in words."""

    impact_source: str  # "reported", "severity:<level>" or "default"
    action: Candidate | None
    present: int
    required: int
    tier: str
    tier_risk: float
    flags: int
    flag_risk: float
    blast_risk: float
    # The KPI movements the finding expects (the opportunity's `kpis`): not a term of the score, but the
    # hypothesis a person checks it against, so the rationale names them. Empty for most findings.
    expects: tuple[dict[str, Any], ...] = ()
    # The calibration applied to a reported impact: (reported impact, factor, its evidence in words), or None.
    calibration: tuple[float, float, str] | None = None


@dataclass(slots=True)
class Scores:
    impact: float
    feasibility: float
    risk: float
    priority: float
    actionId: str | None = None
    basis: Basis | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"impact": round(self.impact, 2), "feasibility": round(self.feasibility, 4),
                "risk": round(self.risk, 4), "priority": round(self.priority, 2), "actionId": self.actionId}

    def rationale(self) -> str:
        """The arithmetic in words; empty when the terms were not kept (a score read back from storage)."""
        b = self.basis
        if b is None:
            return ""
        if b.impact_source == "reported" and b.calibration is not None:
            reported, _, why = b.calibration
            impact = f"Impact {self.impact:,.2f} = reported {reported:,.2f} {why}"
        elif b.impact_source == "reported":
            impact = f"Impact {self.impact:,.2f} (reported)"
        elif b.impact_source == "default":
            impact = f"Impact {self.impact:,.2f} (no estimate; policy default)"
        else:
            impact = f"Impact {self.impact:,.2f} (no estimate; {b.impact_source[9:]} severity default)"
        if b.action is None:
            feasibility = f"Feasibility {self.feasibility:.2f} (no enabled catalog action; manual fix)"
        else:
            terms = (f"action {b.action.id} v{b.action.version} × {b.present}/{b.required} contract fields × "
                     f"(1 − complexity {b.action.complexity:.2f})")
            share = b.present / b.required if b.required else 1.0
            if share * (1.0 - b.action.complexity) < self.feasibility - 1e-9:
                feasibility = f"Feasibility {self.feasibility:.2f} (manual fix; {terms} is lower)"
            else:
                feasibility = f"Feasibility {self.feasibility:.2f} = {terms}"
        text = (f"{impact}; {feasibility}; Risk {self.risk:.2f} = {b.tier} tier {b.tier_risk:.2f} + "
                f"{b.flags} compliance flag(s) {b.flag_risk:.2f} + blast radius {b.blast_risk:.2f}; "
                f"Priority = {self.impact:,.2f} × {self.feasibility:.2f} ÷ (1 + {self.risk:.2f}) = "
                f"{self.priority:,.2f}")
        if b.expects:
            text += "; " + describe(b.expects)
        return text

    def calibrate(self, factor: float, why: str) -> None:
        """Multiply the impact by a calibration `factor` (risk keeps the money at stake as reported)."""
        if self.basis is None:
            return
        reported = self.impact if self.basis.calibration is None else self.basis.calibration[0]
        self.impact = reported * factor
        self.priority = self.impact * self.feasibility / (1.0 + self.risk)
        # tuple.__new__ over NamedTuple._replace: ~1 µs less, on a path every calibrated finding takes.
        self.basis = tuple.__new__(Basis, (*self.basis[:-1], (reported, factor, why)))

    def expecting(self, kpis: Sequence[dict[str, Any]]) -> None:
        """Keep the expected KPI movements with the terms, for the rationale (rendered lazily, as the rest)."""
        if self.basis is not None:
            self.basis = self.basis._replace(expects=tuple(kpis))


class Scorer:
    """Scores findings against one catalog and policy, with the per-pattern work done once."""

    __slots__ = ("_catalog", "_plans", "_policy")

    def __init__(self, catalog: Catalog, policy: ScoringPolicy):
        self._catalog, self._policy = catalog, policy
        self._plans: dict[tuple[str, str], tuple[Candidate, ...]] = {}

    def __call__(self, process_area: str, pattern: str, attributes: Mapping[str, Any], impact_money: float | None,
                 severity: str | None, compliance_flags: Sequence[str]) -> Scores:
        p = self._policy
        if impact_money is not None:
            impact, source = impact_money, "reported"
        elif severity is not None:
            impact, source = p.severityImpact.get(severity, p.defaultImpact), "severity:" + severity
        else:
            impact, source = p.defaultImpact, "default"

        plan = self._plans.get((process_area, pattern))
        if plan is None:
            plan = self._plans[(process_area, pattern)] = self._catalog.candidates_fast(process_area, pattern)
        best = None
        feasibility = -1.0
        present = total = 0
        for c in plan:
            have = 0
            for name in c.required:
                if attributes.get(name) not in (None, ""):
                    have += 1
            need = len(c.required)
            value = (have / need if need else 1.0) * (1.0 - c.complexity)
            if value > feasibility:
                best, feasibility, present, total = c, value, have, need
        # A person can always fix it by hand: missing data never makes a case less feasible than that.
        if feasibility < p.feasibilityWithoutAction:
            feasibility = p.feasibilityWithoutAction

        tier = best.tier if best is not None else "none"
        tier_risk = p.riskTierWeight.get(tier, 1.0)
        flag_risk = p.complianceFlagWeight * len(compliance_flags)
        blast = p.blastRadiusWeight * min(1.0, impact / p.blastRadiusAmount)
        risk = tier_risk + flag_risk + blast
        # tuple.__new__ skips NamedTuple's Python-level constructor: this runs once per finding.
        basis = tuple.__new__(Basis, (source, best, present, total, tier, tier_risk, len(compliance_flags),
                                      flag_risk, blast, (), None))
        # Unrounded: rounding is presentation (to_dict, rationale), and costs more than the arithmetic here.
        return Scores(impact, feasibility, risk, impact * feasibility / (1.0 + risk),
                      best.id if best is not None else None, basis)


class Calibrations:
    """Calibration factors (domain/learning.py) by (processArea, pattern, action id, version) and KPI: the learning
    service keeps them; scoring multiplies a reported impact by the one for the finding's first named KPI that has
    one, else for the action's primary KPI. Empty (falsy) until something was measured."""

    __slots__ = ("_by", "_primaries", "_primary")

    def __init__(self, factors: Mapping[tuple[str, str, str, int], Mapping[str, tuple[float, str]]] | None = None,
                 primary: Callable[[str], str] | None = None):
        self._by = dict(factors or {})
        self._primary = primary
        # The primary KPI per action id, asked once: the policy's lookup costs ~2 µs a finding otherwise.
        self._primaries: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self._by)

    def factor(self, area: str, pattern: str, action: Candidate, kpis: Sequence[dict[str, Any]]
               ) -> tuple[float, str] | None:
        """(factor, evidence) for this pattern's candidate action, or None when nothing was measured for it."""
        by_metric = self._by.get((area, pattern, action.id, action.version))
        if not by_metric:
            return None
        for k in kpis:
            hit = by_metric.get(k.get("metric"))  # type: ignore[arg-type]
            if hit is not None:
                return hit
        if self._primary is None:
            return None
        primary = self._primaries.get(action.id)
        if primary is None:
            primary = self._primaries[action.id] = self._primary(action.id)
        return by_metric.get(primary)


NO_CALIBRATION = Calibrations()


def calibrated(scores: Scores, calibrations: Calibrations, area: str, pattern: str,
               kpis: Sequence[dict[str, Any]] = ()) -> Scores:
    """The scores with a reported impact calibrated by what was measured for its candidate action (in place)."""
    b = scores.basis
    if not calibrations or b is None or b.action is None or b.impact_source != "reported":
        return scores
    hit = calibrations.factor(area, pattern, b.action, kpis)
    if hit is not None:
        scores.calibrate(*hit)
    return scores


def scorer(catalog: Catalog, policy: ScoringPolicy) -> Scorer:
    """The Scorer for this catalog and policy, kept on the catalog so its per-pattern plans are reused."""
    cached = catalog.scorers.get(id(policy))
    if cached is None or cached[0] is not policy:
        cached = catalog.scorers[id(policy)] = (policy, Scorer(catalog, policy))
    return cached[1]


def score(process_area: str, pattern: str, attributes: Mapping[str, Any], impact_money: float | None,
          severity: str | None, compliance_flags: Sequence[str], catalog: Catalog,
          policy: ScoringPolicy) -> Scores:
    """Score one finding; pure, and cheap enough to call 100,000 times a second."""
    return scorer(catalog, policy)(process_area, pattern, attributes, impact_money, severity, compliance_flags)
