"""Priority = (Impact × Feasibility) ÷ (1 + Risk), with a rationale a person can check by hand.

The hot path computes numbers and keeps the terms (`Basis`); the rationale text is rendered from
them once, when the opportunity is stored, so scoring stays a few microseconds a finding.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple, Optional, Sequence

from .catalog import Catalog
from .policy import ScoringPolicy


class Basis(NamedTuple):
    """The terms behind a score, enough to rebuild its arithmetic in words."""

    impact_source: str  # "reported", "severity:<level>" or "default"
    action_id: Optional[str]
    action_version: int
    present: int
    required: int
    complexity: float
    tier: str
    tier_risk: float
    flags: int
    flag_risk: float
    blast_risk: float


@dataclass(slots=True)
class Scores:
    impact: float
    feasibility: float
    risk: float
    priority: float
    actionId: Optional[str] = None
    basis: Optional[Basis] = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"impact": round(self.impact, 2), "feasibility": round(self.feasibility, 4),
                "risk": round(self.risk, 4), "priority": round(self.priority, 2), "actionId": self.actionId}

    def rationale(self) -> str:
        """The arithmetic in words; empty when the terms were not kept (a score read back from storage)."""
        b = self.basis
        if b is None:
            return ""
        if b.impact_source == "reported":
            impact = f"Impact {self.impact:,.2f} (reported)"
        elif b.impact_source == "default":
            impact = f"Impact {self.impact:,.2f} (no estimate; policy default)"
        else:
            impact = f"Impact {self.impact:,.2f} (no estimate; {b.impact_source[9:]} severity default)"
        if b.action_id is None:
            feasibility = f"Feasibility {self.feasibility:.2f} (no enabled catalog action; manual fix)"
        else:
            feasibility = (f"Feasibility {self.feasibility:.2f} = action {b.action_id} v{b.action_version} × "
                           f"{b.present}/{b.required} contract fields × (1 − complexity {b.complexity:.2f})")
        return (f"{impact}; {feasibility}; Risk {self.risk:.2f} = {b.tier} tier {b.tier_risk:.2f} + "
                f"{b.flags} compliance flag(s) {b.flag_risk:.2f} + blast radius {b.blast_risk:.2f}; "
                f"Priority = {self.impact:,.2f} × {self.feasibility:.2f} ÷ (1 + {self.risk:.2f}) = "
                f"{self.priority:,.2f}")


def score(
    process_area: str,
    pattern: str,
    attributes: Mapping[str, Any],
    impact_money: Optional[float],
    severity: Optional[str],
    compliance_flags: Sequence[str],
    catalog: Catalog,
    policy: ScoringPolicy,
) -> Scores:
    """Score one finding; pure, and cheap enough to call 100,000 times a second."""
    if impact_money is not None:
        impact, source = impact_money, "reported"
    elif severity is not None:
        impact, source = policy.severityImpact.get(severity, policy.defaultImpact), f"severity:{severity}"
    else:
        impact, source = policy.defaultImpact, "default"

    best = None
    feasibility = policy.feasibilityWithoutAction
    present = total = 0
    for c in catalog.candidates_fast(process_area, pattern):
        have = 0
        for name in c.required:
            if attributes.get(name) not in (None, ""):
                have += 1
        need = len(c.required)
        value = (have / need if need else 1.0) * (1.0 - c.complexity)
        if best is None or value > feasibility:
            best, feasibility, present, total = c, value, have, need

    tier = best.tier if best is not None else "none"
    tier_risk = policy.riskTierWeight.get(tier, 1.0)
    flag_risk = policy.complianceFlagWeight * len(compliance_flags)
    blast = policy.blastRadiusWeight * min(1.0, impact / policy.blastRadiusAmount)
    risk = tier_risk + flag_risk + blast
    priority = impact * feasibility / (1.0 + risk)
    basis = Basis(source, best.id if best else None, best.version if best else 0, present, total,
                  best.complexity if best else 0.0, tier, tier_risk, len(compliance_flags), flag_risk, blast)
    # Unrounded: rounding is presentation (to_dict, rationale), and costs more than the arithmetic here.
    return Scores(impact, feasibility, risk, priority, best.id if best else None, basis)
