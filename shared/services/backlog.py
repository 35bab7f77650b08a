"""Reading and curating the ranked backlog."""
from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import replace
from typing import Any

from ..domain import commitment
from ..domain.catalog import Action
from ..domain.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, ProblemError, Unauthorized
from ..domain.identity import Principal
from ..domain.opportunity import Opportunity
from ..domain.pii import scrub
from ..domain.status import FINISHED, IllegalTransition, Status
from ..logs import bind
from ..ports import ConcurrencyConflict, Cursor, Filter, Services
from . import commitments
from .lifecycle import audit
from .views import action_facts, opportunity_view

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
    return {"items": [opportunity_view(o, detail=False, action=candidate(services, o)) for o in page],
            "continuationToken": encode_cursor(page[-1]) if more else None}


STATES = ("open", "finished", "all")


def where(status: str | None, process_area: str | None, deviation_pattern: str | None, at: str = "?",
          state: str | None = None) -> Filter:
    """The backlog filter, HTTP's and MCP's alike: an unknown status or state is a 422 naming the field as `at` +
    its name ("?" a query parameter, "/arguments/" an MCP tool's argument) and listing the values there are.
    state: open work, finished work, or all (None: all)."""
    errors = []
    if status is not None and status not in Status.__members__:
        errors.append(FieldError(f"{at}status", f"one of {', '.join(Status.__members__)}"))
    if state is not None and state not in STATES:
        errors.append(FieldError(f"{at}state", f"one of {', '.join(STATES)}"))
    if errors:
        raise InvalidInput("Unknown status or state filter.", errors)
    return Filter(status=status, processArea=process_area or None, deviationPattern=deviation_pattern or None,
                  state=None if state in (None, "all") else state)


def detail(services: Services, opportunity_id: str) -> dict[str, Any]:
    """One opportunity in full (GET /api/opportunities/{id} and the get_opportunity tool): scores, rationale, plan,
    history, executions with evidence, approvals and audit trail."""
    opp = get(services, opportunity_id)
    return opportunity_view(opp, executions=services.store.executions(opp.id), audit=services.store.audit(opp.id),
                            approvals=services.store.approvals(opp.id), action=candidate(services, opp))


def candidate(services: Services, opp: Opportunity) -> Action | None:
    """The catalog action scoring picked for the case (its effort, prerequisites and failure modes)."""
    return services.catalog.actions.get(opp.scores.actionId) if opp.scores.actionId else None


def get(services: Services, opportunity_id: str) -> Opportunity:
    opp = services.store.get(opportunity_id) if _plausible_id(opportunity_id) else None
    if opp is None:
        raise NotFound(f"No opportunity {opportunity_id!r}.", [FieldError("/id", "unknown opportunity")])
    return opp


def _plausible_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def patch(services: Services, opportunity_id: str, changes: dict[str, Any], principal: Principal | None,
          correlation_id: str, if_match: str | None = None) -> Opportunity:
    """Set owner, notes and effortHours, or dismiss, as the signed-in principal (dismissal needs the policy's
    dismissRole), audited with the change; retried on a concurrent write unless the caller pinned an ETag."""
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
        for name in ("owner", "notes", "effortHours"):
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


def backlog(services: Services, where: Filter, top: int, week: str | None = None) -> dict[str, Any]:
    """Groups of processArea + deviationPattern for the weekly review: the week's commitments first (`week`, else
    the current one), each with what became of its cases, then the rest by total priority. One scan: every case
    of the filter, its state told per row; finished cases count into each group's `finished`."""
    week = week or commitment.current_week(services.clock.now())
    committed = commitments.week(services, week)
    keys = {commitment.item_key(i) for i in committed if i["kind"] == "group"}
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    finished: dict[tuple[str, str], int] = {}
    committed_rows: list[dict[str, Any]] = []
    for row in services.store.scan(replace(where, state=None), _FIELDS):
        key = (row["processArea"], row["deviationPattern"])
        done = row["status"] in FINISHED
        finished[key] = finished.get(key, 0) + done
        if ("group", key[0].casefold(), key[1].casefold()) in keys:
            committed_rows.append(row)
        if where.state is not None and done != (where.state == "finished"):
            continue
        g = groups.get(key)
        if g is None:
            g = groups[key] = _group(*key)
        g["cases"] += 1
        g["totalImpact"] += row["impact"] or 0.0
        g["totalPriority"] += row["priority"] or 0.0
        g["maxPriority"] = max(g["maxPriority"], row["priority"] or 0.0)
        g["statusCounts"][row["status"]] = g["statusCounts"].get(row["status"], 0) + 1
        g["actionId"] = g["actionId"] or row.get("actionId")
    count = len(groups)
    first = _committed(services, where, week, committed, committed_rows, groups)
    rest = sorted(groups.values(), key=lambda g: -g["totalPriority"])
    items = [*first, *rest][:top]
    for g in items:
        if g["kind"] == "group":
            key = (g["processArea"], g["deviationPattern"])
            g["finished"] = finished.get(key, 0)
            g.update(meanPriority=round(g["totalPriority"] / g["cases"], 2) if g["cases"] else 0.0,
                     totalImpact=round(g["totalImpact"], 2), totalPriority=round(g["totalPriority"], 2),
                     maxPriority=round(g["maxPriority"], 2),
                     action=action_facts(services.catalog.actions.get(g["actionId"]) if g["actionId"] else None))
    return {"items": items, "continuationToken": None, "groups": count, "week": week}


_FIELDS = ["processArea", "deviationPattern", "status", "impact", "priority", "actionId", "updatedAt"]


def _group(process_area: str, pattern: str) -> dict[str, Any]:
    return {"kind": "group", "processArea": process_area, "deviationPattern": pattern, "cases": 0,
            "totalImpact": 0.0, "totalPriority": 0.0, "maxPriority": 0.0, "statusCounts": {}, "actionId": None,
            "committed": None}


def _committed(services: Services, where: Filter, week: str, items: list[dict[str, Any]],
               rows: list[dict[str, Any]], groups: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """The week's committed entries in the filter, in the order committed (taken out of `groups`), each with its
    commitment and its done / inFlight / stuck counts."""
    out = []
    for item in commitments.report(services, items, rows):
        if not _in(where, item):
            continue
        pledge = {"week": week, "owner": item["owner"], "by": item["by"], "at": item["at"]}
        if item["kind"] == "group":
            key = next((k for k in groups if commitment.item_key({"kind": "group", "processArea": k[0],
                                                                   "deviationPattern": k[1]})
                        == commitment.item_key(item)), None)
            if key is None and item["cases"] == 0:
                continue  # the filter (a status) leaves none of its cases
            g = groups.pop(key) if key is not None else _group(item["processArea"], item["deviationPattern"])
            out.append({**g, "committed": pledge, "counts": item["counts"]})
        elif where.status is None or item["status"] == where.status:
            out.append({"kind": "opportunity", "opportunityId": item["opportunityId"],
                        "processArea": item["processArea"], "deviationPattern": item["deviationPattern"],
                        "status": item["status"], "outcome": item["outcome"], "committed": pledge,
                        "counts": item["counts"]})
    return out


def _in(where: Filter, item: dict[str, Any]) -> bool:
    return ((where.processArea is None or item["processArea"].casefold() == where.processArea.casefold())
            and (where.deviationPattern is None
                 or item["deviationPattern"].casefold() == where.deviationPattern.casefold()))
