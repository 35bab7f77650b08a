"""Reading and changing autonomy; the planner asks it before acting on its own."""
from __future__ import annotations

import logging
from typing import Any

from ..domain.autonomy import MODES, PAIR_FIELDS, Autonomy, Pair, pair_of
from ..domain.errors import Conflict, FieldError, Forbidden, InvalidInput, Unauthorized
from ..domain.identity import Principal
from ..ports import ConcurrencyConflict, Services
from . import policy_events
from .per_store import PerStore

log = logging.getLogger(__name__)
# A freeze reaches every instance's planner within 2 seconds.
_cache: PerStore[Autonomy] = PerStore(2.0)


def current(services: Services, fresh: bool = False) -> Autonomy:
    """The autonomy in force (read at most every couple of seconds per store)."""
    def load() -> Autonomy:
        doc, etag = services.coordination.autonomy()
        return Autonomy.from_dict(doc, etag) if doc else Autonomy()

    return _cache.get(services.coordination, load, fresh)


def _ids(value: Any, catalog_ids: set[str]) -> bool:
    """A list of catalog action ids (text: a list or an object is no id, and no set member either)."""
    return isinstance(value, list) and all(isinstance(a, str) and a in catalog_ids for a in value)


def _checked(body: dict[str, Any], catalog_ids: set[str], agent: bool) -> dict[str, Any]:
    errors = []
    # Only an agent tightens a pair (with its evidence) or adds to the frozen actions (its list read before may
    # be stale: the addition is applied to the record as it is when written); only a person relaxes a pair.
    known = {"mode", "actions", "freeze", "freezeActions", "reason",
             *(("tighten", "freezeAdd") if agent else ("relax",))}
    errors += [FieldError(f"/{k}", f"not a setting ({', '.join(sorted(known))})") for k in body if k not in known]
    if "mode" in body and body["mode"] not in MODES:
        errors.append(FieldError("/mode", f"one of {', '.join(MODES)}"))
    actions = body.get("actions") or {}
    if not isinstance(actions, dict):
        errors.append(FieldError("/actions", "an object: action id → mode"))
        actions = {}
    for action, mode in actions.items():
        if action not in catalog_ids:
            errors.append(FieldError(f"/actions/{action}", "not an action in the catalog"))
        elif mode not in (*MODES, None):
            errors.append(FieldError(f"/actions/{action}", f"one of {', '.join(MODES)}, or null to follow mode"))
    if "freeze" in body and not isinstance(body["freeze"], bool):
        errors.append(FieldError("/freeze", "true or false"))
    for name in ("freezeActions", "freezeAdd"):
        if name in body and not _ids(body[name], catalog_ids):
            errors.append(FieldError(f"/{name}", "a list of catalog action ids"))
    for name in ("relax", "tighten"):
        if name in body:
            errors += _pairs_checked(body[name], f"/{name}", catalog_ids)
    if not isinstance(body.get("reason"), str) or not body["reason"].strip():
        errors.append(FieldError("/reason", "say why (it is kept with the change)"))
    if errors:
        raise InvalidInput("The autonomy change is invalid; nothing changed.", errors)
    return body


def _pairs_checked(pairs: Any, at: str, catalog_ids: set[str]) -> list[FieldError]:
    """A list of {actionId, processArea, deviationPattern}: a catalog action on a named pattern (an agent's
    tightening also names its reason and evidence)."""
    fields = (*PAIR_FIELDS, "reason", "evidence") if at == "/tighten" else PAIR_FIELDS
    if not isinstance(pairs, list) or not pairs:
        return [FieldError(at, "a list of {actionId, processArea, deviationPattern}")]
    errors = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, dict):
            errors.append(FieldError(f"{at}/{i}", "an object {actionId, processArea, deviationPattern}"))
            continue
        if not isinstance(pair.get("actionId"), str) or pair["actionId"] not in catalog_ids:
            errors.append(FieldError(f"{at}/{i}/actionId", "not an action in the catalog"))
        errors += [FieldError(f"{at}/{i}/{k}", "a name (text)") for k in ("processArea", "deviationPattern")
                   if not isinstance(pair.get(k), str) or not pair[k].strip()]
        errors += [FieldError(f"{at}/{i}/{k}", "not a field of a pair (actionId, processArea, deviationPattern)")
                   for k in pair if k not in fields]
    return errors


def _relaxed(a: Autonomy, pairs: list[dict[str, Any]], at: str) -> list[tuple[Pair, dict[str, Any]]]:
    """Lift the tightening of each pair and keep when (only later answers tighten it again); a pair not tightened
    is an error (nothing to relax: a typo, or another person relaxed it first), so nothing changes."""
    wanted = [pair_of(p) for p in pairs]
    errors = [FieldError(f"/relax/{i}", f"{p[0]} on {p[1]}/{p[2]} is not tightened: nothing to relax")
              for i, p in enumerate(wanted) if p not in a.tightened]
    if errors:
        raise InvalidInput("The autonomy change is invalid; nothing changed.", errors)
    a.relaxedAt.update(dict.fromkeys(wanted, at))
    return [(p, a.tightened.pop(p)) for p in dict.fromkeys(wanted)]


def _tightened(a: Autonomy, pairs: list[dict[str, Any]], by: str, at: str) -> list[tuple[Pair, dict[str, Any]]]:
    """Tighten each pair not tightened yet (an agent repeating itself changes nothing), with its evidence."""
    new = []
    for p in pairs:
        key = pair_of(p)
        if key not in a.tightened:
            a.tightened[key] = {"reason": str(p.get("reason") or ""), "at": at, "by": by,
                                "evidence": p.get("evidence") or {}}
            new.append((key, a.tightened[key]))
    return new


def change(services: Services, body: dict[str, Any], principal: Principal | None, actor: str | None = None,
           now: str | None = None) -> Autonomy:
    """Apply a change (role-checked unless `actor` names an agent, e.g. the drift watchdog; an agent freezes with
    `freezeAdd`, added to the record as read at the write). Tightening or relaxing a pair is also written as a
    `policyEvent` telemetry record with its evidence."""
    if actor is None:
        if principal is None:
            raise Unauthorized("sign in (Easy Auth) to change autonomy")
        role = services.policy.autonomyAdminRole
        if not principal.holds(role):
            raise Forbidden(f"changing autonomy needs the role {role}")
    body = _checked(body, {a for a, _ in services.catalog.versions}, actor is not None)
    for _ in range(5):
        read = current(services, fresh=True)
        a = Autonomy.from_dict(read.to_dict(), read.etag)  # a copy: the cached one stays as saved if this fails
        by, at = actor or (principal.id if principal else ""), now or services.clock.now().isoformat()
        relaxed = _relaxed(a, body["relax"], at) if "relax" in body else []
        tightened = _tightened(a, body["tighten"], by, at) if "tighten" in body else []
        added = sorted(set(body.get("freezeAdd") or ()) - set(a.frozenActions))
        if body.keys() & {"tighten", "freezeAdd"} and body.keys() <= {"tighten", "freezeAdd", "reason"} \
                and not tightened and not added:
            return a  # an agent repeating itself (tightened or frozen already): nothing to record
        if "mode" in body:
            a.mode = body["mode"]
        for action, mode in (body.get("actions") or {}).items():
            if mode is None:
                a.actions.pop(action, None)
            else:
                a.actions[action] = mode
        if "freeze" in body:
            a.frozen = body["freeze"]
            if not body["freeze"] and "freezeActions" not in body:
                a.frozenActions = []  # unfreeze means everything
        if "freezeActions" in body:
            a.frozenActions = sorted(set(body["freezeActions"]))
        if "freezeAdd" in body:  # onto this read, so a person's freeze or unfreeze since the agent's read stands
            a.frozenActions = sorted({*a.frozenActions, *body["freezeAdd"]})
        a.reason, a.changedBy, a.changedAt = body["reason"].strip(), by, at
        try:
            a.etag = services.coordination.save_autonomy(a.to_dict(), a.etag)
        except ConcurrencyConflict:
            continue
        _cache.put(services.coordination, a)
        log.warning("autonomy changed by %s: %s", a.changedBy, a.to_dict())
        for kind, pairs in (("tighten", tightened), ("relax", relaxed)):
            for pair, entry in pairs:  # a relaxation names the evidence of the tightening it lifted
                policy_events.record(
                    services, kind, by, entry["reason"] if kind == "tighten" else a.reason, at,
                    **dict(zip(PAIR_FIELDS, pair, strict=True)), evidence=entry["evidence"],
                    **({"tightenedAt": entry["at"], "tightenedBy": entry["by"]} if kind == "relax" else {}))
        return a
    raise Conflict("autonomy is being changed by others; try again")
