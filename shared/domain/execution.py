"""Executions: one call of one action version with one set of parameters, done at most once."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from typing import Any

# pending: recorded, flow not yet answered · waiting: flow said 202, poll `pollUrl` · then a final status
PENDING, WAITING, SUCCEEDED, FAILED, REJECTED = "pending", "waiting", "succeeded", "failed", "rejected"
FINAL = frozenset({SUCCEEDED, FAILED, REJECTED})


def idempotency_key(opportunity_id: str, action_id: str, version: int, parameters: dict[str, Any],
                    *salt: Any) -> str:
    """The same decision always gets the same key, so a redelivered message cannot act twice. `salt` names a
    new decision on the same inputs (a person's retry, a person's undo): a new key, so a new call."""
    canonical = json.dumps([opportunity_id, action_id, version, parameters, *salt], sort_keys=True,
                           separators=(",", ":"), default=str)
    return sha256(canonical.encode()).hexdigest()[:32]


def plan_key(opportunity_id: str, plan: dict[str, Any]) -> str:
    """The key of the plan's execution: attempt 0 keys as before retries existed; a retry a person asked for
    (`plan["attempt"]` n > 0) is a new decision with a key of its own."""
    attempt = int(plan.get("attempt") or 0)
    salt = (attempt,) if attempt > 0 else ()
    return idempotency_key(opportunity_id, plan["actionId"], plan["actionVersion"], plan["parameters"], *salt)


@dataclass(slots=True)
class Execution:
    id: str
    opportunityId: str
    actionId: str
    actionVersion: int
    idempotencyKey: str
    parameters: dict[str, Any]
    status: str
    createdAt: datetime
    updatedAt: datetime
    correlationId: str
    planner: dict[str, Any]
    kind: str = "action"  # or "compensation"
    compensates: str | None = None
    attempts: int = 0
    evidence: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    pollUrl: str | None = None
    nextAttemptAt: datetime | None = None
    etag: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL


def new_execution(opportunity_id: str, action_id: str, version: int, parameters: dict[str, Any], now: datetime,
                  correlation_id: str, planner: dict[str, Any], kind: str = "action",
                  compensates: str | None = None, key: str | None = None) -> Execution:
    key = key or idempotency_key(opportunity_id, action_id, version, parameters)
    return Execution(key, opportunity_id, action_id, version, key, parameters, PENDING, now, now, correlation_id,
                     planner, kind, compensates)
