"""The policy: weights and thresholds an operations lead can read and version."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field


class ScoringPolicy(BaseModel):
    """Weights of Priority = (Impact × Feasibility) ÷ (1 + Risk); documented in docs/scoring.md."""

    model_config = ConfigDict(extra="forbid")

    # Used when the miner sent no money estimate: a rough money value per severity.
    severityImpact: dict[str, float] = Field(
        default_factory=lambda: {"low": 100.0, "medium": 500.0, "high": 2000.0, "critical": 10000.0}
    )
    defaultImpact: float = Field(default=250.0, ge=0)
    # A finding with no catalog action can still be fixed by a person, just less feasibly.
    feasibilityWithoutAction: float = Field(default=0.2, ge=0, le=1)
    riskTierWeight: dict[str, float] = Field(
        default_factory=lambda: {"low": 0.0, "medium": 1.0, "high": 3.0, "none": 1.0}
    )
    complianceFlagWeight: float = Field(default=0.5, ge=0)
    # Blast radius grows with money at stake, capped at blastRadiusWeight when it reaches blastRadiusAmount.
    blastRadiusWeight: float = Field(default=1.0, ge=0)
    blastRadiusAmount: float = Field(default=100000.0, gt=0)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(default=1, ge=1)
    # Change control: who changed the policy and why, recorded with each version in the store.
    author: Optional[str] = None
    reason: Optional[str] = None
    scoring: ScoringPolicy = Field(default_factory=ScoringPolicy)
    holdoutPercent: float = Field(default=10.0, ge=0, le=100)
    # Changing the salt starts a new experiment: every case is drawn into a cohort afresh.
    experimentSalt: str = Field(default="closedloop-1", min_length=1)
    confidenceThreshold: float = Field(default=0.7, ge=0, le=1)
    reconcileAfterSeconds: int = Field(default=300, ge=30)
    # Transient failures (timeouts, 5xx, 429) retry with exponential backoff and jitter, then give up.
    maxAttempts: int = Field(default=6, ge=1, le=50)
    backoffBaseSeconds: float = Field(default=2.0, gt=0)
    backoffMaxSeconds: float = Field(default=600.0, gt=0)
    flowTimeoutSeconds: float = Field(default=30.0, gt=0)
    # An approval or data request nobody answered within this many hours is escalated (once) by the sweep.
    approvalSlaHours: float = Field(default=24.0, gt=0)
    # Who may let a pending action version (high risk, or raising risk or caps) go live.
    catalogApproverRole: str = Field(default="Catalog.Approver", min_length=1)
    # Who may change autonomy modes or freeze and unfreeze (POST /api/autonomy).
    autonomyAdminRole: str = Field(default="Autonomy.Admin", min_length=1)
    # /api/health calls the timer stopped when its last sweep is older than this (3 missed 5-minute runs).
    sweepStaleAfterSeconds: int = Field(default=900, ge=60)
    # Drift detection windows, minimum samples and thresholds (shared/domain/drift.py documents the test).
    drift: dict[str, float] = Field(default_factory=dict)
    # Verified executions, with no watchdog breach, that widen an action's ramp to its next share.
    rampPromoteAfter: int = Field(default=20, ge=1)
    # Over an action's daily cap: "wait" (the case runs when a slot of the last 24 hours frees) or
    # "person" (the planner sends it for approval instead of queueing it).
    overCap: Literal["wait", "person"] = "wait"
