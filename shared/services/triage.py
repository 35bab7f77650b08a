"""Triage: is the data there, is the case in the control group, and then on to the planner."""
from __future__ import annotations

from typing import Any

from ..domain import cohort
from ..domain.contracts import missing
from ..domain.messages import nudge
from ..domain.opportunity import Opportunity
from ..domain.status import Status
from ..runtime import Services
from . import messaging
from .lifecycle import advance


def holdout_percent(services: Services, opp: Opportunity) -> float:
    """The best candidate action's holdout share, else the policy's."""
    candidates = services.catalog.candidates(opp.processArea, opp.deviationPattern)
    for action in candidates:
        if action.id == opp.scores.actionId and action.holdoutPercent is not None:
            return action.holdoutPercent
    return services.policy.holdoutPercent


def run(services: Services, opp: Opportunity, cid: str, run_log: Any) -> str:
    if opp.status is not Status.new:
        return "already triaged"
    policy = services.policy
    candidates = services.catalog.candidates(opp.processArea, opp.deviationPattern)
    # Control cases are drawn before anything else, so data quality cannot bias who is held out.
    group = cohort.assign(policy.experimentSalt, f"{opp.processArea}|{opp.caseKey}", holdout_percent(services, opp))
    if group == cohort.CONTROL:
        advance(services, opp, [Status.control], "triage", f"held out as a control case ({policy.experimentSalt})",
                cid, cohort=cohort.CONTROL)
        return "control"
    gaps = {a.id: missing(a, opp.attributes) for a in candidates}
    if candidates and all(gaps.values()):
        best = min(candidates, key=lambda a: len(gaps[a.id]))
        fields = gaps[best.id]
        advance(services, opp, [Status.needs_data], "triage", f"{best.id} needs {', '.join(fields)}", cid,
                outputs={"missing": fields, "actionId": best.id}, cohort=cohort.TREATED)
        services.notifier.notify("enrich", opp.id, f"{opp.caseKey}: {best.name} needs {', '.join(fields)}",
                                 {"actionId": best.id, "missing": fields, "caseKey": opp.caseKey,
                                  "processArea": opp.processArea, "deviationPattern": opp.deviationPattern})
        return "needs_data"
    moved = advance(services, opp, [Status.triaged], "triage",
                    "data complete for a candidate action" if candidates else "no catalog action: a person plans it",
                    cid, cohort=cohort.TREATED)
    messaging.send(services, [nudge("plan", moved.id, moved.revision, cid)])
    return "triaged"
