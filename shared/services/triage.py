"""Triage: is someone else on this case, is the case held out, is the data there; then on to the planner."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..domain import cohort, planning
from ..domain.catalog import Action
from ..domain.claims import RELEASED, claim_key, claim_space
from ..domain.contracts import missing
from ..domain.messages import nudge
from ..domain.opportunity import Opportunity, rescore
from ..domain.status import Status
from ..ports import Claim, Services
from . import approvals
from .lifecycle import step
from .stage import Found, Needs, Note, Outcome, Read, Result


def holdout_percent(services: Services, opp: Opportunity) -> float:
    """The best candidate action's holdout share, else the policy's: the share a case drawn before its arm recorded
    one was drawn with."""
    candidates = services.catalog.candidates(opp.processArea, opp.deviationPattern)
    for action in candidates:
        if action.id == opp.scores.actionId and action.holdoutPercent is not None:
            return action.holdoutPercent
    return services.policy.holdoutPercent


def arm_of(services: Services, opp: Opportunity, candidates: list[Action]) -> dict[str, Any] | None:
    """The action version this case is drawn for (kept from its first triage), or None without a candidate.

    The same rule for control and treated cases, from what triage knows before anything is done: the action the
    deterministic planner would plan for the case's attributes, else the top-scoring candidate. Crediting the
    top candidate alone credited outcomes to an action that never ran whenever the planner chose another."""
    if opp.arm is not None:
        return opp.arm
    planned = planning.decide(opp.attributes, candidates, services.policy.confidenceThreshold).plan
    chosen = planned.actionId if planned else opp.scores.actionId
    best = next((a for a in candidates if a.id == chosen), candidates[0] if candidates else None)
    if best is None:
        return None
    share = best.holdoutPercent if best.holdoutPercent is not None else services.policy.holdoutPercent
    return {"actionId": best.id, "version": best.version, "at": services.clock.now().isoformat(), "holdout": share}


def claim_of(services: Services, opp: Opportunity) -> Claim | None:
    """The claim this opportunity makes on its case, if it needs one."""
    key = claim_key(opp, services.catalog.cross_pattern)
    return Claim(claim_space(opp), key, opp.id) if key else None


def twins(services: Services, claims: Sequence[tuple[str, Claim]]) -> list[str | None]:
    """For each (opportunity id, its claim): the live opportunity already holding that case for that action,
    or None once this one holds it. One claim call for the batch; a holder that let go is taken over."""
    out: dict[int, str | None] = {}
    held: dict[str, Claim] = {}
    pending = list(enumerate(claims))
    for _ in range(3):
        held = services.coordination.claim_many([c for _, (_, c) in pending])
        foreign = {held[c.key].holder for _, (oid, c) in pending if held[c.key].holder != oid}
        others = services.store.get_many(list(foreign)) if foreign else {}
        lost = []
        for n, (oid, c) in pending:
            holder = held[c.key]
            other = others.get(holder.holder)
            if holder.holder == oid:
                out[n] = None
            elif other is not None and other.status not in RELEASED:
                out[n] = other.id
            elif services.coordination.take_over(holder, oid):
                out[n] = None
            else:
                lost.append((n, (oid, c)))
        pending = lost
        if not pending:
            break
    for n, (_, c) in pending:
        out[n] = held[c.key].holder  # three take-overs lost in a row: someone else is actively claiming; stand back
    return [out[n] for n in range(len(claims))]


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


def reads(opp: Opportunity, actions: list[Action]) -> dict[str, Read]:
    """The system-of-record reads for `actions`, by action id (one per candidate's lookup)."""
    return {a.id: Read(f"lookup:{opp.id}:{opp.revision}:{a.id}", {"type": lookup.record,
                                                                  "id": str(opp.attributes[lookup.key])})
            for a in actions if (lookup := a.lookup) is not None}


def needs(services: Services, opp: Opportunity) -> Needs:
    """Its claim on the case, and the records that could fill its gaps when every candidate has some."""
    if opp.status is not Status.new:
        return Needs()
    claim = claim_of(services, opp)
    candidates = services.catalog.candidates(opp.processArea, opp.deviationPattern)
    gaps = candidates and all(missing(a, opp.attributes) for a in candidates)
    treated = bool(gaps) and not _control(services, opp, arm_of(services, opp, candidates))
    wanted = list(reads(opp, to_look_up(services, opp)).values()) if treated else []
    return Needs([claim] if claim else [], [], wanted)


def _control(services: Services, opp: Opportunity, arm: dict[str, Any] | None) -> bool:
    # Control cases are drawn before anything else, so data quality cannot bias who is held out. The share is the
    # one the arm records (the SRM check compares with it); an arm drawn before it recorded one keeps the old rule.
    share = arm["holdout"] if arm and arm.get("holdout") is not None else holdout_percent(services, opp)
    return cohort.assign(services.policy.experimentSalt, f"{opp.processArea}|{opp.caseKey}", share) == cohort.CONTROL


def _filled(services: Services, opp: Opportunity, candidates: list, found: dict[str, dict[str, Any]]
            ) -> tuple[Opportunity, list[str]]:
    """The opportunity with the looked-up fields it lacked (rescored: feasibility rose), and the gaps left."""
    attributes, filled = dict(opp.attributes), {}
    for action in candidates:
        record = found.get(action.id)
        if record is None or action.lookup is None:
            continue
        for name in action.lookup.fields:
            if attributes.get(name) in (None, "") and record.get(name) not in (None, ""):
                attributes[name] = filled[name] = record[name]
    if not filled:
        return opp, []
    return rescore(replace(opp, attributes=attributes), services.catalog, services.policy.scoring), sorted(filled)


def decide(services: Services, opp: Opportunity, cid: str, found: Found) -> Outcome:
    """Triage one opportunity: a duplicate, a control case, short of data, or on to the planner."""
    if opp.status is not Status.new:
        return Outcome(Result.ALREADY_TRIAGED)
    mine = claim_of(services, opp)
    twin = found.twins.get(mine.key) if mine else None
    if twin is not None:
        return Outcome(Result.DUPLICATE, [step(services, opp, [Status.duplicate], "triage",
                                               f"{twin} already holds this case for {opp.scores.actionId}", cid,
                                               outputs={"duplicateOf": twin})])
    policy = services.policy
    candidates = services.catalog.candidates(opp.processArea, opp.deviationPattern)
    arm = arm_of(services, opp, candidates)
    if _control(services, opp, arm):
        return Outcome(Result.CONTROL, [step(services, opp, [Status.control], "triage",
                                             f"held out as a control case ({policy.experimentSalt})", cid,
                                             cohort=cohort.CONTROL, arm=arm)])
    gaps = {a.id: missing(a, opp.attributes) for a in candidates}
    filled: list[str] = []
    if candidates and all(gaps.values()):
        records = {a: found.records.get(r.key) for a, r in reads(opp, to_look_up(services, opp)).items()}
        opp, filled = _filled(services, opp, candidates, {a: r for a, r in records.items() if r is not None})
        gaps = {a.id: missing(a, opp.attributes) for a in candidates}
    if candidates and all(gaps.values()) and not services.settings.approvals_off:
        best = fewest_gaps(candidates, gaps)
        fields = gaps[best.id]
        request, notice = approvals.open_enrichment(services, opp, best, fields, cid)
        moved = step(services, opp, [Status.needs_data], "triage", f"{best.id} needs {', '.join(fields)}", cid,
                     outputs={"missing": fields, "actionId": best.id, "approvalId": request.id},
                     cohort=cohort.TREATED, approvals=[request], arm=arm)
        ask = Note("enrich", opp.id, f"{opp.caseKey}: {best.name} needs {', '.join(fields)}",
                   {**notice, "caseKey": opp.caseKey, "processArea": opp.processArea,
                    "deviationPattern": opp.deviationPattern})
        return Outcome(Result.NEEDS_DATA, [moved], notes=[ask])
    if candidates and all(gaps.values()):
        # Approvals are off: nobody can be asked for the data, and the planner must not guess it either.
        best = fewest_gaps(candidates, gaps)
        why = f"{best.id} needs {', '.join(gaps[best.id])}; {services.settings.approvals_off}: a person completes it"
        return Outcome(Result.NEEDS_REVIEW, [step(services, opp, [Status.triaged, Status.needs_review], "triage",
                                                  why, cid, outputs={"missing": gaps}, cohort=cohort.TREATED,
                                                  arm=arm)])
    why = "data complete for a candidate action" if candidates else "no catalog action: a person plans it"
    if filled:
        why = f"data completed from the system of record ({', '.join(filled)})"
    moved = step(services, opp, [Status.triaged], "triage", why, cid,
                 outputs={"filledFromRecord": filled} if filled else None, cohort=cohort.TREATED, arm=arm)
    return Outcome(Result.TRIAGED, [moved]).send(nudge("plan", opp.id, moved.opportunity.revision, cid))


def fewest_gaps(candidates: Any, gaps: dict[str, list[str]]) -> Any:
    """The candidate action missing the fewest contract fields."""
    return min(candidates, key=lambda a: len(gaps[a.id]))
