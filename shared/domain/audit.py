"""Audit entries: append-only facts of who or what did what to an opportunity, and why."""
from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from datetime import datetime
from typing import Any

from .pii import redact, scrub


@dataclass(slots=True)
class AuditEntry:
    opportunityId: str
    at: datetime
    actor: str  # an agent stage ("triage", "executor") or a user id
    event: str  # what happened, e.g. "planned", "flow.called", "approved"
    reason: str
    correlationId: str
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)  # action, policy, prompt versions in force
    seq: int = 0  # orders entries written in the same microsecond
    executionId: str | None = None
    # The catalog's x-pii field names, masked wherever they occur in inputs and outputs; not stored.
    pii: InitVar[frozenset[str]] = frozenset()

    def __post_init__(self, pii: frozenset[str]) -> None:
        # Append-only means forever: the reason and every string of inputs and outputs are scrubbed here,
        # whoever builds the entry (pii.py). A store reading an entry back scrubs it again: a no-op on clean
        # text, and it cleans entries written before a pattern was added.
        self.reason = scrub(self.reason)
        self.inputs = redact(self.inputs, pii)
        self.outputs = redact(self.outputs, pii)
