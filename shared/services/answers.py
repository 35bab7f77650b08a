"""People's answers per action version × pattern, as posteriors (shared/domain/answers.py), and autonomy tuned by
them: the learning sweep tightens a pair (`tune`), insights proposes relaxing one, only a person relaxes it.

What counts:
- approval and reject rates: approve cards decided approved or rejected (each card: a two-approver plan asks twice);
- edited: of the cases people approved (an approve card approved, or a reviewer who ran the action from a review
  card), those where the reviewer's run changed a contract field of the action (the run's audit entry lists them
  under `edited`). Approve cards take no parameters, so a reviewer's run is the only place a person edits them;
- not helpful: "was this helpful?" answers on approve and review cards (the cards that put the action to a person;
  an escalation's or a data request's card is about a failure or missing data, not the action's choice);
- recurrence: verified cases the action version ran on whose deviation came back (measure.assignments), among the
  cases drawn in the window.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..domain import answers
from ..domain.answers import Decision, Tally
from ..domain.approvals import APPROVE, REVIEW, Approval
from ..domain.autonomy import PAIR_FIELDS, Autonomy, Pair
from ..domain.opportunity import Opportunity
from ..logs import bind
from ..ports import Services
from . import autonomy, feedback

log = logging.getLogger(__name__)
WINDOW_DAYS = 28  # the weekly review's window: what the learning sweep reads each time it tunes
Key = tuple[str, int, str, str]  # actionId, actionVersion, processArea, deviationPattern
_ASKED = (APPROVE, REVIEW)  # the cards whose "not helpful" counts against the action


@dataclass(frozen=True, slots=True)
class _Answer:
    key: Key
    at: datetime
    what: str  # a Tally field
    case: str | None = None  # approvedCases and editedCases count each case once


@dataclass(slots=True)
class Read:
    """What the answers are counted from, read once: decided cards, their cases (one get_many) and the
    "was this helpful?" answers (one per card)."""

    since: datetime
    decided: list[Approval]
    cases: dict[str, Opportunity]
    helpful: list[dict[str, Any]] = field(default_factory=list)


def _counted(a: Approval) -> bool:
    return bool(a.actionId) and ((a.kind == APPROVE and a.decision in ("approved", "rejected"))
                                 or (a.kind == REVIEW and a.decision == "run"))


def read(services: Services, since: datetime, decided: list[Approval] | None = None) -> Read:
    """The decided cards since `since`, their cases, and every "was this helpful?" answer: the feedback records
    (a record written twice counts once), and answers kept only on cards decided before the records existed."""
    decided = services.store.decided_approvals(since) if decided is None else decided
    records, seen = [], set[str]()
    for r in services.reference.telemetry(feedback.KIND, since):
        if r.get("approvalId") in seen or not isinstance(r.get("helpful"), bool):
            continue
        seen.add(r.get("approvalId") or "")
        records.append(r)
    older = [a for a in decided if a.helpful is not None and a.id not in seen]
    ids = sorted({a.opportunityId for a in decided if _counted(a)} | {a.opportunityId for a in older})
    cases = services.store.get_many(ids) if ids else {}
    for a in older:
        opp = cases.get(a.opportunityId)
        records.append({"approvalId": a.id, "opportunityId": a.opportunityId, "cardKind": a.kind,
                        "actionId": a.actionId, "actionVersion": a.actionVersion,
                        "processArea": opp.processArea if opp else None,
                        "deviationPattern": opp.deviationPattern if opp else None, "helpful": a.helpful,
                        "at": (a.decidedAt or since).isoformat()})
    return Read(since, decided, cases, records)


def _edited(services: Services, run: Approval) -> bool:
    """Whether the reviewer's run changed a contract field (its audit entry, found by the review card's id)."""
    return any(e.inputs.get("approvalId") == run.id and e.inputs.get("edited")
               for e in services.store.audit(run.opportunityId))


def _answers(services: Services, seen: Read, details: bool) -> list[_Answer]:
    """Every answer as (action version × pattern, when, what). `details` adds the edited parameters (an audit
    read per reviewer's run) and recurrences (a scan): what the summary shows and no decision needs."""
    out = []
    for a in seen.decided:
        opp = seen.cases.get(a.opportunityId)
        if not _counted(a) or opp is None or a.actionId is None or a.actionVersion is None:
            continue
        key, at = (a.actionId, a.actionVersion, opp.processArea, opp.deviationPattern), a.decidedAt or seen.since
        if a.decision != "rejected":
            out.append(_Answer(key, at, "approvedCases", opp.id))
        if a.kind == APPROVE:
            out.append(_Answer(key, at, "approved" if a.decision == "approved" else "rejected"))
        elif details and _edited(services, a):
            out.append(_Answer(key, at, "editedCases", opp.id))
    for r in seen.helpful:
        if r.get("cardKind") in _ASKED and r.get("actionId") and r.get("actionVersion") is not None \
                and r.get("processArea") and r.get("deviationPattern"):
            key = (r["actionId"], int(r["actionVersion"]), r["processArea"], r["deviationPattern"])
            at = datetime.fromisoformat(r["at"]) if r.get("at") else seen.since
            out.append(_Answer(key, at, "helpful" if r["helpful"] else "notHelpful"))
    if details:
        from .measure import assignments  # a scan of every drawn case: only the summary reads it

        for c in assignments(services):
            if c.ran is not None and c.verified and c.at >= seen.since:
                key = (c.ran[0], c.ran[1], c.processArea, c.deviationPattern)
                out.append(_Answer(key, c.at, "verified"))
                if c.recurrences:
                    out.append(_Answer(key, c.at, "recurred"))
    return out


def _tallies(found: list[_Answer], after: datetime | None = None) -> dict[Key, Tally]:
    counts: dict[Key, Tally] = defaultdict(Tally)
    cases: set[tuple[Key, str, str]] = set()
    for x in found:
        if after is not None and x.at < after:
            continue
        if x.case is not None:
            if (x.key, x.what, x.case) in cases:
                continue
            cases.add((x.key, x.what, x.case))
        t = counts[x.key]
        setattr(t, x.what, getattr(t, x.what) + 1)
    return dict(counts)


def _pair(key: Key) -> Pair:
    return key[0], key[2], key[3]


def _decisions(services: Services, found: list[_Answer], state: Autonomy) -> dict[Pair, Decision]:
    """One decision per pair answered in the window or tightened: every version of the action summed. A pair a
    person relaxed is judged on the answers after the relaxation (the earlier ones are what that person judged);
    a tightened pair also on those after its tightening (the record a relaxation is judged on)."""
    by_pair: dict[Pair, list[_Answer]] = defaultdict(list)
    for x in found:
        by_pair[_pair(x.key)].append(x)

    def total(pair: Pair, after: str | None) -> Tally:
        return sum(_tallies(by_pair[pair], datetime.fromisoformat(after) if after else None).values(), Tally())

    out = {}
    for pair in sorted(set(by_pair) | set(state.tightened)):
        entry, relaxed = state.tightened.get(pair), state.relaxedAt.get(pair)
        tightened_at = entry["at"] if entry else None
        out[pair] = answers.decide(pair, total(pair, relaxed), services.policy.learning,
                                   total(pair, tightened_at) if tightened_at else None, tightened_at, relaxed)
    return out


def summary(services: Services, days: int = WINDOW_DAYS, seen: Read | None = None) -> list[dict[str, Any]]:
    """Per action version × pattern over the last `days`: each rate as a Beta posterior, and the decision the
    answers lead to for its pair (every version of the action on that pattern)."""
    return review(services, days, seen)["peopleAnswers"]


def review(services: Services, days: int = WINDOW_DAYS, seen: Read | None = None) -> dict[str, Any]:
    """The insights section: `peopleAnswers` (the summary), `tightenedPairs` (each with its decision now) and
    `relaxProposals` (what a person with the autonomy role may apply, with the body that applies it)."""
    seen = seen or read(services, services.clock.now() - timedelta(days=days))
    found = _answers(services, seen, details=True)
    state = autonomy.current(services, fresh=True)
    decisions = _decisions(services, found, state)
    rows = [{"actionId": k[0], "actionVersion": k[1], "processArea": k[2], "deviationPattern": k[3],
             **{name: rate.to_dict() for name, rate in t.rates().items()},
             "decision": {**decisions[_pair(k)].to_dict(), "over": f"every version of {k[0]} on this pattern"}}
            for k, t in sorted(_tallies(found).items())]
    tightened = [{**dict(zip(PAIR_FIELDS, pair, strict=True)), **entry, "now": decisions[pair].to_dict()}
                 for pair, entry in sorted(state.tightened.items())]
    return {"peopleAnswers": rows, "tightenedPairs": tightened,
            "relaxProposals": proposals(services, decisions, state)}


def proposals(services: Services, decisions: dict[Pair, Decision], state: Autonomy) -> list[dict[str, Any]]:
    """Pairs with a good record where relaxing would change something: a tightened pair (lift it), or a
    low-risk action a person set to approval, not frozen (let it act alone: on every pattern it matches)."""
    out = []
    for pair, d in decisions.items():
        if d.kind != answers.RELAX:
            continue
        named = dict(zip(PAIR_FIELDS, pair, strict=True))
        action = services.catalog.actions.get(pair[0])
        apply: dict[str, Any]
        if pair in state.tightened:
            apply = {"relax": [dict(named)], "reason": d.reason}
        elif (action is not None and action.riskTier.value == "low" and not state.frozen
              and pair[0] not in state.frozenActions and state.actions.get(pair[0], state.mode) == "approval"):
            apply = {"actions": {pair[0]: "autonomous"}, "reason": d.reason}
            named["scope"] = f"every pattern {pair[0]} matches"
        else:
            continue  # acts alone already, or held back by a freeze or its risk tier: nothing to relax
        out.append({**named, "reason": d.reason, "evidence": d.evidence,
                    "apply": {"method": "POST", "path": "/api/autonomy", "body": apply}})
    return out


def tune(services: Services, cid: str) -> dict[str, Any]:
    """Tighten every pair whose answers call for it (the learning sweep's step): routed to approval with its
    evidence, through autonomy.change as the `learning` agent; a pair tightened already is left as it is."""
    seen = read(services, services.clock.now() - timedelta(days=WINDOW_DAYS))
    state = autonomy.current(services, fresh=True)
    decisions = _decisions(services, _answers(services, seen, details=False), state)
    window = {"from": seen.since.isoformat(), "days": WINDOW_DAYS}
    done = []
    for pair, d in decisions.items():
        if d.kind != answers.TIGHTEN or pair[0] not in services.catalog.actions:
            continue
        named = dict(zip(PAIR_FIELDS, pair, strict=True))
        autonomy.change(services, {"tighten": [{**named, "reason": d.reason,
                                                "evidence": {**d.evidence, "window": window}}],
                                   "reason": d.reason}, None, actor="learning")
        bind(log, cid).warning("tightened %s: %s", "|".join(pair), d.reason)
        done.append({**named, "reason": d.reason})
    return {"tightened": done, "pairs": len(decisions)}
