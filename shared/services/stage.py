"""What a stage and the runner say to each other: what a stage needs read, and what it decided.

A stage never writes. It names the reads it needs (`Needs`), is handed what was found (`Found`), and
returns an `Outcome`: the commits, and what to send, tell, record and count once those commits have landed.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..domain.catalog import Action
from ..domain.execution import FINAL, Execution
from ..domain.messages import Nudge
from ..domain.rate_limit import Rule, Verdict
from ..domain.status import Status
from ..ports import Claim, Commit, Incident


class Result(StrEnum):
    """What happened to one message (the values are what logs and tests have always read)."""

    TRIAGED = "triaged"
    DUPLICATE = "duplicate"
    CONTROL = "control"
    NEEDS_DATA = "needs_data"
    NEEDS_REVIEW = "needs_review"
    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    EXECUTED = "executed"
    THROTTLED = "throttled"
    RETRY = "retry"
    WAIT = "wait"
    VERIFIED = "verified"
    COMPENSATED = "compensated"
    FAILED = "failed"
    ALREADY_TRIAGED = "already triaged"
    ALREADY_PLANNED = "already planned"
    NOTHING_TO_EXECUTE = "nothing to execute"
    NOTHING_TO_VERIFY = "nothing to verify"
    POISON = "poison"
    MISROUTED = "misrouted"
    MISSING = "missing"
    CALLING = "calling"  # an execution recorded, its flow call next: never a message's last word

    @property
    def passed(self) -> bool:
        """The opportunity had already moved past this stage (the message is a redelivery or a stray)."""
        return self in _PASSED


_PASSED = frozenset({Result.ALREADY_TRIAGED, Result.ALREADY_PLANNED, Result.NOTHING_TO_EXECUTE,
                     Result.NOTHING_TO_VERIFY})

# The stage that moves an opportunity on from each status that waits on a queue.
RESUME = {Status.new: "triage", Status.triaged: "plan", Status.planned: "execute", Status.approved: "execute",
          Status.executing: "execute", Status.executed: "verify"}


@dataclass(frozen=True, slots=True)
class Read:
    """One record to read from the system of record (a flow call), under a deterministic key."""

    key: str
    params: dict[str, Any]


@dataclass
class Needs:
    """What a stage must have read before it can decide for one message (the runner reads each kind at once)."""

    claims: list[Claim] = field(default_factory=list)
    executions: list[tuple[str, str]] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    states: list[str] = field(default_factory=list)  # small coordination records by name (a ramp's stage)
    limits: list[Rule] = field(default_factory=list)  # rate limits to check, granting nothing (daily caps)
    histories: list[str] = field(default_factory=list)  # opportunity ids: every execution each has

    def __bool__(self) -> bool:
        return bool(self.claims or self.executions or self.reads or self.states or self.limits or self.histories)


@dataclass
class Found:
    """What the runner read for one message: claim holders, executions by id, system-of-record records."""

    twins: dict[str, str | None] = field(default_factory=dict)  # claim key → the other live holder, or None
    executions: dict[tuple[str, str], Execution | None] = field(default_factory=dict)
    records: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    states: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    full: dict[str, bool] = field(default_factory=dict)  # rule key → would a request be refused now
    histories: dict[str, list[Execution]] = field(default_factory=dict)  # opportunity id → its executions

    def lacks(self, needs: Needs) -> Needs:
        """The part of `needs` not read yet."""
        return Needs([c for c in needs.claims if c.key not in self.twins],
                     [k for k in needs.executions if k not in self.executions],
                     [r for r in needs.reads if r.key not in self.records],
                     [n for n in needs.states if n not in self.states],
                     [r for r in needs.limits if r.key not in self.full],
                     [o for o in needs.histories if o not in self.histories])


@dataclass(frozen=True, slots=True)
class Note:
    """A notification for people (kind: enrich, approve, review or escalate)."""

    kind: str
    opportunity_id: str
    subject: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Send:
    nudges: tuple[Nudge, ...]
    at: datetime | None = None


@dataclass
class Call:
    """A flow call made only after the outcome's commits landed (so its execution is on record first)."""

    action: Action
    execution: Execution
    poll_url: str | None
    rules: list[Rule]  # rate limits to pass first; none for a poll or a compensation
    done: Callable[[Any | None], Outcome]  # given the flowrun.Attempt, or None when nothing was called
    over: Callable[[Verdict], Outcome]  # over a rate limit: no call

    @property
    def needed(self) -> bool:
        """False when the execution already has its final answer (a replay after a crash): nothing to call."""
        return self.execution.status not in FINAL


@dataclass
class Outcome:
    """A stage's decision for one message; the runner writes it."""

    result: Result
    commits: list[Commit] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    call: Call | None = None
    counts: list[Callable[[], None]] = field(default_factory=list)  # metrics to record once the commits landed

    def send(self, *nudges: Nudge, at: datetime | None = None) -> Outcome:
        self.sends.append(Send(tuple(nudges), at))
        return self
