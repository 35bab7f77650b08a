"""Audit entries: append-only facts of who or what did what to an opportunity, and why."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional


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
    executionId: Optional[str] = None
