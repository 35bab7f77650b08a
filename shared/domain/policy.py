"""The policy: weights and thresholds an operations lead can read and version."""
from __future__ import annotations

from typing import Literal

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


class MetricSpec(BaseModel):
    """How a KPI is read: which way is better, and which interval (docs/measurement.md)."""

    model_config = ConfigDict(extra="forbid")

    better: Literal["lower", "higher"]
    method: Literal["auto", "welch", "bootstrap"] = "auto"
    unit: str | None = Field(default=None, max_length=20)


class RoiParams(BaseModel):
    """What a measured improvement is worth for one action (docs/measurement.md has the formulas)."""

    model_config = ConfigDict(extra="forbid")

    # Money per unit of improvement per case, by metric: cost of delay per day for cycle_time_days or
    # dso_days, 1.0 for a money metric such as leakage_amount.
    valuePerUnit: dict[str, float] = Field(default_factory=dict)
    # A person's handling time per case the agent acts on instead, and its hourly cost.
    handlingMinutes: float = Field(default=0.0, ge=0)
    hourlyCost: float = Field(default=0.0, ge=0)
    # The team that works these cases without the agent, for throughput per FTE.
    teamFte: float | None = Field(default=None, gt=0)
    fteHoursPerWeek: float = Field(default=40.0, gt=0)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    # Money outcome metrics whose measured drop is leakage avoided, valued 1:1 in `currency` (declared here,
    # never told from a metric's name).
    leakageMetrics: list[str] = Field(default_factory=list, max_length=20)
    # What one more case resolved is worth, for the throughput term; None: throughput is shown, not valued.
    valuePerResolvedCase: float | None = Field(default=None, ge=0)
    # Hours the agent frees are worth either the labour saved or the extra cases those hours resolve, never
    # both: the total adds the one named here, the other is shown beside it.
    freedHoursAs: Literal["labour", "throughput"] = "labour"


def _default_metrics() -> dict[str, MetricSpec]:
    return {"cycle_time_days": MetricSpec(better="lower", unit="days"),
            "dso_days": MetricSpec(better="lower", unit="days"),
            "sla_met": MetricSpec(better="higher", method="welch", unit="share"),
            "rework_count": MetricSpec(better="lower", unit="count")}


class Measurement(BaseModel):
    """Treated-vs-control measurement: minimum samples, metric directions and ROI parameters per action."""

    model_config = ConfigDict(extra="forbid")

    # Below this many cases with an outcome in either cohort the report says "not enough data".
    minSamples: int = Field(default=30, ge=2)
    metrics: dict[str, MetricSpec] = Field(default_factory=_default_metrics)
    # By action id; "*" applies to actions without their own entry.
    roi: dict[str, RoiParams] = Field(default_factory=dict)
    # A pattern with at least this many open cases and no enabled action is a catalog gap (GET /api/insights).
    gapMinCases: int = Field(default=10, ge=1)
    # Each action's primary KPI, by action id ("*" for the rest): what harm is judged on. Without an entry, the
    # first metric its ROI values, else cycle_time_days.
    primary: dict[str, str] = Field(default_factory=dict)

    def spec(self, metric: str) -> MetricSpec | None:
        return self.metrics.get(metric)

    def primary_for(self, action_id: str) -> str:
        """The KPI harm is judged on for this action."""
        named = self.primary.get(action_id) or self.primary.get("*")
        if named:
            return named
        roi = self.roi_for(action_id)
        return next(iter(roi.valuePerUnit), "cycle_time_days") if roi else "cycle_time_days"

    def roi_for(self, action_id: str) -> RoiParams | None:
        return self.roi.get(action_id) or self.roi.get("*")


class Learning(BaseModel):
    """How measured effects and people's answers change what the agents do (docs/learning.md)."""

    model_config = ConfigDict(extra="forbid")

    # Calibration of a reported impact (docs/scoring.md): the measured ÷ expected ratio, shrunk toward 1 with a
    # normal prior of this standard deviation around 1; clipped to [0, maxFactor].
    priorSd: float = Field(default=0.5, gt=0)
    maxFactor: float = Field(default=2.0, ge=1)
    # The sweep rescores the open opportunities of a pattern when its factor moved by more than this, at most
    # rescoreBatch opportunities a sweep.
    rescoreDelta: float = Field(default=0.1, gt=0)
    rescoreBatch: int = Field(default=500, ge=1, le=10_000)
    # Harm: cases with an outcome in each cohort before a significantly harmful effect freezes the action.
    harmMinCases: int = Field(default=30, ge=2)
    # An effect not told apart from zero with at least this many cases with an outcome in each cohort is flagged
    # in insights and stops the action's ramp.
    nullAfterCases: int = Field(default=200, ge=2)
    # Optionally, "null" as an equivalence: with an expected change, the CI must also lie within ±nullMargin ×
    # |expected change| (0.25: a quarter of what the miners promised). Off by default, as the rule above is the
    # safe side: a noisy action that cannot show its effect after nullAfterCases stops widening; with a margin, a
    # helpful −1 d with sd 10 d at 200/200 (CI ±2 d) is "no evidence yet" instead and its ramp goes on.
    nullMargin: float | None = Field(default=None, gt=0, le=1)
    # Ramp promotion needs a measured effect on the primary KPI that is not harmful (not only no breach).
    rampNeedsMeasurement: bool = True
    # People's answers (Beta posteriors from a uniform prior): an action-pattern pair is routed to approval when
    # P(reject rate > rejectTighten) or P(not-helpful rate > notHelpfulTighten) reaches tightenCertainty, with at
    # least answersMinCards answers; its planner confidence is lowered by confidencePenalty.
    answersMinCards: int = Field(default=10, ge=1)
    rejectTighten: float = Field(default=0.3, gt=0, lt=1)
    notHelpfulTighten: float = Field(default=0.5, gt=0, lt=1)
    tightenCertainty: float = Field(default=0.95, gt=0.5, lt=1)
    confidencePenalty: float = Field(default=0.2, ge=0, le=1)
    # A pair whose P(reject rate < relaxBelow) reaches tightenCertainty over relaxMinCards answers is proposed
    # for relaxation in insights; only a person with the autonomy role applies it.
    relaxBelow: float = Field(default=0.05, gt=0, lt=1)
    relaxMinCards: int = Field(default=30, ge=1)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(default=1, ge=1)
    # Change control: who changed the policy and why, recorded with each version in the store.
    author: str | None = None
    reason: str | None = None
    # "repo": shipped in catalog/policy.json; "api": added with PUT /api/policies (set by the server) and
    # used only after a second person activates it.
    origin: Literal["repo", "api"] = "repo"
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
    # Long-running flows (202 + Location): polled as Retry-After says, else backing off to every 5 minutes,
    # and given up (failed, a person told) when still running this long after the first call.
    flowMaxWaitSeconds: float = Field(default=86_400.0, gt=0)
    # An approval or data request nobody answered within this many hours is escalated (once) by the sweep.
    approvalSlaHours: float = Field(default=24.0, gt=0)
    # Who may let a pending action version (high risk, or raising risk or caps) go live.
    catalogApproverRole: str = Field(default="Catalog.Approver", min_length=1)
    # Who may change autonomy modes or freeze and unfreeze (POST /api/autonomy).
    autonomyAdminRole: str = Field(default="Autonomy.Admin", min_length=1)
    # Who may dismiss an opportunity (PATCH /api/opportunities/{id} with dismiss): a dismissed case is
    # never acted on, so it is a decision, not a note. Owner and notes need only a signed-in person.
    dismissRole: str = Field(default="Backlog.Owner", min_length=1)
    # Who answers review and escalation cards (run a candidate action, supply data, hand over, retry, undo,
    # close), and who commits backlog items for a week. A reviewer's chosen action that needs approval still
    # needs the action's approval role.
    reviewRole: str = Field(default="Backlog.Owner", min_length=1)
    commitRole: str = Field(default="Backlog.Owner", min_length=1)
    # A verified case is closed by the sweep this many days after verification: its observation window.
    observationDays: float = Field(default=14.0, ge=0, le=365)
    # /api/health calls the timer stopped when its last sweep is older than this (3 missed 5-minute runs).
    sweepStaleAfterSeconds: int = Field(default=900, ge=60)
    # Drift detection windows, minimum samples and thresholds (shared/domain/drift.py documents the test).
    drift: dict[str, float] = Field(default_factory=dict)
    # Verified executions, with no watchdog breach, that widen an action's ramp to its next share.
    rampPromoteAfter: int = Field(default=20, ge=1)
    # Over an action's daily cap: "wait" (the case runs when a slot of the last 24 hours frees) or
    # "person" (the planner sends it for approval instead of queueing it).
    overCap: Literal["wait", "person"] = "wait"
    # A finding on a case the agent acted on, detected this many hours after the action or less, is an echo
    # (the miner still sees the old state): counted, never new evidence. Later, on a verified case, a recurrence.
    echoWindowHours: float = Field(default=24.0, ge=0, le=24 * 90)
    measurement: Measurement = Field(default_factory=Measurement)
    learning: Learning = Field(default_factory=Learning)
