"""Case claims: one live opportunity per (process area, case, action), whatever pattern reported it.

Two miners, or two patterns of one miner, can flag the same invoice for the same fix ("blocked" and
"missing PO" both lead to ap.request-missing-fields). Ingest merges findings only within a pattern, so
triage claims the case for the action it would take: the first opportunity to claim holds it, a later one
is a `duplicate` of it. Only actions that several patterns lead to need a claim: within one pattern,
the opportunity id is the case's fingerprint, so ingest has already folded its findings together. A control
case claims too, so no other pattern can treat a held-out case.
A claim whose holder has let go can be taken over: a case may recur after it was fixed, and a holder
stuck in `needs_data` yields to a twin that came with the data (it becomes the duplicate when it returns).
"""
from __future__ import annotations

import hashlib

from .opportunity import Opportunity
from .status import Status

# Holders in these statuses let go: their case is settled (new findings on it are new work), or they
# cannot act until a person supplies data.
RELEASED = frozenset({Status.closed, Status.dismissed, Status.failed, Status.compensated, Status.duplicate,
                      Status.verified, Status.rejected, Status.needs_data})


def claim_key(opp: Opportunity, cross_pattern: frozenset[str]) -> str | None:
    """The claim an opportunity makes, or None when it needs none: no catalog action would touch it, or
    only one pattern leads to that action (ingest already folds a case's findings within a pattern)."""
    action = opp.scores.actionId
    if action not in cross_pattern:
        return None
    raw = f"{opp.processArea.casefold()}\x1f{opp.caseKey}\x1f{action}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def claim_space(opp: Opportunity) -> str:
    """Claims for one process area and action are kept together, so a batch claims in one transaction."""
    return hashlib.sha256(f"{opp.processArea.casefold()}\x1f{opp.scores.actionId}".encode()).hexdigest()[:8]
