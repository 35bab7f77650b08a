"""What people are told when the loop needs them and there is nothing to approve: escalation cards."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..domain import cards
from ..domain.opportunity import Opportunity
from ..domain.pii import redact, scrub
from ..ports import Incident, Services
from .stage import Note


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


def escalate(services: Services, kind: str, opp: Opportunity, headline: str, details: Mapping[str, Any]) -> None:
    """Notify `kind` (review or escalate) with an escalation card linking to the opportunity."""
    note = escalation(services, kind, opp, headline, details)
    if services.notifier is not None:
        services.notifier.notify(note.kind, note.opportunity_id, note.subject, note.details)


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
    if services.notifier is not None:
        services.notifier.notify(note.kind, note.opportunity_id, note.subject, note.details)
