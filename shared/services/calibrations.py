"""The calibration factors in force: written by the learning sweep (services/learning.py), read by scoring.

One coordination record, `calibration`: `{"items": [Calibration.to_dict(), ...], "at": iso}`. Read at most every
30 seconds per store, as autonomy is: ingest scores thousands of findings a second and must not pay a read each.
"""
from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from ..domain.opportunity import Opportunity, rescore
from ..domain.scoring import NO_CALIBRATION, Calibrations
from ..ports import Services

STATE = "calibration"
_CACHE_SECONDS = 30.0  # a new calibration reaches every instance's scoring within this long
_cache: weakref.WeakKeyDictionary[Any, tuple[float, Calibrations]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def table(doc: dict[str, Any] | None, services: Services) -> Calibrations:
    """The lookup table of a stored calibration record."""
    items = (doc or {}).get("items") or []
    if not items:
        return NO_CALIBRATION
    by: dict[tuple[str, str, str, int], dict[str, tuple[float, str]]] = {}
    for c in items:
        key = (c["processArea"], c["deviationPattern"], c["actionId"], int(c["actionVersion"]))
        by.setdefault(key, {})[c["metric"]] = (float(c["factor"]), str(c["text"]))
    return Calibrations(by, services.policy.measurement.primary_for)


def current(services: Services, fresh: bool = False) -> Calibrations:
    """The calibrations in force (read at most every 30 seconds per coordination store)."""
    key = services.coordination
    with _lock:
        hit = _cache.get(key)
    if hit and not fresh and time.monotonic() - hit[0] < _CACHE_SECONDS:
        return hit[1]
    found = table(services.coordination.state(STATE), services)
    with _lock:
        _cache[key] = (time.monotonic(), found)
    return found


def forget(services: Services) -> None:
    """Drop the cached table (after the sweep wrote a new record, so this instance uses it at once)."""
    with _lock:
        _cache.pop(services.coordination, None)


def rescored(services: Services, opp: Opportunity) -> Opportunity:
    """The opportunity scored afresh under the catalog, policy and calibrations in force: every rescore goes here."""
    return rescore(opp, services.catalog, services.policy.scoring, current(services))
