"""Triage: is someone else on this case, is the case held out, is the data there; then on to the planner."""
from __future__ import annotations

from typing import Any, Optional

from ..domain import cohort
from ..domain.claims import RELEASED, claim_key, claim_space
from ..domain.contracts import missing
from ..domain.messages import nudge
from ..domain.opportunity import Opportunity
from ..domain.status import Status
from ..ports import Claim
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


def claim_of(services: Services, opp: Opportunity) -> Optional[Claim]:
    """The claim this opportunity makes on its case, if it needs one."""
    key = claim_key(opp, services.catalog.cross_pattern)
    return Claim(claim_space(opp), key, opp.id) if key else None


def twin_of(services: Services, opp: Opportunity) -> Optional[str]:
    """The live opportunity already holding this case for this action, or None once this one holds it."""
    mine = claim_of(services, opp)
    if mine is None:
        return None
    for _ in range(3):
        held = services.store.claim_many([mine])[mine.key]
        if held.holder == opp.id:
            return None
        other = services.store.get(held.holder)
        if other is not None and other.status not in RELEASED:
            return other.id
        if services.store.take_over(held, opp.id):
            return None
    return held.holder  # three take-overs lost in a row: someone else is actively claiming; stand back


def run(services: Services, opp: Opportunity, cid: str, run_log: Any) -> str:
    if opp.status is not Status.new:
        return "already triaged"
    twin = twin_of(services, opp)
    if twin is not None:
        advance(services, opp, [Status.duplicate], "triage", f"{twin} already holds this case for "
                f"{opp.scores.actionId}", cid, outputs={"duplicateOf": twin})
        return "duplicate"
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
