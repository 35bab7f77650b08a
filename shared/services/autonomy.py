"""Reading and changing autonomy; the planner asks it before acting on its own."""
from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from ..domain.autonomy import MODES, Autonomy
from ..domain.errors import Conflict, FieldError, Forbidden, InvalidInput, Unauthorized
from ..domain.identity import Principal
from ..ports import ConcurrencyConflict, Services

log = logging.getLogger(__name__)
_CACHE_SECONDS = 2.0  # a freeze reaches every instance's planner within this long
# Keyed by the store object itself (weakly): a recycled id() must never hand one store another's modes.
_cache: weakref.WeakKeyDictionary[Any, tuple[float, Autonomy]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def current(services: Services, fresh: bool = False) -> Autonomy:
    """The autonomy in force (read at most every couple of seconds per store)."""
    # Every message of a batch decides against the same coordination store, so one read serves the batch.
    key = services.coordination
    with _lock:
        hit = _cache.get(key)
    if hit and not fresh and time.monotonic() - hit[0] < _CACHE_SECONDS:
        return hit[1]
    doc, etag = services.coordination.autonomy()
    found = Autonomy.from_dict(doc, etag) if doc else Autonomy()
    with _lock:
        _cache[key] = (time.monotonic(), found)
    return found


def _checked(body: dict[str, Any], catalog_ids: set[str]) -> dict[str, Any]:
    errors = []
    known = {"mode", "actions", "freeze", "freezeActions", "reason"}
    errors += [FieldError(f"/{k}", "not a setting (mode, actions, freeze, freezeActions, reason)")
               for k in body if k not in known]
    if "mode" in body and body["mode"] not in MODES:
        errors.append(FieldError("/mode", f"one of {', '.join(MODES)}"))
    for action, mode in (body.get("actions") or {}).items():
        if action not in catalog_ids:
            errors.append(FieldError(f"/actions/{action}", "not an action in the catalog"))
        elif mode not in (*MODES, None):
            errors.append(FieldError(f"/actions/{action}", f"one of {', '.join(MODES)}, or null to follow mode"))
    if "freeze" in body and not isinstance(body["freeze"], bool):
        errors.append(FieldError("/freeze", "true or false"))
    if "freezeActions" in body and not (isinstance(body["freezeActions"], list)
                                        and all(a in catalog_ids for a in body["freezeActions"])):
        errors.append(FieldError("/freezeActions", "a list of catalog action ids"))
    if not isinstance(body.get("reason"), str) or not body["reason"].strip():
        errors.append(FieldError("/reason", "say why (it is kept with the change)"))
    if errors:
        raise InvalidInput("The autonomy change is invalid; nothing changed.", errors)
    return body


def change(services: Services, body: dict[str, Any], principal: Principal | None, actor: str | None = None,
           now: str | None = None) -> Autonomy:
    """Apply a change (role-checked unless `actor` names an agent, e.g. the drift watchdog)."""
    if actor is None:
        if principal is None:
            raise Unauthorized("sign in (Easy Auth) to change autonomy")
        role = services.policy.autonomyAdminRole
        if not principal.holds(role):
            raise Forbidden(f"changing autonomy needs the role {role}")
    body = _checked(body, {a for a, _ in services.catalog.versions})
    for _ in range(5):
        a = current(services, fresh=True)
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
        a.reason, a.changedBy = body["reason"].strip(), actor or (principal.id if principal else "")
        a.changedAt = now or services.clock.now().isoformat()
        try:
            a.etag = services.coordination.save_autonomy(a.to_dict(), a.etag)
        except ConcurrencyConflict:
            continue
        with _lock:
            _cache[services.coordination] = (time.monotonic(), a)
        log.warning("autonomy changed by %s: %s", a.changedBy, a.to_dict())
        return a
    raise Conflict("autonomy is being changed by others; try again")
