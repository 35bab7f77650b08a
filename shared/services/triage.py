"""Triage: is someone else on this case, is the case held out, is the data there; then on to the planner."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

from ..domain import cohort
from ..domain.catalog import Action
from ..domain.claims import RELEASED, claim_key, claim_space
from ..domain.contracts import missing
from ..domain.messages import nudge
from ..domain.opportunity import Opportunity, rescore
from ..domain.status import Status
from ..ports import Claim
from ..ports import Services
from . import approvals, messaging, sor
from .lifecycle import advance


def holdout_percent(services: Services, opp: Opportunity) -> float:
    """The best candidate action's holdout share, else the policy's."""
    candidates = services.catalog.candidates(opp.processArea, opp.deviationPattern)
    for action in candidates:
        if action.id == opp.scores.actionId and action.holdoutPercent is not None:
            return action.holdoutPercent
    return services.policy.holdoutPercent


def arm_of(services: Services, opp: Opportunity, candidates: list[Action]) -> Optional[dict[str, Any]]:
    """The action version this case is drawn for (kept from its first triage), or None without a candidate."""
    if opp.arm is not None:
        return opp.arm
    best = next((a for a in candidates if a.id == opp.scores.actionId), candidates[0] if candidates else None)
    if best is None:
        return None
    return {"actionId": best.id, "version": best.version, "at": services.clock.now().isoformat()}


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
        held = services.coordination.claim_many([mine])[mine.key]
        if held.holder == opp.id:
            return None
        other = services.store.get(held.holder)
        if other is not None and other.status not in RELEASED:
            return other.id
        if services.coordination.take_over(held, opp.id):
            return None
    return held.holder  # three take-overs lost in a row: someone else is actively claiming; stand back


def to_look_up(services: Services, opp: Opportunity) -> list[Action]:
    """Candidates whose missing fields the system of record could fill (no I/O: decides whether to read)."""
    out = []
    for action in services.catalog.candidates(opp.processArea, opp.deviationPattern):
        lookup = action.lookup
        if lookup is None or not opp.attributes.get(lookup.key):
            continue
        if set(missing(action, opp.attributes)) & set(lookup.fields):
            out.append(action)
    return out


def lookups(services: Services, opp: Opportunity, cid: str,
            actions: Optional[list[Action]] = None) -> dict[str, dict[str, Any]]:
    """Records the system of record holds for what the candidates lack, by action id (flow calls: I/O)."""
    out: dict[str, dict[str, Any]] = {}
    for action in to_look_up(services, opp) if actions is None else actions:
        lookup = action.lookup
        record = sor.read(services, {"type": lookup.record, "id": str(opp.attributes[lookup.key])},
                          f"lookup:{opp.id}:{opp.revision}:{action.id}", cid, opp.id)
        if record is not None:
            out[action.id] = record
    return out


def _filled(services: Services, opp: Opportunity, candidates: list, found: dict[str, dict[str, Any]]
            ) -> tuple[Opportunity, list[str]]:
    """The opportunity with the looked-up fields it lacked (rescored: feasibility rose), and the gaps left."""
    attributes, filled = dict(opp.attributes), {}
    for action in candidates:
        record = found.get(action.id)
        for name in (action.lookup.fields if record is not None and action.lookup else ()):
            if attributes.get(name) in (None, "") and record.get(name) not in (None, ""):
                attributes[name] = filled[name] = record[name]
    if not filled:
        return opp, []
    return rescore(replace(opp, attributes=attributes), services.catalog, services.policy.scoring), sorted(filled)


def run(services: Services, opp: Opportunity, cid: str, run_log: Any,
        found: Optional[dict[str, dict[str, Any]]] = None) -> str:
    """Triage one opportunity; `found` carries lookups done ahead (the batch does them concurrently)."""
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
    arm = arm_of(services, opp, candidates)
    if group == cohort.CONTROL:
        advance(services, opp, [Status.control], "triage", f"held out as a control case ({policy.experimentSalt})",
                cid, cohort=cohort.CONTROL, arm=arm)
        return "control"
    gaps = {a.id: missing(a, opp.attributes) for a in candidates}
    filled: list[str] = []
    if candidates and all(gaps.values()):
        found = lookups(services, opp, cid) if found is None else found
        opp, filled = _filled(services, opp, candidates, found)
        gaps = {a.id: missing(a, opp.attributes) for a in candidates}
    if candidates and all(gaps.values()) and not services.settings.approvals_off:
        best = fewest_gaps(candidates, gaps)
        fields = gaps[best.id]
        request, notice = approvals.open_enrichment(services, opp, best, fields, cid)
        advance(services, opp, [Status.needs_data], "triage", f"{best.id} needs {', '.join(fields)}", cid,
                outputs={"missing": fields, "actionId": best.id, "approvalId": request.id}, cohort=cohort.TREATED,
                approvals=[request], arm=arm)
        services.notifier.notify("enrich", opp.id, f"{opp.caseKey}: {best.name} needs {', '.join(fields)}",
                                 {**notice, "caseKey": opp.caseKey, "processArea": opp.processArea,
                                  "deviationPattern": opp.deviationPattern})
        return "needs_data"
    if candidates and all(gaps.values()):
        # Approvals are off: nobody can be asked for the data, and the planner must not guess it either.
        best = fewest_gaps(candidates, gaps)
        why = f"{best.id} needs {', '.join(gaps[best.id])}; {services.settings.approvals_off}: a person completes it"
        advance(services, opp, [Status.triaged, Status.needs_review], "triage", why, cid,
                outputs={"missing": gaps}, cohort=cohort.TREATED, arm=arm)
        return "needs_review"
    why = "data complete for a candidate action" if candidates else "no catalog action: a person plans it"
    if filled:
        why = f"data completed from the system of record ({', '.join(filled)})"
    moved = advance(services, opp, [Status.triaged], "triage", why, cid,
                    outputs={"filledFromRecord": filled} if filled else None, cohort=cohort.TREATED, arm=arm)
    messaging.send(services, [nudge("plan", moved.id, moved.revision, cid)])
    return "triaged"



def fewest_gaps(candidates: Any, gaps: dict[str, list[str]]) -> Any:
    """The candidate action missing the fewest contract fields."""
    return min(candidates, key=lambda a: len(gaps[a.id]))
