"""People's answers about one action on one pattern, as Beta posteriors, and what they lead to. Pure.

A Tally counts, for an action version × processArea × deviationPattern: approve cards approved and rejected, the
cases people approved (an approve card, or a reviewer who ran the action) and those whose parameters a reviewer
edited, "was this helpful?" answers and the "no"s, verified cases and those whose deviation came back. Each rate is
a learning.Rate: Beta(1 + k, 1 + n − k) from a uniform prior.

The decision is per pair, action id × processArea × pattern (every version summed: autonomy is per action id):
- tighten: P(reject rate > rejectTighten) ≥ tightenCertainty over ≥ answersMinCards approve cards, or
  P(not-helpful rate > notHelpfulTighten) ≥ tightenCertainty over ≥ answersMinCards answers. With the defaults
  (0.3, 0.95, 10) ten cards tighten from 6 rejections (P = 0.978; 5 of 10 is 0.922); 3 of 4 has P = 0.969 but
  is four cards, too few to act on.
- relax (proposed to a person, never applied by an agent): P(reject rate < relaxBelow) ≥ tightenCertainty over
  ≥ relaxMinCards approve cards, counted since the tightening for a tightened pair, and nothing that would tighten.
  With the defaults (0.05, 0.95) that takes 0 rejections of 58 cards, or 1 of 92.
- keep otherwise (a tightened pair stays tightened until a person relaxes it).
A pair a person relaxed is judged on the answers after the relaxation only: the ones before are what they judged
(an outage's rejections, say), and judging them again would tighten it at the next sweep.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .autonomy import Pair
from .learning import Rate
from .policy import Learning

TIGHTEN, TIGHTENED, RELAX, KEEP = "tighten", "tightened", "relax", "keep"
RATES = ("approval", "reject", "edited", "notHelpful", "recurrence")


@dataclass(slots=True)
class Tally:
    """Counts of people's answers about one action version (or every version) on one pattern."""

    approved: int = 0
    rejected: int = 0
    approvedCases: int = 0
    editedCases: int = 0
    helpful: int = 0
    notHelpful: int = 0
    verified: int = 0
    recurred: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def cards(self) -> int:
        return self.approved + self.rejected

    def rates(self) -> dict[str, Rate]:
        """approval and reject (of approve cards), edited (of cases people approved), notHelpful (of answers),
        recurrence (of verified cases)."""
        return {"approval": Rate(self.approved, self.cards), "reject": Rate(self.rejected, self.cards),
                "edited": Rate(self.editedCases, self.approvedCases),
                "notHelpful": Rate(self.notHelpful, self.helpful + self.notHelpful),
                "recurrence": Rate(self.recurred, self.verified)}


@dataclass(frozen=True, slots=True)
class Decision:
    kind: str  # TIGHTEN, TIGHTENED, RELAX or KEEP
    reason: str
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "reason": self.reason, "evidence": self.evidence}


def _p(p: float) -> str:
    return "> 0.999" if p > 0.999 else f"= {p:.3f}"


def _named(pair: Pair) -> str:
    return f"{pair[0]} on {pair[1]}/{pair[2]}"


def _relaxed(relaxed_at: str | None) -> tuple[str, dict[str, Any]]:
    return (f" since a person relaxed it ({relaxed_at})", {"relaxedAt": relaxed_at}) if relaxed_at else ("", {})


def _tighten(pair: Pair, t: Tally, policy: Learning, relaxed_at: str | None = None) -> Decision | None:
    """The tightening these answers call for, or None."""
    after, noted = _relaxed(relaxed_at)
    if t.cards >= policy.answersMinCards:
        p = Rate(t.rejected, t.cards).p_above(policy.rejectTighten)
        if p >= policy.tightenCertainty:
            return Decision(TIGHTEN, f"people rejected {t.rejected} of {t.cards} cards of {_named(pair)}{after} "
                                     f"(P(reject rate > {policy.rejectTighten:g}) {_p(p)})",
                            {"rejected": t.rejected, "cards": t.cards, "pAbove": round(p, 4),
                             "threshold": policy.rejectTighten, "certainty": policy.tightenCertainty,
                             "minCards": policy.answersMinCards, **noted})
    answered = t.helpful + t.notHelpful
    if answered >= policy.answersMinCards:
        p = Rate(t.notHelpful, answered).p_above(policy.notHelpfulTighten)
        if p >= policy.tightenCertainty:
            return Decision(TIGHTEN, f"people found {t.notHelpful} of {answered} cards of {_named(pair)}{after} "
                                     f"not helpful (P(not-helpful rate > {policy.notHelpfulTighten:g}) {_p(p)})",
                            {"notHelpful": t.notHelpful, "answered": answered, "pAbove": round(p, 4),
                             "threshold": policy.notHelpfulTighten, "certainty": policy.tightenCertainty,
                             "minCards": policy.answersMinCards, **noted})
    return None


def decide(pair: Pair, total: Tally, policy: Learning, since: Tally | None = None,
           tightened_at: str | None = None, relaxed_at: str | None = None) -> Decision:
    """What the answers lead to for one pair: `total` over the window (after `relaxed_at`, when a person relaxed
    the pair: the answers before it are what they judged); for a tightened pair, `since` counts the answers after
    its tightening (at `tightened_at`), the record a relaxation is judged on."""
    tightened = since is not None
    if not tightened:
        found = _tighten(pair, total, policy, relaxed_at)
        if found is not None:
            return found
    record = since if since is not None else total
    p = Rate(record.rejected, record.cards).p_below(policy.relaxBelow)
    after, noted = (f" since it was tightened ({tightened_at})", {"since": tightened_at}) if tightened \
        else _relaxed(relaxed_at)
    evidence = {"rejected": record.rejected, "cards": record.cards, "pBelow": round(p, 4),
                "threshold": policy.relaxBelow, "certainty": policy.tightenCertainty,
                "minCards": policy.relaxMinCards, **noted}
    good = (record.cards >= policy.relaxMinCards and p >= policy.tightenCertainty
            and _tighten(pair, record, policy) is None)
    if good:
        return Decision(RELAX, f"people rejected {record.rejected} of {record.cards} cards of {_named(pair)}{after} "
                               f"(P(reject rate < {policy.relaxBelow:g}) {_p(p)}): a person may relax it", evidence)
    if tightened:
        return Decision(TIGHTENED, f"{_named(pair)} is tightened; {record.rejected} of {record.cards} cards "
                                   f"rejected{after}: a person relaxes it after a good record", evidence)
    return Decision(KEEP, f"people rejected {total.rejected} of {total.cards} cards of {_named(pair)}{after}: "
                          "no change", evidence)
