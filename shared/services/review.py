"""A reviewer's decision on a case the planner would not decide alone (needs_review)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..domain.approvals import Approval, Choice
from ..domain.errors import Conflict
from ..domain.identity import Principal
from ..domain.opportunity import Opportunity
from ..ports import Services


def answer(services: Services, opp: Opportunity, decided: Approval, decision: str, choice: Choice,
           data: Mapping[str, Any] | None, principal: Principal, inputs: dict[str, Any], cid: str) -> Approval:
    """Run a candidate action, take data, hand over or dismiss (issue 19, being built)."""
    raise Conflict("review decisions are not built yet")
