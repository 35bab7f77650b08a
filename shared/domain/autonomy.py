"""Autonomy: how far the agents may act on their own, globally, per action and per action-pattern pair, and the
freeze.

`autonomous` executes low-risk plans; `approval` sends every plan to a person; `off` executes nothing
(plans go to review). A freeze (all actions, or some) forces `approval` wherever the mode was
`autonomous`; `off` stays off. Drift detection freezes; a person unfreezes. A tightened pair (an action on one
processArea × deviationPattern that people's answers showed to be wrong too often, shared/domain/answers.py) is
forced to `approval` the same way; the learning sweep tightens, only a person relaxes. A relaxed pair keeps when it
was relaxed (`relaxedAt`): the answers before it were judged by that person and no longer tighten it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODES = ("off", "approval", "autonomous")
Pair = tuple[str, str, str]  # (actionId, processArea, deviationPattern)
PAIR_FIELDS = ("actionId", "processArea", "deviationPattern")


@dataclass
class Autonomy:
    mode: str = "autonomous"
    actions: dict[str, str] = field(default_factory=dict)
    frozen: bool = False
    frozenActions: list[str] = field(default_factory=list)
    reason: str = ""
    changedBy: str = ""
    changedAt: str | None = None
    etag: str | None = None
    # Per pair: {"reason", "at", "by", "evidence"} of the tightening in force.
    tightened: dict[Pair, dict[str, Any]] = field(default_factory=dict)
    # Per pair a person relaxed: when (ISO). Only answers after it may tighten the pair again.
    relaxedAt: dict[Pair, str] = field(default_factory=dict)

    def mode_for(self, action_id: str, process_area: str | None = None, pattern: str | None = None) -> str:
        """The mode that decides one action's plans now (on one pattern, when given)."""
        mode = self.actions.get(action_id, self.mode)
        if mode == "autonomous" and (self.frozen or action_id in self.frozenActions
                                     or self.tightening(action_id, process_area, pattern) is not None):
            return "approval"
        return mode

    def tightening(self, action_id: str, process_area: str | None, pattern: str | None) -> dict[str, Any] | None:
        """The tightening in force for this pair, if any."""
        if process_area is None or pattern is None:
            return None
        return self.tightened.get((action_id, process_area, pattern))

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "actions": dict(self.actions), "frozen": self.frozen,
                "frozenActions": list(self.frozenActions), "reason": self.reason, "changedBy": self.changedBy,
                "changedAt": self.changedAt,
                # A list, not a map keyed by joined names: a process area or pattern may hold any character.
                "tightened": [{**dict(zip(PAIR_FIELDS, pair, strict=True)), **entry}
                              for pair, entry in sorted(self.tightened.items())],
                "relaxed": [{**dict(zip(PAIR_FIELDS, pair, strict=True)), "relaxedAt": at}
                            for pair, at in sorted(self.relaxedAt.items())]}

    @classmethod
    def from_dict(cls, doc: dict[str, Any], etag: str | None = None) -> Autonomy:
        tightened = {pair_of(t): {k: v for k, v in t.items() if k not in PAIR_FIELDS}
                     for t in doc.get("tightened") or []}
        return cls(doc.get("mode", "autonomous"), dict(doc.get("actions") or {}), bool(doc.get("frozen")),
                   list(doc.get("frozenActions") or []), doc.get("reason", ""), doc.get("changedBy", ""),
                   doc.get("changedAt"), etag, tightened,
                   {pair_of(r): str(r["relaxedAt"]) for r in doc.get("relaxed") or []})


def pair_of(doc: dict[str, Any]) -> Pair:
    """(actionId, processArea, deviationPattern) of a dict naming a pair."""
    return str(doc["actionId"]), str(doc["processArea"]), str(doc["deviationPattern"])
