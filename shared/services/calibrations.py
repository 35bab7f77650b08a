"""The calibration factors in force: written by the learning sweep (services/learning.py), read by scoring.

One coordination record, `calibration`: `{"items": [Calibration.to_dict(), ...], "at": iso}`. Read at most every
30 seconds per store, as autonomy is: ingest scores thousands of findings a second and must not pay a read each.
"""
from __future__ import annotations

from typing import Any

from ..domain.opportunity import Opportunity, rescore
from ..domain.scoring import NO_CALIBRATION, Calibrations
from ..ports import Services
from .per_store import PerStore

STATE = "calibration"
# A new calibration reaches every instance's scoring within 30 seconds.
_cache: PerStore[Calibrations] = PerStore(30.0)


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
    return _cache.get(services.coordination, lambda: table(services.coordination.state(STATE), services), fresh)


def forget(services: Services) -> None:
    """Drop the cached table (after the sweep wrote a new record, so this instance uses it at once)."""
    _cache.forget(services.coordination)


def rescored(services: Services, opp: Opportunity) -> Opportunity:
    """The opportunity scored afresh under the catalog, policy and calibrations in force: every rescore goes here."""
    return rescore(opp, services.catalog, services.policy.scoring, current(services))
