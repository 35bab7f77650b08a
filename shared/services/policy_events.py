"""Policy events: the audit trail of every change to what the agents may do, each naming its evidence.

One telemetry kind, written here only: the learning step's freezes, flags and calibrations and autonomy's
tightenings and relaxations all read back as one list (`GET /api/learning` `policyEvents`).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..ports import Services

KIND = "policyEvent"
SHOWN = 50


def record(services: Services, kind: str, by: str, reason: str, at: str | None = None,
           **evidence: Any) -> dict[str, Any]:
    """Write one policy event (`kind`: freeze, flag-null, tighten, relax…) by `by` (an agent or a principal id)."""
    doc = {"kind": kind, "by": by, "at": at or services.clock.now().isoformat(), "reason": reason, **evidence}
    services.reference.add_telemetry(KIND, doc)
    return doc


def recent(services: Services, days: int = 90) -> list[dict[str, Any]]:
    """The newest policy events first (at most SHOWN, from the last `days`)."""
    since = services.clock.now() - timedelta(days=days)
    return list(reversed(services.reference.telemetry(KIND, since)))[:SHOWN]
