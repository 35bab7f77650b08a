"""What a person may answer to an escalation about a case, and which answer the app recommends (pure).

Options follow the case as it is when asked (and again when answered, so a stale card cannot act):
retry a failed flow, undo an action that reached the system of record, accept the case as it is, hand it
to an owner, or close it with a reason. docs/escalations.md says why each is offered and recommended.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .catalog import Catalog
from .execution import FAILED, REJECTED, SUCCEEDED, Execution, plan_key
from .opportunity import Opportunity
from .status import TRANSITIONS, Status

RETRY, UNDO, ACCEPT, HANDOVER, CLOSE = "retry", "undo", "accept", "handover", "close"
ORDER = (RETRY, UNDO, ACCEPT, HANDOVER, CLOSE)
LABELS = {RETRY: "Retry the action", UNDO: "Undo it", ACCEPT: "Accept as is", HANDOVER: "Hand over",
          CLOSE: "Close with a reason"}
# A retry is a person's new decision; after this many the flow is not the problem: a person should look.
MAX_RETRIES = 2


def planned(opp: Opportunity, executions: Iterable[Execution]) -> Execution | None:
    """The execution of the plan's current attempt, if it was recorded."""
    if not opp.plan:
        return None
    key = plan_key(opp.id, opp.plan)
    return next((x for x in executions if x.kind == "action" and x.id == key), None)


def acted(opp: Opportunity, executions: Iterable[Execution]) -> Execution | None:
    """The plan's action execution that succeeded (whichever attempt), the one an undo would compensate."""
    plan = opp.plan or {}
    done = [x for x in executions if x.kind == "action" and x.status == SUCCEEDED
            and x.actionId == plan.get("actionId") and x.actionVersion == plan.get("actionVersion")]
    return max(done, key=lambda x: x.updatedAt) if done else None


def undone(x: Execution | None, executions: Iterable[Execution]) -> bool:
    return x is not None and any(c.kind == "compensation" and c.compensates == x.id and c.status == SUCCEEDED
                                 for c in executions)


def undo_pending(opp: Opportunity) -> dict[str, Any] | None:
    """A person's undo asked for and not run yet (plan.undo without done) on a verified or failed case."""
    undo = (opp.plan or {}).get("undo")
    if opp.status in (Status.failed, Status.verified) and isinstance(undo, dict) and not undo.get("done"):
        return undo
    return None


def close_target(status: Status) -> Status | None:
    """Where "close with a reason" takes a case: closed where the status machine allows it, else dismissed."""
    allowed = TRANSITIONS[status]
    return Status.closed if Status.closed in allowed else Status.dismissed if Status.dismissed in allowed else None


def retryable(opp: Opportunity, executions: Sequence[Execution], catalog: Catalog,
              mode: str = "autonomous") -> bool:
    """A failed flow: status failed, the current attempt's execution failed or rejected, the action still allowed
    (in the catalog, and autonomy for it, `mode`, is not off)."""
    plan = opp.plan
    if opp.status is not Status.failed or not plan or mode == "off":
        return False
    x = planned(opp, executions)
    return (x is not None and x.status in (FAILED, REJECTED)
            and (plan["actionId"], plan["actionVersion"]) in catalog.versions and catalog.allows(plan["actionId"]))


def undoable(opp: Opportunity, executions: Sequence[Execution], catalog: Catalog) -> bool:
    """The action reached the system of record, it has a compensation, none has succeeded yet, and no person asked
    for one before: a case is undone once (a failed undo is not offered again; its key would find it on record)."""
    if opp.status not in (Status.failed, Status.verified) or (opp.plan or {}).get("undo"):
        return False
    x = acted(opp, executions)
    if x is None:
        return False
    action = catalog.versions.get((x.actionId, x.actionVersion))
    return (action is not None and bool(action.compensation) and action.compensation in catalog.actions
            and not undone(x, executions))


def options(opp: Opportunity, executions: Sequence[Execution], catalog: Catalog,
            mode: str = "autonomous") -> list[str]:
    """The answers that fit the case now, in ORDER; `mode` is the autonomy in force for the plan's action."""
    if undo_pending(opp) is not None:
        # The watchdog runs the undo a person asked for: nothing may settle or re-run the case meanwhile (a second
        # undo, a retry, accept or close); handing it to someone else still fits.
        return [HANDOVER]
    out = []
    if retryable(opp, executions, catalog, mode):
        out.append(RETRY)
    if undoable(opp, executions, catalog):
        out.append(UNDO)
    if opp.status in (Status.failed, Status.compensated, Status.verified):
        out.append(ACCEPT)
    out.append(HANDOVER)
    if close_target(opp.status) is not None:
        out.append(CLOSE)
    return out


def recommend(opp: Opportunity, executions: Sequence[Execution], catalog: Catalog,
              offered: Sequence[str]) -> tuple[str, str]:
    """(the recommended answer, why), always one of `offered`."""
    if undo_pending(opp) is not None:
        return HANDOVER, "the undo a person asked for is running: the case settles when it answered"
    attempt = int((opp.plan or {}).get("attempt") or 0)
    if RETRY in offered and attempt < MAX_RETRIES:
        return RETRY, ("the flow failed before it changed anything; a new attempt (with its own idempotency key) "
                       "may succeed")
    if UNDO in offered and opp.status is Status.failed:
        return UNDO, "the action changed the system of record but did not hold, and nothing has undone it yet"
    if opp.status is Status.compensated and ACCEPT in offered:
        return ACCEPT, "the compensation restored the state before the action; nothing is left to do"
    if RETRY in offered:
        return HANDOVER, f"retried {attempt} times already: the flow is not the problem, a person should look"
    if opp.recurrences and opp.status is Status.verified:
        return HANDOVER, "the deviation came back after a verified action: its root cause needs an owner"
    return HANDOVER, "nothing the app can do will settle it: an owner should decide"


def context(opp: Opportunity, executions: Sequence[Execution], catalog: Catalog,
            extra: Mapping[str, Any] | None = None, mode: str = "autonomous") -> dict[str, Any]:
    """What the escalation record keeps: the options offered, the recommended one and why, the attempt."""
    offered = options(opp, executions, catalog, mode)
    best, why = recommend(opp, executions, catalog, offered)
    return {"options": offered, "recommended": best, "why": why, "status": opp.status.value,
            "attempt": int((opp.plan or {}).get("attempt") or 0), **(extra or {})}
