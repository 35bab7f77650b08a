"""What people are told when the loop needs them and there is nothing to approve: escalation cards."""
from __future__ import annotations

from typing import Any, Mapping

from ..domain import cards
from ..domain.opportunity import Opportunity
from ..domain.pii import redact, scrub
from ..runtime import Services


def escalate(services: Services, kind: str, opp: Opportunity, headline: str, details: Mapping[str, Any]) -> None:
    """Notify `kind` (review or escalate) with an escalation card linking to the opportunity."""
    base = services.settings.public_base_url or "http://localhost:7071"
    details, headline = redact(dict(details), services.catalog.pii_fields), scrub(headline)
    facts = {k: v for k, v in details.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
    case = {"Case": opp.caseKey, "Process": f"{opp.processArea} / {opp.deviationPattern}", "Status": opp.status.value}
    card = cards.escalation_card(case, headline, facts, f"{base}/api/opportunities/{opp.id}")
    services.notifier.notify(kind, opp.id, headline, {**details, "cards": {"submit": card, "links": card}})
