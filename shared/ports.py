"""The ports: what services need from the outside world, as small Protocols."""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from .domain.aliases import Aliases
from .domain.approvals import Approval
from .domain.audit import AuditEntry
from .domain.catalog import Catalog
from .domain.execution import Execution
from .domain.flowcall import FlowResponse
from .domain.opportunity import Opportunity
from .domain.outcomes import Outcome
from .domain.policy import Policy
from .domain.rate_limit import Rule, Verdict
from .settings import Settings

IngestOutcome = Literal["created", "updated", "duplicate"]
MergeFn = Callable[[Opportunity, Opportunity], Opportunity | None]


@dataclass(frozen=True, slots=True)
class IngestResult:
    opportunity: Opportunity
    outcome: IngestOutcome


@dataclass(frozen=True, slots=True)
class Filter:
    status: str | None = None
    processArea: str | None = None
    deviationPattern: str | None = None
    # "open" (work in flight or waiting) or "finished" (domain/status.py FINISHED); None: both.
    state: str | None = None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Keyset position in the ranked backlog: strictly after (priority, id) in descending priority."""

    priority: float
    id: str


class ConcurrencyConflict(Exception):
    """Someone else changed the record since it was read; read again and retry."""


class Records(Protocol):
    """The system of record: opportunities with their executions, approvals and audit trail."""

    def ingest(self, incoming: Sequence[Opportunity], merge: MergeFn) -> list[IngestResult]:
        """Create new opportunities and fold known ones with `merge`, atomically per opportunity."""

    def get(self, opportunity_id: str) -> Opportunity | None: ...

    def save(self, opportunity: Opportunity) -> Opportunity:
        """Replace if the ETag still matches (else ConcurrencyConflict); returns it with its new ETag."""

    def commit(self, opportunity: Opportunity, executions: Sequence[Execution] = (),
               audit: Sequence[AuditEntry] = (), approvals: Sequence[Approval] = ()) -> Opportunity:
        """All or nothing: replace the opportunity (its ETag must match), create or replace its executions
        and approvals (one without an ETag must not exist yet) and append audit entries. ConcurrencyConflict
        when a precondition fails; executions and approvals get their new ETags."""

    def commit_many(self, commits: Sequence[Commit]) -> list[Exception | None]:
        """Many commits in as few transactions as the partitions allow; per commit, None or the
        ConcurrencyConflict that refused it (the others are written)."""

    def get_many(self, ids: Sequence[str]) -> dict[str, Opportunity]: ...

    def execution(self, opportunity_id: str, execution_id: str) -> Execution | None: ...

    def executions_by_id(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Execution]:
        """Many (opportunityId, executionId) lookups in few requests."""

    def executions(self, opportunity_id: str) -> list[Execution]: ...

    def approval(self, approval_id: str) -> Approval | None: ...

    def approvals(self, opportunity_id: str) -> list[Approval]: ...

    def pending_approvals(self) -> list[Approval]:
        """Every approval not yet decided, for the sweep (expiry and escalation)."""

    def decided_approvals(self, since: datetime) -> list[Approval]:
        """Approvals decided since `since`, for the weekly review (who was asked, was the card helpful)."""

    def audit(self, opportunity_id: str) -> list[AuditEntry]: ...

    def ranked(self, where: Filter, top: int, after: Cursor | None) -> list[Opportunity]:
        """Highest priority first (ties by id), at most `top`, strictly after `after`."""

    def scan(self, where: Filter, fields: Sequence[str]) -> Iterable[dict[str, Any]]:
        """A projection of matching opportunities, for aggregates such as the backlog view."""

    def executions_since(self, since: datetime) -> list[Execution]:
        """Every execution changed since `since` (drift detection reads a day of them)."""

    def stale(self, statuses: Iterable[str], updated_before: datetime) -> list[Opportunity]:
        """Opportunities sitting in one of `statuses` since before `updated_before`."""

    def ping(self) -> None:
        """Raise if the store cannot be reached."""


class Reference(Protocol):
    """Reference data kept beside the records: catalog, policy and prompt versions, incidents, telemetry, outcomes."""

    def record_incident(self, incident: Incident) -> None: ...

    def incidents(self, top: int) -> list[Incident]:
        """The newest incidents first."""

    def action_versions(self) -> list[dict[str, Any]]:
        """Every stored version of every catalog action, as JSON documents."""

    def add_action_version(self, doc: dict[str, Any]) -> None:
        """Store a new version; ConcurrencyConflict if that id + version exists (versions are never edited)."""

    def policy_versions(self) -> list[dict[str, Any]]:
        """Every policy version the app has run with, as JSON documents (author and reason included)."""

    def add_policy_version(self, doc: dict[str, Any]) -> None:
        """Record one; ConcurrencyConflict if that version is already stored."""

    def prompt_versions(self) -> list[dict[str, Any]]:
        """Every prompt version added over the API: {name, version, system, user, author, reason}."""

    def add_prompt_version(self, doc: dict[str, Any]) -> None:
        """Record one; ConcurrencyConflict if that name + version is already stored (never edited)."""

    def activations(self) -> list[dict[str, Any]]:
        """Approvals that let a pending version go live: {id, version, approvedBy, approvedAt}; `id` is an
        action id, `~policy`, or `~prompt~<name>`."""

    def add_activation(self, doc: dict[str, Any]) -> None:
        """Record one; ConcurrencyConflict if that version is already active."""

    def add_telemetry(self, kind: str, doc: dict[str, Any]) -> None:
        """Append one telemetry record (an LLM call: prompt version, outcome, tokens, latency)."""

    def telemetry(self, kind: str, since: datetime) -> list[dict[str, Any]]:
        """Telemetry records of `kind` since `since`, oldest first."""

    def add_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        """Store KPI observations; one with a stored id replaces it (a redelivery or a correction)."""

    def outcomes(self) -> Iterable[Outcome]:
        """Every stored KPI observation, for measurement."""

    def ping(self) -> None:
        """Raise if the store cannot be reached."""


class Coordination(Protocol):
    """Coordination between processes: claims, rate limits, the autonomy switch and small operational state."""

    def state(self, name: str) -> dict[str, Any] | None:
        """A small operational record (the sweep's heartbeat, drift baselines) by name."""

    def put_state(self, name: str, doc: dict[str, Any]) -> None:
        """Write it whole (last writer wins: each has one writer, the timer)."""

    def state_versioned(self, name: str) -> tuple[dict[str, Any] | None, str | None]:
        """A state record with its ETag, for a record several requests write at once; (None, None) if none."""

    def save_state(self, name: str, doc: dict[str, Any], etag: str | None) -> str:
        """Replace it if unchanged since read (create when `etag` is None); ConcurrencyConflict otherwise.
        Returns the new ETag."""

    def states(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Every state record whose name starts with `prefix` (letters, digits, '.', '_', '-'), by name."""

    def autonomy(self) -> tuple[dict[str, Any] | None, str | None]:
        """The autonomy document and its ETag; (None, None) before anyone set it."""

    def save_autonomy(self, doc: dict[str, Any], etag: str | None) -> str:
        """Replace it if unchanged since read (create when `etag` is None); ConcurrencyConflict otherwise."""

    def limit_full(self, rule: Rule, now_ms: int) -> bool:
        """Would a request under `rule` be refused now (nothing is granted by asking)?"""

    def acquire_many(self, requests: Sequence[Sequence[Rule]], now_ms: int) -> list[Verdict]:
        """Rate-limit grants for many requests at once (each needs all its rules), in order. Never more
        than a rule's limit in any window, across processes: logs are written under their ETags."""

    def claim_many(self, claims: Sequence[Claim]) -> dict[str, Claim]:
        """Create each claim unless its key is held; returns every key's claim as stored (the holder may be
        another opportunity), with the ETag a take-over needs."""

    def take_over(self, claim: Claim, holder: str) -> bool:
        """Give a held claim to `holder` if it is unchanged since read (ETag); False if someone moved first."""

    def ping(self) -> None:
        """Raise if the store cannot be reached."""


class Store(Records, Reference, Coordination, Protocol):
    """A backend that serves all three ports (memory and Azure Tables)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """Who holds a case for an action (see domain/claims.py); `space` groups claims that are written together."""

    space: str
    key: str
    holder: str
    etag: str | None = None


@dataclass(slots=True)
class Commit:
    opportunity: Opportunity
    executions: Sequence[Execution] = ()
    audit: Sequence[AuditEntry] = ()
    approvals: Sequence[Approval] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """A claim-check nudge: ids only; the store holds the truth."""

    queue: str
    body: dict[str, Any]
    message_id: str
    scheduled_at: datetime | None = None


class Bus(Protocol):
    def send(self, messages: Sequence[Message]) -> None:
        """Enqueue; a duplicate message_id within the detection window is dropped by the bus."""

    def dead_letter_counts(self, queues: Sequence[str]) -> dict[str, int]:
        """How many messages each queue has dead-lettered (the sweep surfaces them as incidents)."""


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(slots=True)
class Completion:
    """One structured-output call: the parsed answer, or the outcome that explains why there is none."""

    outcome: str  # ok | refused | invalid | timeout | rate_limited | error
    parsed: Any = None
    text: str = ""
    detail: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0


class Llm(Protocol):
    model: str

    def complete(self, messages: list[dict[str, str]], schema: type) -> Completion:
        """Ask for an answer in the shape of the pydantic `schema`; never raises for the model's failures."""


class Flows(Protocol):
    def call(self, setting: str, payload: dict[str, Any], idempotency_key: str, correlation_id: str,
             timeout: float) -> FlowResponse:
        """POST to the child flow whose URL is in app setting `setting`; status 0 when it did not answer."""

    def poll(self, location: str, correlation_id: str, timeout: float) -> FlowResponse: ...


class Notifier(Protocol):
    def notify(self, kind: str, opportunity_id: str, subject: str, details: dict[str, Any]) -> None:
        """Tell people: `kind` is enrich, approve, review or escalate."""


@dataclass(frozen=True, slots=True)
class Incident:
    """Something the pipeline could not settle by itself, kept for a person (GET /api/incidents)."""

    id: str
    at: datetime
    kind: str  # poison, failed, gave_up, breach
    stage: str
    detail: str
    opportunityId: str | None = None
    correlationId: str | None = None


class FlowNotConfigured(Exception):
    """The app setting naming a child flow's URL is empty: nothing was sent."""


class PollRefused(Exception):
    """A Location outside the poll allowlist: no request was sent to it."""


@dataclass
class Services:
    """What a service needs, built by the composition root (shared/bootstrap.py) or by a test."""

    settings: Settings
    store: Records
    reference: Reference
    coordination: Coordination
    bus: Bus
    catalog: Catalog
    policy: Policy
    clock: Clock
    flows: Flows | None = None
    notifier: Notifier | None = None
    rng: random.Random = field(default_factory=random.Random)
    # Set when an LLM is configured (AZURE_OPENAI_ENDPOINT or LLM_BASE_URL): plans may then come from it.
    llm: Llm | None = None
    # The policy shipped with the deployment (catalog/policy.json); `policy` is the one in use, which an
    # activated API version newer than it replaces (services/rule_versions.py).
    deployed_policy: Policy | None = None
    # Any miner's names → the catalog's (catalog/aliases.json); none by default.
    aliases: Aliases = field(default_factory=Aliases)
