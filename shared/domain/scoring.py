"""Priority = (Impact × Feasibility) ÷ (1 + Risk), with a rationale a person can check by hand."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from .catalog import Action, Catalog
from .policy import ScoringPolicy


@dataclass(frozen=True, slots=True)
class Scores:
    impact: float
    feasibility: float
    risk: float
    priority: float
    actionId: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {"impact": self.impact, "feasibility": self.feasibility, "risk": self.risk,
                "priority": self.priority, "actionId": self.actionId}


def _contract_share(action: Action, attributes: Mapping[str, Any]) -> tuple[int, int]:
    required = action.required_fields()
    present = sum(1 for name in required if attributes.get(name) not in (None, ""))
    return present, len(required)


def score(
    process_area: str,
    pattern: str,
    attributes: Mapping[str, Any],
    impact_money: Optional[float],
    severity: Optional[str],
    compliance_flags: Sequence[str],
    catalog: Catalog,
    policy: ScoringPolicy,
) -> tuple[Scores, str]:
    """Score one finding and explain the arithmetic; pure, so it is cheap to call 100,000 times a second."""
    if impact_money is not None:
        impact = impact_money
        impact_why = f"Impact {impact:,.2f} (reported)"
    elif severity is not None:
        impact = policy.severityImpact.get(severity, policy.defaultImpact)
        impact_why = f"Impact {impact:,.2f} (no estimate; {severity} severity default)"
    else:
        impact = policy.defaultImpact
        impact_why = f"Impact {impact:,.2f} (no estimate; policy default)"

    best: Optional[Action] = None
    feasibility = policy.feasibilityWithoutAction
    present = total = 0
    for action in catalog.candidates(process_area, pattern):
        have, need = _contract_share(action, attributes)
        share = have / need if need else 1.0
        value = share * (1.0 - action.complexity)
        if best is None or value > feasibility:
            best, feasibility, present, total = action, value, have, need
    if best is None:
        feasibility_why = f"Feasibility {feasibility:.2f} (no enabled catalog action; manual fix)"
        tier = "none"
    else:
        feasibility_why = (f"Feasibility {feasibility:.2f} = action {best.id} v{best.version} × "
                           f"{present}/{total} contract fields × (1 − complexity {best.complexity:.2f})")
        tier = best.riskTier.value

    tier_risk = policy.riskTierWeight.get(tier, 1.0)
    flag_risk = policy.complianceFlagWeight * len(compliance_flags)
    blast = policy.blastRadiusWeight * min(1.0, impact / policy.blastRadiusAmount)
    risk = tier_risk + flag_risk + blast
    priority = impact * feasibility / (1.0 + risk)
    rationale = (
        f"{impact_why}; {feasibility_why}; Risk {risk:.2f} = {tier} tier {tier_risk:.2f} + "
        f"{len(compliance_flags)} compliance flag(s) {flag_risk:.2f} + blast radius {blast:.2f}; "
        f"Priority = {impact:,.2f} × {feasibility:.2f} ÷ (1 + {risk:.2f}) = {priority:,.2f}"
    )
    return Scores(round(impact, 2), round(feasibility, 4), round(risk, 4), round(priority, 2),
                  best.id if best else None), rationale
