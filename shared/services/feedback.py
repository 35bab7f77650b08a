"""The "was this helpful?" answer: one per card, kept on the approval record and as a feedback telemetry record.

Every card kind asks (approve, enrich, review, escalate): a submit card sends the answer with its decision
(approvals.decide), a link card through the signed feedback link (`/api/approvals/{id}/feedback`). Both end in
`record`, so the weekly review (insights.card_feedback) and the learning issue read one kind of record.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..domain import cards
from ..domain.approvals import Approval, check_view
from ..domain.errors import Conflict, NotFound
from ..domain.identity import Principal
from ..domain.opportunity import Opportunity
from ..domain.pii import scrub
from ..ports import ConcurrencyConflict, Services
from . import approvals

KIND = "feedback"  # the telemetry kind (services.reference.telemetry(KIND, since))
ANONYMOUS = "anonymous (token holder)"


def answer(services: Services, approval_id: str, token: str, helpful: bool, principal: Principal | None,
           comment: str | None = None) -> Approval:
    """Keep a card's "was this helpful?" answer: the token must be this card's (401 forged, 410 expired; a used
    one is fine: people answer after deciding), once per card (409 for a second answer, also when two race)."""
    approval = approvals.find(services, approval_id)
    check_view(approvals.signing_key(services), token, approval, services.clock.now())
    if approval.helpful is not None:
        raise Conflict(f"approval {approval.id} already has its answer to \"was this helpful?\"")
    opp = services.store.get(approval.opportunityId)
    if opp is None:
        raise NotFound(f"opportunity {approval.opportunityId} is gone")
    answered = replace(approval, helpful=helpful)
    try:  # the approval's ETag: of two answers racing, the second finds the record changed
        services.store.commit(opp, approvals=[answered])
    except ConcurrencyConflict as exc:
        raise Conflict(f"approval {approval.id} changed meanwhile; its answer may be recorded already") from exc
    record(services, answered, opp, helpful, principal.id if principal else ANONYMOUS, comment)
    return answered


def record(services: Services, approval: Approval, opp: Opportunity, helpful: bool, by: str,
           comment: str | None = None) -> dict[str, Any]:
    """The feedback telemetry record, written once the answer is on the approval record (which keeps it to one:
    the telemetry rows are keyed by time, so a repeated write would count twice)."""
    plan = opp.plan or {}
    doc = {"approvalId": approval.id, "opportunityId": opp.id, "cardKind": approval.kind,
           "actionId": approval.actionId or plan.get("actionId"),
           "actionVersion": approval.actionVersion if approval.actionId else plan.get("actionVersion"),
           "processArea": opp.processArea, "deviationPattern": opp.deviationPattern, "helpful": helpful,
           "by": by, "at": services.clock.now().isoformat()}
    if comment:  # free text a person typed: scrubbed before it is kept
        doc["comment"] = cards.clip(scrub(comment), 1000)
    services.reference.add_telemetry(KIND, doc)
    return doc
