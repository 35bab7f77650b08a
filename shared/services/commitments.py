"""The weekly commitment: a person with the commit role takes backlog groups or single opportunities for a week,
with an owner; one coordination record per week keeps them, and each item reports what became of its cases."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..domain import commitment as rules
from ..domain.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, Unauthorized
from ..domain.identity import Principal
from ..domain.opportunity import Opportunity
from ..logs import bind
from ..ports import ConcurrencyConflict, Filter, Services
from . import versioned
from .lifecycle import audit

log = logging.getLogger(__name__)
_RETRIES = 5
_OWNER_MAX = 200


def state_name(week: str) -> str:
    return f"commitments.{week}"


def week_of(services: Services, text: str | None, at: str) -> str:
    """The week `text` names, else the current one by the services' clock; 422 naming `at` when malformed."""
    if text is None:  # absent; an empty value is a malformed week, as the OpenAPI pattern says
        return rules.current_week(services.clock.now())
    try:
        return rules.parse_week(text)
    except ValueError as exc:
        raise InvalidInput("Not an ISO week.", [FieldError(at, str(exc))]) from None


def allowed(services: Services, principal: Principal | None) -> Principal:
    """The principal, if it may commit: 401 without one, 403 without the policy's commitRole."""
    if principal is None:
        raise Unauthorized("sign in (Easy Auth) to commit backlog items: the commitment is recorded as yours")
    if not principal.holds(services.policy.commitRole):
        raise Forbidden(f"committing backlog items needs the role {services.policy.commitRole}")
    return principal


def parse(services: Services, body: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """Week, owner and items of a POST /api/backlog/commitments body, every bad field named at once."""
    errors: list[FieldError] = []
    for key in body:
        if key not in ("week", "owner", "items"):
            errors.append(FieldError(f"/{key}", "not a field here (week, owner, items)"))
    week = ""
    if body.get("week") is not None and not isinstance(body["week"], str):
        errors.append(FieldError("/week", "an ISO week such as 2026-W49"))
    else:
        try:
            week = week_of(services, body.get("week"), "/week")
        except InvalidInput as exc:
            errors += exc.errors
    owner = body.get("owner")
    if not isinstance(owner, str) or not owner.strip() or len(owner) > _OWNER_MAX:
        errors.append(FieldError("/owner", f"who owns the items this week: a string of 1 to {_OWNER_MAX} characters"))
    items = body.get("items")
    wanted: list[dict[str, Any]] = []
    if not isinstance(items, list) or not 1 <= len(items) <= rules.MAX_ITEMS:
        errors.append(FieldError("/items", f"a list of 1 to {rules.MAX_ITEMS} items"))
        items = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and set(item) == {"opportunityId"} and isinstance(item["opportunityId"], str):
            wanted.append({"kind": "opportunity", "opportunityId": item["opportunityId"]})
        elif (isinstance(item, dict) and set(item) == {"processArea", "deviationPattern"}
              and all(isinstance(v, str) and v.strip() and len(v) <= _OWNER_MAX for v in item.values())):
            wanted.append({"kind": "group", "processArea": item["processArea"].strip(),
                           "deviationPattern": item["deviationPattern"].strip()})
        else:
            errors.append(FieldError(f"/items/{i}", "either {opportunityId} or {processArea, deviationPattern}"))
    if errors:
        raise InvalidInput("The commitment is invalid; nothing was committed.", errors)
    return week, str(owner).strip(), wanted


def commit(services: Services, week: str, owner: str, wanted: Sequence[dict[str, Any]],
           principal: Principal | None, correlation_id: str) -> dict[str, Any]:
    """Commit `wanted` for `week` with `owner` (validated items, as `parse` gives them): unknown opportunities or
    groups are named and nothing is written; then the week's record, then each opportunity's owner and audit."""
    who = allowed(services, principal)
    opps = _resolve(services, wanted)
    now = services.clock.now()
    items = []
    for item in wanted:
        if item["kind"] == "opportunity":
            opp = opps[item["opportunityId"]]
            item = {**item, "processArea": opp.processArea, "deviationPattern": opp.deviationPattern}
        items.append({**item, "owner": owner, "by": who.id, "at": now.isoformat()})
    versioned.update(services, state_name(week),
                     lambda doc: ({"week": week, "items": rules.merged((doc or {}).get("items", []), items)}, None),
                     lambda: Conflict("The week's commitments are being changed by others; try again."), _RETRIES)
    for opp in opps.values():
        _audit(services, opp.id, week, owner, who, correlation_id)
    bind(log, correlation_id).info("%s committed %d items for %s to %s", who.id, len(items), week, owner)
    return {"week": week, "items": items}


def _resolve(services: Services, wanted: Sequence[dict[str, Any]]) -> dict[str, Opportunity]:
    """The committed opportunities by id; 404 naming each item that names no opportunity or no known group."""
    ids = [i["opportunityId"] for i in wanted if i["kind"] == "opportunity"]
    found = services.store.get_many([i for i in ids if _plausible(i)]) if ids else {}
    errors = []
    for n, item in enumerate(wanted):
        if item["kind"] == "opportunity" and item["opportunityId"] not in found:
            errors.append(FieldError(f"/items/{n}/opportunityId", f"no opportunity {item['opportunityId']!r}"))
        elif item["kind"] == "group" and next(iter(services.store.scan(
                Filter(processArea=item["processArea"], deviationPattern=item["deviationPattern"]), ["status"])),
                None) is None:
            errors.append(FieldError(f"/items/{n}", "no case in the backlog has this processArea and pattern"))
    if errors:
        raise NotFound("Some items name nothing in the backlog; nothing was committed.", errors)
    return found


def _plausible(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def _audit(services: Services, opportunity_id: str, week: str, owner: str, who: Principal, cid: str) -> None:
    """The opportunity's owner set and the commitment in its audit trail, no status move (retried on a race)."""
    for _attempt in range(_RETRIES):
        opp = services.store.get(opportunity_id)
        if opp is None:
            return
        entry = audit(services, opp, who.id, "committed", f"committed for {week}", cid,
                      inputs={"week": week, "owner": owner, "via": who.via})
        try:
            services.store.commit(replace(opp, owner=owner, revision=opp.revision + 1,
                                          updatedAt=services.clock.now()), [], [entry])
            return
        except ConcurrencyConflict:
            continue
    raise Conflict("The opportunity is being changed by others; its commitment is recorded, its owner not yet.")


def week(services: Services, week: str) -> list[dict[str, Any]]:
    """The week's committed items, newest commitment last as they were made."""
    doc = services.coordination.state(state_name(week))
    return list((doc or {}).get("items", []))


def listing(services: Services, week_name: str) -> dict[str, Any]:
    """GET /api/backlog/commitments: each item of the week with what became of its cases (done, inFlight, stuck)."""
    return {"week": week_name, "items": report(services, week(services, week_name))}


def report(services: Services, items: Sequence[dict[str, Any]],
           rows: Sequence[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Items with their outcome counts; `rows` (id, processArea, deviationPattern, status, updatedAt) if the caller
    already scanned them, else read here."""
    now, sla = services.clock.now(), services.policy.approvalSlaHours
    by_id = services.store.get_many([i["opportunityId"] for i in items if i["kind"] == "opportunity"])
    out = []
    for item in items:
        if item["kind"] == "opportunity":
            opp = by_id.get(item["opportunityId"])
            outcomes = [rules.outcome(opp.status, opp.updatedAt, now, sla)] if opp else []
            extra: dict[str, Any] = {"status": opp.status.value if opp else None,
                                     "outcome": outcomes[0] if outcomes else None}
        else:
            cases = rows if rows is not None else list(services.store.scan(
                Filter(processArea=item["processArea"], deviationPattern=item["deviationPattern"]),
                ["processArea", "deviationPattern", "status", "updatedAt"]))
            key = rules.item_key(item)
            outcomes = [rules.outcome(r["status"], _ts(r["updatedAt"]), now, sla) for r in cases
                        if rules.item_key({"kind": "group", **r}) == key]
            extra = {"cases": len(outcomes)}
        out.append({**item, **extra, "counts": rules.tally(outcomes)})
    return out


def _ts(value: Any) -> datetime:
    """A projected time: the stores keep ISO text (entities.ts)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value
