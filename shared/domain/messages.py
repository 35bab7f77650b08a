"""Stage messages: claim checks carrying ids only, with deterministic ids for duplicate detection."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

STAGES = ("triage", "plan", "execute", "verify")


class StageMessage(BaseModel):
    """Body of a queue message (ids only; README "The agents")."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(pattern="^(triage|plan|execute|verify)$")
    opportunityId: str = Field(min_length=8, max_length=64)
    executionId: str | None = None
    correlationId: str = Field(min_length=1, max_length=128)
    attempt: int = Field(default=1, ge=1)
    # Where to poll a flow that answered 202; in the message, not a record, as it may carry a signature.
    pollUrl: str | None = Field(default=None, max_length=4000)


@dataclass(frozen=True, slots=True)
class Nudge:
    stage: str
    body: dict[str, Any]
    message_id: str


def nudge(stage: str, opportunity_id: str, revision: int, correlation_id: str, attempt: int = 1,
          execution_id: str | None = None, poll_url: str | None = None) -> Nudge:
    """The message for `stage` of one opportunity revision: resending it is a no-op on the queue."""
    body: dict[str, Any] = {"type": stage, "opportunityId": opportunity_id, "correlationId": correlation_id,
                            "attempt": attempt}
    if execution_id:
        body["executionId"] = execution_id
    if poll_url:
        body["pollUrl"] = poll_url
    suffix = f":{attempt}" if attempt > 1 else ""
    return Nudge(stage, body, f"{stage}:{opportunity_id}:{revision}{suffix}")
