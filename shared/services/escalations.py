"""Answering an escalation: retry, undo, accept as is, hand over, close."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from ..domain.approvals import Approval, Choice
from ..domain.errors import Conflict
from ..domain.identity import Principal
from ..domain.opportunity import Opportunity
from ..ports import ConcurrencyConflict, Services
from . import notices
from .lifecycle import audit


def answer(services: Services, opp: Opportunity, decided: Approval, decision: str, choice: Choice,
           principal: Principal, inputs: dict[str, Any], cid: str) -> Approval:
    """Act on a person's answer to an escalation (issue 19, being built)."""
    raise Conflict("escalation answers are not built yet")


def escalate_unanswered(services: Services, correlation_id: str) -> int:
    """Escalate, once each, requests past their SLA (or expired) with nobody's answer; returns how many."""
    now = services.clock.now()
    sla = timedelta(hours=services.policy.approvalSlaHours)
    due = [a for a in services.store.pending_approvals()
           if a.escalatedAt is None and (now >= a.createdAt + sla or now >= a.expiresAt)]
    done = 0
    for approval in due:
        opp = services.store.get(approval.opportunityId)
        if opp is None:
            continue
        state = "expired" if now >= approval.expiresAt else f"unanswered for {services.policy.approvalSlaHours:g} h"
        headline = f"{opp.caseKey}: {approval.kind} request for {approval.actionId} {state}"
        entry = audit(services, opp, "sweep", "approval.escalated", headline, correlation_id,
                      outputs={"approvalId": approval.id, "requiredRole": approval.requiredRole})
        try:
            services.store.commit(opp, (), [entry], [replace(approval, escalatedAt=now)])
        except ConcurrencyConflict:
            continue  # someone answered or moved it meanwhile; the next sweep looks again
        notices.escalate(services, "escalate", opp, headline,
                         {"approvalId": approval.id, "requiredRole": approval.requiredRole or "any",
                          "asked": approval.createdAt.isoformat()})
        done += 1
    return done
