"""The normalized finding: one deviation on one case, as any miner reports it.

This is the edge model of `POST /api/findings`; the Celonis and Process Mining
normalizers produce the same shape, so everything after ingest sees one vocabulary.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

MAX_BATCH = 1000
MAX_ATTRIBUTES = 100
# Half of what one Table Storage string property holds, so a merge of two reports still fits.
MAX_ATTRIBUTES_CHARS = 16_000


def _utc(value: datetime) -> datetime:
    # Miners send naive local-less timestamps; treat them as UTC rather than guess a zone.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _bounded(attributes: dict[str, Any]) -> dict[str, Any]:
    if attributes and len(json.dumps(attributes, default=str)) > MAX_ATTRIBUTES_CHARS:
        raise ValueError(f"attributes take more than {MAX_ATTRIBUTES_CHARS} characters as JSON")
    return attributes


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Key = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Money = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Severity(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class KpiImpact(BaseModel):
    """Expected KPI movement; money = days × cost of delay + value at stake + penalty avoided."""

    model_config = ConfigDict(extra="forbid")

    daysSaved: Optional[Annotated[float, Field(ge=0, le=3650, allow_inf_nan=False)]] = None
    costOfDelayPerDay: Optional[Money] = None
    valueAtStake: Optional[Money] = None
    penaltyAvoided: Optional[Money] = None
    currency: Optional[Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]] = None

    def money(self) -> float:
        delay = (self.daysSaved or 0.0) * (self.costOfDelayPerDay or 0.0)
        return delay + (self.valueAtStake or 0.0) + (self.penaltyAvoided or 0.0)


class Finding(BaseModel):
    """One normalized finding (ARCHITECTURE section 4, `POST /api/findings`)."""

    model_config = ConfigDict(extra="forbid")

    eventId: Key
    source: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = "generic"
    processArea: Name
    deviationPattern: Name
    caseKey: Key
    detectedAt: UtcDatetime
    kpiImpact: Union[Money, KpiImpact, None] = None
    attributes: Annotated[dict[str, Any], Field(max_length=MAX_ATTRIBUTES), AfterValidator(_bounded)] = Field(
        default_factory=dict)
    rootCause: Optional[Text] = None
    recommendedAction: Optional[Text] = None
    severity: Optional[Severity] = None
    complianceFlags: Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=20)] = Field(
        default_factory=list
    )

    def impact_money(self) -> Optional[float]:
        """Money at stake as reported, or None when the miner sent no estimate."""
        if self.kpiImpact is None:
            return None
        if isinstance(self.kpiImpact, KpiImpact):
            return self.kpiImpact.money()
        return float(self.kpiImpact)
