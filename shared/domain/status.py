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
    # A reviewer's decision: run an action (planned, or awaiting its approver), supply data (back to triage),
    # or end it.
    S.needs_review: frozenset({S.planned, S.awaiting_approval, S.new, S.closed, S.dismissed}),
    S.awaiting_approval: frozenset({S.approved, S.rejected, S.dismissed}),
    S.approved: frozenset({S.executing}),
    S.rejected: frozenset({S.closed}),
    S.executing: frozenset({S.executed, S.failed}),
    # executed → failed: verification failed and the action has no compensation to run.
    S.executed: frozenset({S.verified, S.compensated, S.failed}),
    # failed → executing: a person asked for a retry; failed → compensated: a person asked for the undo and it ran.
    S.failed: frozenset({S.executing, S.compensated, S.closed}),
    # verified → compensated or failed: a person asked for the undo of a verified action (it ran, or it failed).
    S.verified: frozenset({S.closed, S.compensated, S.failed}),
    S.compensated: frozenset({S.closed}),
    S.duplicate: frozenset({S.closed}),
    S.control: frozenset({S.closed}),
    S.closed: frozenset(),
    S.dismissed: frozenset(),
}


# Work nobody will do any more: the backlog's "finished" (and never "open").
FINISHED = frozenset({S.closed, S.dismissed, S.duplicate, S.control, S.rejected, S.verified, S.compensated})
OPEN = frozenset(Status) - FINISHED


class IllegalTransition(ValueError):
    def __init__(self, current: Status, target: Status):
        super().__init__(f"illegal status transition {current.value} → {target.value}")
        self.current, self.target = current, target


def check_transition(current: Status, target: Status) -> None:
    """Raise IllegalTransition unless `target` may follow `current`."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)
