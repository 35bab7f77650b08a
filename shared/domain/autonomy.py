"""Autonomy: how far the agents may act on their own, globally and per action, and the freeze.

`autonomous` executes low-risk plans; `approval` sends every plan to a person; `off` executes nothing
(plans go to review). A freeze (all actions, or some) forces `approval` wherever the mode was
`autonomous`; `off` stays off. Drift detection freezes; a person unfreezes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODES = ("off", "approval", "autonomous")


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

    def mode_for(self, action_id: str) -> str:
        """The mode that decides one action's plans now."""
        mode = self.actions.get(action_id, self.mode)
        if mode == "autonomous" and (self.frozen or action_id in self.frozenActions):
            return "approval"
        return mode

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "actions": dict(self.actions), "frozen": self.frozen,
                "frozenActions": list(self.frozenActions), "reason": self.reason, "changedBy": self.changedBy,
                "changedAt": self.changedAt}

    @classmethod
    def from_dict(cls, doc: dict[str, Any], etag: str | None = None) -> Autonomy:
        return cls(doc.get("mode", "autonomous"), dict(doc.get("actions") or {}), bool(doc.get("frozen")),
                   list(doc.get("frozenActions") or []), doc.get("reason", ""), doc.get("changedBy", ""),
                   doc.get("changedAt"), etag)
