"""Reading and curating the ranked backlog."""
from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import replace
from typing import Any

from ..domain.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, ProblemError, Unauthorized
from ..domain.identity import Principal
from ..domain.opportunity import Opportunity
from ..domain.pii import scrub
from ..domain.status import IllegalTransition, Status
from ..logs import bind
from ..ports import ConcurrencyConflict, Cursor, Filter, Services
from .lifecycle import audit
from .views import opportunity_view

log = logging.getLogger(__name__)
MAX_TOP = 200


class PreconditionFailed(ProblemError):
    status = 412
    title = "Precondition failed"


def encode_cursor(opp: Opportunity) -> str:
    raw = json.dumps({"p": opp.scores.priority, "id": opp.id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return Cursor(float(data["p"]), str(data["id"]))
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        raise InvalidInput("The continuation token is not one this API issued.",
                           [FieldError("?continuationToken", "malformed token")]) from None


def list_opportunities(services: Services, where: Filter, top: int, token: str | None) -> dict[str, Any]:
    """One page of the backlog, highest priority first, with the token for the next page."""
    after = decode_cursor(token) if token else None
    page = services.store.ranked(where, top + 1, after)
    more = len(page) > top
    page = page[:top]
    return {"items": [opportunity_view(o, detail=False) for o in page],
            "continuationToken": encode_cursor(page[-1]) if more else None}


def where(status: str | None, process_area: str | None, deviation_pattern: str | None, at: str = "?") -> Filter:
    """The backlog filter, HTTP's and MCP's alike: an unknown status is a 422 naming the field as `at` + status
    ("?" a query parameter, "/arguments/" an MCP tool's argument) and listing the statuses there are."""
    if status is not None and status not in Status.__members__:
        raise InvalidInput("Unknown status filter.",
                           [FieldError(f"{at}status", f"one of {', '.join(Status.__members__)}")])
    return Filter(status=status, processArea=process_area or None, deviationPattern=deviation_pattern or None)


def detail(services: Services, opportunity_id: str) -> dict[str, Any]:
    """One opportunity in full (GET /api/opportunities/{id} and the get_opportunity tool): scores, rationale, plan,
    history, executions with evidence, approvals and audit trail."""
    opp = get(services, opportunity_id)
    return opportunity_view(opp, executions=services.store.executions(opp.id), audit=services.store.audit(opp.id),
                            approvals=services.store.approvals(opp.id))


def get(services: Services, opportunity_id: str) -> Opportunity:
    opp = services.store.get(opportunity_id) if _plausible_id(opportunity_id) else None
    if opp is None:
        raise NotFound(f"No opportunity {opportunity_id!r}.", [FieldError("/id", "unknown opportunity")])
    return opp


def _plausible_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def patch(services: Services, opportunity_id: str, changes: dict[str, Any], principal: Principal | None,
          correlation_id: str, if_match: str | None = None) -> Opportunity:
    """Set owner and notes, or dismiss, as the signed-in principal (dismissal needs the policy's dismissRole),
    audited with the change; retried on a concurrent write unless the caller pinned an ETag."""
    if principal is None:
        raise Unauthorized("sign in (Easy Auth) to change an opportunity: the change is recorded as yours")
    if changes.get("dismiss") and not principal.holds(services.policy.dismissRole):
        raise Forbidden(f"dismissing an opportunity needs the role {services.policy.dismissRole}")
    actor = principal.id
    # Notes and the dismiss reason are free text kept for good: personal data never goes in (pii.py).
    changes = {k: scrub(v) if k in ("notes", "dismissReason") and isinstance(v, str) else v
               for k, v in changes.items()}
    run = bind(log, correlation_id, opportunityId=opportunity_id)
    for _attempt in range(5):
        opp = get(services, opportunity_id)
        if if_match is not None and if_match != opp.etag:
            raise PreconditionFailed("The opportunity changed since you read it; GET it again.",
                                     [FieldError("header:If-Match", f"current ETag is {opp.etag}")])
        now = services.clock.now()
        updated = replace(opp, revision=opp.revision + 1, updatedAt=now)
        for name in ("owner", "notes"):
            if name in changes:
                setattr(updated, name, changes[name])
        if changes.get("dismiss"):
            reason = changes.get("dismissReason") or "dismissed"
            try:
                updated = updated.transition(Status.dismissed, actor, reason, now)
            except IllegalTransition as exc:
                raise Conflict(f"Cannot dismiss an opportunity that is {opp.status.value}.",
                               [FieldError("/dismiss", str(exc))]) from None
        event = "dismissed" if changes.get("dismiss") else "updated"
        why = changes.get("dismissReason") or f"changed {', '.join(sorted(changes))}"
        entry = audit(services, opp, actor, event, why, correlation_id,
                      inputs={"changes": changes, "via": principal.via})
        try:
            saved = services.store.commit(updated, [], [entry])
        except ConcurrencyConflict:
            if if_match is not None:
                raise PreconditionFailed("The opportunity changed since you read it; GET it again.",
                                         [FieldError("header:If-Match", "stale ETag")]) from None
            continue
        run.info("opportunity updated by %s: %s", actor, sorted(changes))
        return saved
    raise Conflict("The opportunity is being changed by others; try again.")


def backlog(services: Services, where: Filter, top: int) -> dict[str, Any]:
    """Groups of processArea + deviationPattern, largest total priority first, for the weekly review."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in services.store.scan(where, ["processArea", "deviationPattern", "status", "impact", "priority",
                                            "actionId"]):
        key = (row["processArea"], row["deviationPattern"])
        g = groups.get(key)
        if g is None:
            g = groups[key] = {"processArea": key[0], "deviationPattern": key[1], "cases": 0, "totalImpact": 0.0,
                               "totalPriority": 0.0, "maxPriority": 0.0, "statusCounts": {}, "actionId": None}
        g["cases"] += 1
        g["totalImpact"] += row["impact"] or 0.0
        g["totalPriority"] += row["priority"] or 0.0
        g["maxPriority"] = max(g["maxPriority"], row["priority"] or 0.0)
        g["statusCounts"][row["status"]] = g["statusCounts"].get(row["status"], 0) + 1
        g["actionId"] = g["actionId"] or row.get("actionId")
    items = sorted(groups.values(), key=lambda g: -g["totalPriority"])[:top]
    for g in items:
        g["meanPriority"] = round(g["totalPriority"] / g["cases"], 2)
        g["totalImpact"] = round(g["totalImpact"], 2)
        g["totalPriority"] = round(g["totalPriority"], 2)
        g["maxPriority"] = round(g["maxPriority"], 2)
    return {"items": items, "continuationToken": None, "groups": len(groups)}
