"""Opportunity lifecycle: which status may follow which. An illegal move is an error, never an overwrite."""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    new = "new"
    triaged = "triaged"
    needs_data = "needs_data"
    duplicate = "duplicate"
    control = "control"
    planned = "planned"
    needs_review = "needs_review"
    awaiting_approval = "awaiting_approval"
    approved = "approved"
    rejected = "rejected"
    executing = "executing"
    executed = "executed"
    failed = "failed"
    verified = "verified"
    compensated = "compensated"
    closed = "closed"
    # Not in the first contract: a person said "not worth doing". Kept apart from `closed`
    # so impact numbers never count a dismissed case as a finished one.
    dismissed = "dismissed"


S = Status
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.new: frozenset({S.triaged, S.needs_data, S.duplicate, S.control, S.dismissed}),
    S.needs_data: frozenset({S.new, S.dismissed}),
    S.triaged: frozenset({S.planned, S.needs_review, S.dismissed}),
    S.planned: frozenset({S.awaiting_approval, S.executing, S.dismissed}),
    S.needs_review: frozenset({S.planned, S.awaiting_approval, S.closed, S.dismissed}),
    S.awaiting_approval: frozenset({S.approved, S.rejected, S.dismissed}),
    S.approved: frozenset({S.executing}),
    S.rejected: frozenset({S.closed}),
    S.executing: frozenset({S.executed, S.failed}),
    # executed → failed: verification failed and the action has no compensation to run.
    S.executed: frozenset({S.verified, S.compensated, S.failed}),
    S.failed: frozenset({S.executing, S.closed}),
    S.verified: frozenset({S.closed}),
    S.compensated: frozenset({S.closed}),
    S.duplicate: frozenset({S.closed}),
    S.control: frozenset({S.closed}),
    S.closed: frozenset(),
    S.dismissed: frozenset(),
}


class IllegalTransition(ValueError):
    def __init__(self, current: Status, target: Status):
        super().__init__(f"illegal status transition {current.value} → {target.value}")
        self.current, self.target = current, target


def check_transition(current: Status, target: Status) -> None:
    """Raise IllegalTransition unless `target` may follow `current`."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)
