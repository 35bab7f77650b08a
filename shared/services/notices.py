"""What people are told when the loop needs them and there is nothing to approve: escalation cards."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from ..domain import cards
from ..domain import escalation as rules
from ..domain.approvals import ESCALATE, Approval, new_approval
from ..domain.errors import Unavailable
from ..domain.execution import Execution
from ..domain.opportunity import Opportunity
from ..domain.pii import redact, scrub
from ..ports import Incident, Services
from . import autonomy
from .stage import Note

log = logging.getLogger(__name__)


def escalation(services: Services, kind: str, opp: Opportunity, headline: str, details: Mapping[str, Any]) -> Note:
    """The `kind` (review or escalate) notification with an escalation card linking to the opportunity."""
    base = services.settings.public_base_url or "http://localhost:7071"
    if opp.plan and opp.plan.get("summary") and "summary" not in details:
        details = {**details, "summary": opp.plan["summary"]}  # an LLM plan's words for a person
    details, headline = redact(dict(details), services.catalog.pii_fields), scrub(headline)
    facts = {k: v for k, v in details.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
    card = cards.escalation_card(case_facts(services, opp), headline, facts, f"{base}/api/opportunities/{opp.id}",
                                 opp.kpis, opp.signals)
    return Note(kind, opp.id, headline, {**details, "cards": {"submit": card, "links": card}})


def answerable(services: Services, kind: str, opp: Opportunity, headline: str, details: Mapping[str, Any],
               executions: Sequence[Execution], cid: str,
               extra: Mapping[str, Any] | None = None) -> tuple[Note, Approval | None]:
    """An escalation a person can answer: the ESCALATE record (the caller commits it with the case's move, so
    `opp` is the case as it moves) and the note with its cards. Without a signing key (production without
    one) the card can only be read: the note alone, and the approval None."""
    from .approvals import card_links, signing_key

    try:
        key = signing_key(services)
    except Unavailable:
        log.warning("escalation for %s sent without answers: %s", opp.id, services.settings.approvals_off)
        return escalation(services, kind, opp, headline, details), None
    base = services.settings.public_base_url or "http://localhost:7071"
    if opp.plan and opp.plan.get("summary") and "summary" not in details:
        details = {**details, "summary": opp.plan["summary"]}
    details, headline = redact(dict(details), services.catalog.pii_fields), scrub(headline)
    facts = {k: v for k, v in details.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
    plan = opp.plan or {}
    # Autonomy off for the plan's action: the card offers no retry (services/escalations.py refuses one too).
    mode = autonomy.current(services).mode_for(plan["actionId"]) if plan.get("actionId") else "autonomous"
    context = rules.context(opp, executions, services.catalog, extra, mode)
    action = services.catalog.versions.get((plan["actionId"], plan["actionVersion"])) if plan else None
    ttl = timedelta(hours=services.settings.approval_ttl_hours)
    approval, token = new_approval(opp.id, opp.revision, ESCALATE, plan.get("actionId"), plan.get("actionVersion"),
                                   services.policy.reviewRole, key, services.clock.now(), ttl, cid, context)
    links = card_links(services, approval.id, token, tuple(context["options"]))
    shown = redact(dict(plan), services.catalog.pii_fields) if plan else None
    risk: dict[str, Any] = {}
    if action is not None:
        risk = {"Risk tier": action.riskTier, "Approval role": action.approvalRole or "none",
                **{f"Known failure {i + 1}": mode for i, mode in enumerate(action.failureModes[:5])}}
    best = (context["recommended"], context["why"])

    def shape(with_links: Mapping[str, str] | None) -> dict[str, Any]:
        return cards.escalation_card(case_facts(services, opp), headline, facts, f"{base}/api/opportunities/{opp.id}",
                                     opp.kpis, opp.signals, approval_id=approval.id, plan=shown, risk=risk,
                                     options=context["options"], recommended=best, links=with_links)

    note = Note(kind, opp.id, headline, {
        **details, "approvalId": approval.id, "token": token, "links": links, "requiredRole": approval.requiredRole,
        "expiresAt": approval.expiresAt.isoformat(), "correlationId": cid, "options": context["options"],
        "recommended": context["recommended"], **({"plan": shown} if shown else {}),
        "cards": {"submit": shape(None), "links": shape(links)}})
    return note, approval


def case_facts(services: Services, opp: Opportunity) -> dict[str, Any]:
    """The case as a review or escalation card shows it: the names as the catalog has them, the names as the
    miner reported them where an alias changed them, and a catalog gap said as such."""
    case = {"Case": opp.caseKey, "Process": f"{opp.processArea} / {opp.deviationPattern}", "Status": opp.status.value}
    was = opp.reported or {}
    if was:
        area, pattern = was.get("processArea", opp.processArea), was.get("deviationPattern", opp.deviationPattern)
        case["Reported as"] = f"{area} / {pattern}"
    if not services.catalog.candidates(opp.processArea, opp.deviationPattern):
        mapped = f" (reported as {was['deviationPattern']})" if "deviationPattern" in was else ""
        case["Catalog gap"] = f"No catalog action for {opp.deviationPattern}{mapped} in {opp.processArea}"
    return case


def tell(services: Services, note: Note) -> None:
    """Send a note to people, if a notifier is configured; callers send it after their commit landed, so a card
    never names a record that is not there."""
    if services.notifier is not None:
        services.notifier.notify(note.kind, note.opportunity_id, note.subject, note.details)


def escalate(services: Services, kind: str, opp: Opportunity, headline: str, details: Mapping[str, Any]) -> None:
    """Notify `kind` (review or escalate) with an escalation card linking to the opportunity."""
    tell(services, escalation(services, kind, opp, headline, details))


def incident_of(services: Services, found: Incident) -> tuple[Incident, Note]:
    """The incident as kept (its detail scrubbed) and the escalation that goes with it."""
    found = replace(found, detail=scrub(found.detail))  # a poison body may quote anyone's details
    base = services.settings.public_base_url or "http://localhost:7071"
    headline = scrub(f"{found.kind} in {found.stage}: {found.detail}")[:300]
    card = cards.escalation_card({"Incident": found.id, "Stage": found.stage, "Kind": found.kind},
                                 headline, {"Correlation id": found.correlationId or "-"},
                                 f"{base}/api/incidents")
    return found, Note("escalate", found.opportunityId or found.id, headline,
                       {"incidentId": found.id, "cards": {"submit": card, "links": card}})


def incident(services: Services, found: Incident) -> None:
    """Record an incident the pipeline cannot settle and escalate it with its context."""
    kept, note = incident_of(services, found)
    services.reference.record_incident(kept)
    tell(services, note)
