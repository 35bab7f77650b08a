"""Ingest: findings → scored, deduplicated Opportunities in the store, one triage nudge per new one."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..domain.findings import Finding
from ..domain.messages import nudge
from ..domain.opportunity import from_findings, merge
from ..logs import bind
from ..ports import IngestResult, Services
from . import messaging

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestReport:
    results: list[IngestResult]
    correlation_id: str
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        duplicates = sum(1 for r in self.results if r.outcome == "duplicate")
        body = {
            "accepted": len(self.results) - duplicates,
            "duplicates": duplicates,
            "opportunities": [{"id": r.opportunity.id, "status": r.opportunity.status.value,
                               "priorityScore": round(r.opportunity.scores.priority, 2), "outcome": r.outcome}
                              for r in self.results],
            "correlationId": self.correlation_id,
        }
        if self.skipped:
            body["skipped"] = self.skipped
        return body


def ingest(services: Services, findings: Sequence[Finding], correlation_id: str, skipped: int = 0) -> IngestReport:
    """Store first, then nudge: a lost send is re-sent by the sweep, a lost write is never nudged."""
    run = bind(log, correlation_id)
    now = services.clock.now()
    catalog, scoring = services.catalog, services.policy.scoring
    incoming = from_findings(findings, catalog, scoring, now, correlation_id)
    results = services.store.ingest(incoming, partial(merge, catalog=catalog, policy=scoring, now=now))
    created = {r.opportunity.id: r.opportunity for r in results if r.outcome == "created"}
    sent = messaging.send(services, (nudge("triage", o.id, o.revision, correlation_id) for o in created.values()))
    run.info("ingested %d finding(s): %d new, %d updated, %d duplicate; %d triage message(s) sent",
             len(results), len(created), sum(r.outcome == "updated" for r in results),
             sum(r.outcome == "duplicate" for r in results), sent)
    return IngestReport(results, correlation_id, skipped)
