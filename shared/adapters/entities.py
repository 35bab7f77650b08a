"""Opportunity ⇄ flat table entity. Shared by the Azure Tables and in-memory stores so both keep one shape."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from ..domain.opportunity import Opportunity
from ..domain.scoring import Scores
from ..domain.status import Status
from ..ports import Filter

_JSON_FIELDS = ("sourceEventIds", "attributes", "complianceFlags", "history")
_TIME_FIELDS = ("detectedAt", "lastDetectedAt", "createdAt", "updatedAt")
_PLAIN_FIELDS = ("source", "processArea", "deviationPattern", "caseKey", "kpiImpact", "rootCause",
                 "recommendedAction", "severity", "occurrences", "revision", "owner", "notes",
                 "cohort", "correlationId")


def ts(value: datetime) -> str:
    """Fixed-width UTC text, so string comparison in a table filter orders by time."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def to_entity(opp: Opportunity) -> dict[str, Any]:
    e: dict[str, Any] = {"PartitionKey": opp.group, "RowKey": opp.id, "status": opp.status.value,
                         "rationale": opp.explained()}
    for name in _PLAIN_FIELDS:
        e[name] = getattr(opp, name)
    for name in _TIME_FIELDS:
        e[name] = ts(getattr(opp, name))
    for name in _JSON_FIELDS:
        e[name] = json.dumps(getattr(opp, name), separators=(",", ":"), ensure_ascii=False, default=str)
    if e["kpiImpact"] is not None:
        e["kpiImpact"] = float(e["kpiImpact"])
    s = opp.scores
    e.update(impact=float(s.impact), feasibility=float(s.feasibility), risk=float(s.risk),
             priority=float(s.priority), actionId=s.actionId)
    return e


def from_entity(e: dict[str, Any], etag: Any = None) -> Opportunity:
    return Opportunity(
        id=e["RowKey"], source=e["source"], sourceEventIds=json.loads(e["sourceEventIds"]),
        processArea=e["processArea"], deviationPattern=e["deviationPattern"], caseKey=e["caseKey"],
        detectedAt=parse_ts(e["detectedAt"]), lastDetectedAt=parse_ts(e["lastDetectedAt"]),
        attributes=json.loads(e["attributes"]), kpiImpact=e.get("kpiImpact"), rootCause=e.get("rootCause"),
        recommendedAction=e.get("recommendedAction"), severity=e.get("severity"),
        complianceFlags=json.loads(e["complianceFlags"]),
        scores=Scores(e["impact"], e["feasibility"], e["risk"], e["priority"], e.get("actionId")),
        rationale=e["rationale"], status=Status(e["status"]), occurrences=int(e["occurrences"]),
        revision=int(e["revision"]), createdAt=parse_ts(e["createdAt"]), updatedAt=parse_ts(e["updatedAt"]),
        owner=e.get("owner"), notes=e.get("notes"), cohort=e.get("cohort"),
        correlationId=e.get("correlationId"), history=json.loads(e["history"]), etag=etag,
    )


def matches(entity: dict[str, Any], where: Filter) -> bool:
    """Does an entity (or a projection holding status, processArea, deviationPattern) pass the filter."""
    return ((where.status is None or entity["status"] == where.status)
            and (where.processArea is None or entity["processArea"].casefold() == where.processArea.casefold())
            and (where.deviationPattern is None
                 or entity["deviationPattern"].casefold() == where.deviationPattern.casefold()))
