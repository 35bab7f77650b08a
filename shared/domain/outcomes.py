"""Outcomes: what happened to a case afterwards (cycle time, SLA met, rework, DSO), as a KPI observation.

An outcome names its case (processArea + caseKey), not an opportunity: the operations data warehouse
knows cases. Attribution to a cohort and an action version happens when impact is measured
(shared/domain/impact.py), from the assignment triage recorded on each opportunity.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from typing import Annotated

import msgspec

from .findings import Epoch, Key, Name

MAX_OUTCOMES = 5000
# Lower-case words with underscores: a metric name becomes a CSV column and a chart label.
Metric = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class OutcomeIn(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One KPI observation as `POST /api/outcomes` takes it; `value` may be a number, a numeric string or a
    boolean (true = 1, for metrics such as sla_met)."""

    processArea: Name
    caseKey: Key
    metric: Metric
    value: bool | float
    observedAt: datetime | Epoch
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "api"


@dataclass(frozen=True, slots=True)
class Outcome:
    id: str
    processArea: str
    caseKey: str
    metric: str
    value: float
    observedAt: datetime
    source: str = "api"


def outcome_id(process_area: str, case_key: str, metric: str, observed_at: datetime) -> str:
    """Same case, metric and time → same id: a redelivered observation replaces itself, never doubles."""
    text = f"{process_area.strip().casefold()}\x1f{case_key.strip()}\x1f{metric}\x1f{observed_at.isoformat()}"
    return sha256(text.encode()).hexdigest()[:32]


def case_of(process_area: str, case_key: str) -> tuple[str, str]:
    """The join key between an outcome and the opportunities on its case."""
    return process_area.strip().casefold(), case_key.strip()
