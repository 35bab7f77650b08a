"""The JSON shape of an Opportunity on the API (the Opportunity fields of shared/domain/opportunity.py, camelCase)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..domain.audit import AuditEntry
from ..domain.catalog import Action
from ..domain.execution import Execution
from ..domain.opportunity import Opportunity


def created(o: Opportunity) -> dict[str, Any]:
    """The first history entry, told from the record itself (not stored, to keep ingest lean)."""
    return {"from": None, "to": "new", "at": o.createdAt.isoformat(), "actor": "ingest",
            "reason": f"first reported by {o.source.split(',')[0]}"}


def execution_view(x: Execution) -> dict[str, Any]:
    return {"id": x.id, "actionId": x.actionId, "actionVersion": x.actionVersion, "kind": x.kind,
            "compensates": x.compensates, "status": x.status, "attempts": x.attempts, "parameters": x.parameters,
            "evidence": x.evidence, "message": x.message, "planner": x.planner, "idempotencyKey": x.idempotencyKey,
            "createdAt": x.createdAt.isoformat(), "updatedAt": x.updatedAt.isoformat(),
            "correlationId": x.correlationId}


def audit_view(a: AuditEntry) -> dict[str, Any]:
    return {"at": a.at.isoformat(), "actor": a.actor, "event": a.event, "reason": a.reason, "inputs": a.inputs,
            "outputs": a.outputs, "versions": a.versions, "executionId": a.executionId,
            "correlationId": a.correlationId}


def effort(o: Opportunity, action: Action | None) -> dict[str, Any]:
    """The effort estimate a person set on the case, else the candidate action's from the catalog."""
    if o.effortHours is not None:
        return {"effortHours": o.effortHours, "effortSource": "person"}
    if action is not None and action.effortHours is not None:
        return {"effortHours": action.effortHours, "effortSource": "catalog"}
    return {"effortHours": None, "effortSource": None}


def action_facts(action: Action | None) -> dict[str, Any]:
    """What the catalog knows of doing the work: effort, prerequisites, known failure modes."""
    if action is None:
        return {"effortHours": None, "prerequisites": [], "failureModes": []}
    return {"effortHours": action.effortHours, "prerequisites": list(action.prerequisites),
            "failureModes": list(action.failureModes)}


def opportunity_view(o: Opportunity, detail: bool = True, executions: Sequence[Execution] = (),
                     audit: Sequence[AuditEntry] = (), approvals: Sequence[Any] = (),
                     action: Action | None = None) -> dict[str, Any]:
    """The opportunity as the API shows it; `action` is its candidate catalog action (the caller looks it up)."""
    view: dict[str, Any] = {
        "id": o.id, "status": o.status.value, "processArea": o.processArea,
        "deviationPattern": o.deviationPattern, "caseKey": o.caseKey, "source": o.source,
        "scores": o.scores.to_dict(), "rationale": o.explained(), "severity": o.severity,
        "kpiImpact": o.kpiImpact, "occurrences": o.occurrences, "owner": o.owner, "cohort": o.cohort, "arm": o.arm,
        "detectedAt": o.detectedAt.isoformat(), "lastDetectedAt": o.lastDetectedAt.isoformat(),
        "createdAt": o.createdAt.isoformat(), "updatedAt": o.updatedAt.isoformat(), "revision": o.revision,
        # The expected KPI movements (the hypothesis measurement tests) and how the miner named things.
        "kpis": o.kpis, "reported": o.reported, "echoes": o.echoes, "recurrences": o.recurrences,
        **effort(o, action),
    }
    if detail:
        view.update(sourceEventIds=o.sourceEventIds, attributes=o.attributes, rootCause=o.rootCause,
                    signals=o.signals, extensions=o.extensions,
                    recommendedAction=o.recommendedAction, complianceFlags=o.complianceFlags, notes=o.notes,
                    # Identifying attributes a person supplied, and who (their plans need another's approval).
                    supplied=o.supplied,
                    correlationId=o.correlationId, history=[created(o), *o.history], etag=o.etag, plan=o.plan,
                    executions=[execution_view(x) for x in sorted(executions, key=lambda x: x.createdAt)],
                    audit=[audit_view(a) for a in audit],
                    approvals=[a.to_dict() for a in sorted(approvals, key=lambda a: a.createdAt)],
                    prerequisites=action_facts(action)["prerequisites"],
                    failureModes=action_facts(action)["failureModes"])
    return view
