"""Policy events: the audit trail of every change to what the agents may do, each naming its evidence.

One telemetry kind, written here only: the learning step's freezes, flags and calibrations and autonomy's
tightenings and relaxations all read back as one list (`GET /api/learning` `policyEvents`). A person's id stays in
the stored record (the audit); the list shown names them by a pseudonym, and free text is scrubbed when written.
"""
from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from ..domain.pii import scrub
from ..ports import Services

KIND = "policyEvent"
SHOWN = 50
# The agents that change policy (learning.ACTOR, drift.ACTOR, the sweep): named as they are; anyone else is a
# person, whose principal id may be a UPN or an e-mail address.
AGENTS = frozenset({"learning", "drift-watch", "sweep"})
_WHO = ("by", "tightenedBy")


def record(services: Services, kind: str, by: str, reason: str, at: str | None = None,
           **evidence: Any) -> dict[str, Any]:
    """Write one policy event (`kind`: freeze, flag-null, tighten, relax…) by `by` (an agent or a principal id)."""
    doc = {"kind": kind, "by": by, "at": at or services.clock.now().isoformat(), "reason": scrub(reason),
           **evidence}
    services.reference.add_telemetry(KIND, doc)
    return doc


def pseudonym(who: str) -> str:
    """An agent's name as it is; a person as "person:" and 12 hex digits of the SHA-256 of their id (the same
    person reads the same across events, and the id is not shown)."""
    return who if who in AGENTS else "person:" + hashlib.sha256(who.encode()).hexdigest()[:12]


def recent(services: Services, days: int = 90) -> list[dict[str, Any]]:
    """The newest policy events first (at most SHOWN, from the last `days`), people named by pseudonym."""
    since = services.clock.now() - timedelta(days=days)
    shown = list(reversed(services.reference.telemetry(KIND, since)))[:SHOWN]
    return [{**e, **{k: pseudonym(e[k]) for k in _WHO if isinstance(e.get(k), str)}} for e in shown]
