"""Moving an opportunity on: transitions, audit entries and executions committed together."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..domain.approvals import Approval
from ..domain.audit import AuditEntry
from ..domain.execution import Execution
from ..domain.opportunity import Opportunity
from ..domain.status import Status
from ..ports import Commit, Services


def audit(services: Services, opp: Opportunity, actor: str, event: str, reason: str, correlation_id: str,
          inputs: dict[str, Any] | None = None, outputs: dict[str, Any] | None = None,
          execution: Execution | None = None, seq: int = 0) -> AuditEntry:
    versions: dict[str, Any] = {"policy": services.policy.version}
    if execution is not None:
        versions["action"] = f"{execution.actionId}@{execution.actionVersion}"
    elif opp.plan:
        versions["action"] = f"{opp.plan['actionId']}@{opp.plan['actionVersion']}"
    if opp.plan and opp.plan.get("promptVersion"):  # an LLM-made plan: which prompt made it
        versions["prompt"] = opp.plan["promptVersion"]
    # The entry scrubs its free text itself; the catalog's x-pii fields it is told (pii.py).
    return AuditEntry(opp.id, services.clock.now(), actor, event, reason, correlation_id, inputs or {},
                      outputs or {}, versions, seq, execution.id if execution else None,
                      services.catalog.pii_fields)


def step(services: Services, opp: Opportunity, path: Sequence[Status], actor: str, reason: str,
         correlation_id: str, executions: Sequence[Execution] = (), inputs: dict[str, Any] | None = None,
         outputs: dict[str, Any] | None = None, approvals: Sequence[Approval] = (), **changes: Any) -> Commit:
    """Walk `path` (each step checked against the status machine) and audit it: the commit, not yet written."""
    now = services.clock.now()
    moved = replace(opp, **changes) if changes else opp
    for target in path:
        moved = moved.transition(target, actor, reason, now)
    event = path[-1].value if path else "updated"
    entry = audit(services, opp, actor, event, reason, correlation_id, inputs, outputs,
                  executions[0] if executions else None)
    return Commit(moved, list(executions), [entry], list(approvals))


def advance(services: Services, opp: Opportunity, path: Sequence[Status], actor: str, reason: str,
            correlation_id: str, executions: Sequence[Execution] = (), inputs: dict[str, Any] | None = None,
            outputs: dict[str, Any] | None = None, approvals: Sequence[Approval] = (),
            **changes: Any) -> Opportunity:
    """`step`, committed at once (for the HTTP edge; the agent stages hand their commits to the runner)."""
    c = step(services, opp, path, actor, reason, correlation_id, executions, inputs, outputs, approvals, **changes)
    return services.store.commit(c.opportunity, c.executions, c.audit, c.approvals)
