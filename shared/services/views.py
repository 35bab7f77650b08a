"""The JSON shape of an Opportunity on the API (ARCHITECTURE section 3 fields, camelCase)."""
from __future__ import annotations

from typing import Any

from ..domain.opportunity import Opportunity


def created(o: Opportunity) -> dict[str, Any]:
    """The first history entry, told from the record itself (not stored, to keep ingest lean)."""
    return {"from": None, "to": "new", "at": o.createdAt.isoformat(), "actor": "ingest",
            "reason": f"first reported by {o.source.split(',')[0]}"}


def opportunity_view(o: Opportunity, detail: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": o.id, "status": o.status.value, "processArea": o.processArea,
        "deviationPattern": o.deviationPattern, "caseKey": o.caseKey, "source": o.source,
        "scores": o.scores.to_dict(), "rationale": o.explained(), "severity": o.severity,
        "kpiImpact": o.kpiImpact, "occurrences": o.occurrences, "owner": o.owner, "cohort": o.cohort,
        "detectedAt": o.detectedAt.isoformat(), "lastDetectedAt": o.lastDetectedAt.isoformat(),
        "createdAt": o.createdAt.isoformat(), "updatedAt": o.updatedAt.isoformat(), "revision": o.revision,
    }
    if detail:
        view.update(sourceEventIds=o.sourceEventIds, attributes=o.attributes, rootCause=o.rootCause,
                    recommendedAction=o.recommendedAction, complianceFlags=o.complianceFlags, notes=o.notes,
                    correlationId=o.correlationId, history=[created(o)] + o.history, etag=o.etag)
    return view
