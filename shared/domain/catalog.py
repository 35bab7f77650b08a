"""The action catalog: versioned definitions of what the agents may do, and for which findings."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class RiskTier(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class Matches(BaseModel):
    model_config = ConfigDict(extra="forbid")
    processArea: str
    deviationPatterns: list[str] = Field(min_length=1)


class Lookup(BaseModel):
    """Contract fields the system of record can fill when a finding lacks them (miners often know only
    the case id): read record `record` whose id is the attribute `key`, take `fields` from it."""

    model_config = ConfigDict(extra="forbid")
    record: str = Field(pattern=r"^[a-z][a-zA-Z]{1,40}$")
    key: str
    fields: list[str] = Field(min_length=1)


class RateLimit(BaseModel):
    """Calls per minute through the action's connector, and changes per entity (e.g. per vendor) per day."""

    model_config = ConfigDict(extra="forbid")
    perMinute: int | None = Field(default=None, ge=1, le=2000)  # a sliding log of at most 2,000 stamps
    perEntityPerDay: int | None = Field(default=None, ge=1, le=2000)
    entityField: str | None = None


class Threshold(BaseModel):
    """Approval by amount: above `approvalAbove` a person approves whatever the risk tier; above
    `secondApproverAbove`, two different people holding the approval role."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(min_length=1, max_length=80)
    approvalAbove: float | None = Field(default=None, ge=0)
    secondApproverAbove: float | None = Field(default=None, ge=0)


class FlowRef(BaseModel):
    """Where the child flow lives: the *name* of the app setting holding its SAS URL, never the URL."""

    model_config = ConfigDict(extra="forbid")
    setting: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    connector: str = "http"


_NUMERIC = ("number", "integer")


class Action(BaseModel):
    """One version of a catalog action (README "The action catalog"; docs/change-control.md)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]{1,80}$")
    version: int = Field(ge=1)
    name: str
    description: str = ""
    # Compensating actions match no finding: they are only ever run by the watchdog.
    matches: Matches | None = None
    dataContract: dict[str, Any]
    flow: FlowRef
    riskTier: RiskTier
    approvalRole: str | None = None
    # Executions per 24 hours (a sliding day, held by the rate limiter); None: no cap.
    dailyCap: int | None = Field(default=100, ge=1, le=2000)
    rateLimit: dict[str, Any] | None = None

    @field_validator("rateLimit")
    @classmethod
    def _rate_limit(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Kept as a plain dict for the stored JSON, checked by its model: a limit the limiter cannot
        # hold must be refused here, not discovered at the first execution.
        return None if value is None else RateLimit.model_validate(value).model_dump(exclude_none=True)
    compensation: str | None = None
    verify: dict[str, Any] = Field(default_factory=dict)
    environments: list[str] = Field(default_factory=lambda: ["local", "dev", "test", "prod"])
    enabled: bool = True
    holdoutPercent: float | None = Field(default=None, ge=0, le=100)
    complexity: float = Field(default=0.0, ge=0, lt=1)
    # Contract field → attribute name, where the miner's vocabulary differs from the flow's.
    parameterMap: dict[str, str] | None = None
    lookup: Lookup | None = None
    # Ramp-up: the shares (%) of eligible cases the action may act on alone, widened stage by stage after
    # the policy's rampPromoteAfter verified executions without a breach. None: all cases from the start.
    ramp: list[float] | None = Field(default=None, min_length=1)
    # Approval thresholds on numeric parameters (a data contract may declare them too, as
    # "x-approvalThresholds"; thresholds() reads both).
    approvalThresholds: list[Threshold] = Field(default_factory=list, max_length=10)
    # What a person should know before choosing the action: hours of work it saves or takes, what must hold
    # first, and how it is known to fail.
    effortHours: float | None = Field(default=None, ge=0, le=10_000)
    prerequisites: list[str] = Field(default_factory=list, max_length=20)
    failureModes: list[str] = Field(default_factory=list, max_length=20)
    author: str | None = None
    reason: str | None = None
    # Where the version came from: "repo" (shipped with the deployment) or "api" (PUT /api/actions/{id},
    # set by the server, never by the body). API versions go live alone only when they tighten (change_control).
    origin: Literal["repo", "api"] = "repo"

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        # Stored beside the policy versions (row key policy~<version>): an action named so would collide.
        if value in ("policy", "prompt"):
            raise ValueError("policy and prompt are reserved names")
        return value

    @field_validator("dataContract")
    @classmethod
    def _contract(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Checked when the version is added: a contract change control or the planner cannot read would
        # otherwise fail every later catalog build, on every instance.
        for key in ("required", "x-pii"):
            listed = value.get(key, [])
            if not isinstance(listed, list) or not all(isinstance(f, str) for f in listed):
                raise ValueError(f"{key} must be a list of field names")
        declared = value.get("x-approvalThresholds", [])
        if not isinstance(declared, list):
            raise ValueError("x-approvalThresholds must be a list of thresholds")
        for t in declared:
            Threshold.model_validate(t)
        props = value.get("properties", {})
        if not isinstance(props, dict) or not all(isinstance(p, dict) for p in props.values()):
            raise ValueError("properties must be an object of JSON Schemas")
        # The fields that say which record the action changes, beyond the "...Id" names (domain/identifying.py).
        named = value.get("x-identifying", [])
        if not isinstance(named, list) or not all(isinstance(f, str) and f in props for f in named):
            raise ValueError("x-identifying must be a list of the data contract's property names")
        return value

    @model_validator(mode="after")
    def _numeric_thresholds(self) -> Action:
        # A threshold on a field the contract does not declare a number could only be met by values it cannot
        # compare (threshold_need then asks the most it can, every time): a mistake to refuse when it is added.
        props = self.dataContract.get("properties") or {}
        for t in self.thresholds():
            if t.field not in props:
                raise ValueError(f"the approval threshold on {t.field!r} names a field the data contract does not "
                                 "declare; declare it with type number or integer")
            kind = props[t.field].get("type")
            kinds = [k for k in kind if k != "null"] if isinstance(kind, list) else [kind]
            if not kinds or not all(k in _NUMERIC for k in kinds):
                raise ValueError(f"the approval threshold on {t.field!r} needs the data contract to declare it with "
                                 f"type number or integer, not {kind!r}")
        return self

    def required_fields(self) -> tuple[str, ...]:
        return tuple(self.dataContract.get("required", ()))

    def thresholds(self) -> list[Threshold]:
        """The action's approval thresholds and its data contract's ("x-approvalThresholds"), in that order."""
        declared = self.dataContract.get("x-approvalThresholds") or []
        return [*self.approvalThresholds, *(Threshold.model_validate(t) for t in declared)]


@dataclass(frozen=True, slots=True)
class Candidate:
    """What scoring needs of an action, flattened once so the hot path reads plain attributes."""

    id: str
    version: int
    required: tuple[str, ...]
    complexity: float
    tier: str
    action: Action


class Catalog:
    """Latest enabled version of each action, indexed by (processArea, pattern) for O(1) matching."""

    def __init__(self, actions: Iterable[Action], environment: str = "local",
                 activated: Iterable[tuple[str, int]] = ()):
        self.environment = environment
        # Prompt versions added over the API and activated, by name (services/rule_versions.py sets them).
        self.prompts: dict[str, Any] = {}
        self.versions: dict[tuple[str, int], Action] = {(a.id, a.version): a for a in actions}
        from .change_control import activation_needed

        approved = set(activated)
        latest: dict[str, Action] = {}
        # A version waiting for its activation approval never becomes the one in use (change control).
        self.pending: dict[tuple[str, int], list[str]] = {}
        for key in sorted(self.versions):
            action = self.versions[key]
            reasons = activation_needed(action, latest.get(action.id))
            if reasons and key not in approved:
                self.pending[key] = reasons
                continue
            latest[action.id] = action
        self.actions = latest
        self._by_key: dict[tuple[str, str], list[Action]] = {}
        self._fast: dict[tuple[str, str], tuple[Candidate, ...]] = {}
        self.scorers: dict[int, Any] = {}
        for action in latest.values():
            if not action.enabled or environment not in action.environments or action.matches is None:
                continue
            area = action.matches.processArea.casefold()
            for pattern in action.matches.deviationPatterns:
                self._by_key.setdefault((area, pattern.casefold()), []).append(action)
        # Every field any contract marks as personal data: masked wherever records are shown (pii.py).
        self.pii_fields = frozenset(f for a in self.versions.values()
                                    for f in (a.dataContract.get("x-pii") or []) if isinstance(f, str))
        # Actions that more than one pattern leads to: only their cases can be reported twice under
        # different opportunity ids, so only they need triage's duplicate claim (see claims.py).
        self.cross_pattern = frozenset(a.id for a in latest.values() if a.enabled and a.matches is not None
                                       and len({p.casefold() for p in a.matches.deviationPatterns}) > 1)
        for area_pattern, actions in self._by_key.items():
            self._fast[area_pattern] = tuple(
                Candidate(a.id, a.version, a.required_fields(), a.complexity, a.riskTier.value, a) for a in actions)

    def allows(self, action_id: str) -> bool:
        """May this action run here now: its version in use is enabled and allowlisted for this environment."""
        current = self.actions.get(action_id)
        return current is not None and current.enabled and self.environment in current.environments

    def candidates(self, process_area: str, pattern: str) -> list[Action]:
        """Enabled actions allowed here for a processArea + deviation pattern."""
        return self._by_key.get((process_area.casefold(), pattern.casefold()), [])

    def candidates_fast(self, process_area: str, pattern: str) -> tuple[Candidate, ...]:
        return self._fast.get((process_area.casefold(), pattern.casefold()), ())
