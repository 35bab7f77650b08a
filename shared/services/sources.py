"""Where findings come from, as the operator watches it: per Celonis subscription the highest offset, the last
event's time and the offsets that never arrived (`GET /api/sources`; README "Signed Celonis events").

Offsets are recorded after the findings were ingested, never before: a refused batch advances nothing, so its
redelivery is not taken for a replay. Each subscription is one state record written under its ETag, so two
requests at once never lower it; the skips one request finds are one incident per subscription naming what to
replay, recorded before anyone is told.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..domain import offsets
from ..domain.errors import Unavailable
from ..domain.offsets import Delivery
from ..ingest import signing
from ..logs import bind
from ..ports import Incident, Services
from . import notices, versioned

log = logging.getLogger(__name__)

PREFIX = "offsets."
# Tries of one subscription's read-modify-write before the request is a 503 (Celonis then redelivers, and the
# findings it carries are duplicates). Celonis sends a subscription's events one after another; eight senders
# hammering one subscription on Azurite lost at most 24 races in a row, 3 on average (test_offsets_store.py).
_ATTEMPTS = 50
Spans = list[tuple[int, int]]  # offset ranges (first, last)


def _name(source: str, subscription: str) -> str:
    # Hashed: a subscription id is the sender's text, and a state name is a table key (no '/', '#', '?').
    return PREFIX + hashlib.sha256(f"{source}\n{subscription}".encode()).hexdigest()[:32]


def refuse_replays(services: Services, times: Sequence[tuple[datetime, str]], deliveries: Sequence[Delivery],
                   now: datetime) -> None:
    """401 when a signed request's event time is outside the window (signing.WINDOW) of `now`: a replay.

    A subscription event whose offset the app has not recorded yet is late, not replayed: Celonis redelivers
    what failed (after an outage, or a replay an operator starts for missing offsets) with its first
    creationDate, and refusing those would leave the subscription failed and the events lost."""
    for at, where in times:
        if signing.stale(at, now):
            raise signing.replayed(where)
    records: dict[str, dict[str, Any] | None] = {}
    for d in deliveries:
        if not signing.stale(d.at, now):
            continue
        if d.offset is None:
            raise signing.replayed(d.where)
        name = _name("celonis", d.subscription)
        if name not in records:
            records[name] = services.coordination.state_versioned(name)[0]
        if not offsets.is_new(records[name], d.offset):
            raise signing.replayed(d.where)


def record(services: Services, source: str, deliveries: Sequence[Delivery], correlation_id: str) -> None:
    """Advance each subscription's record by the deliveries just ingested; per subscription one incident naming
    the offset ranges this request found missing.

    Incidents are recorded before anyone is told, and a notifier that fails is logged, never raised: the findings
    and offsets are stored by then, so a 500 would only make Celonis redeliver duplicates, and the incidents after
    the failing one were lost."""
    by_subscription: dict[str, list[Delivery]] = {}
    for d in deliveries:
        by_subscription.setdefault(d.subscription, []).append(d)
    now = services.clock.now()
    found: list[Incident] = []

    def incident(key: str, kind: str, text: str) -> None:
        log.warning("%s", text, extra={"correlationId": correlation_id})
        found.append(Incident(key, now, kind, "ingest", text, correlationId=correlation_id))

    try:
        for subscription, mine in by_subscription.items():
            name = _name(source, subscription)
            missing, resets = _advance(services, name, source, subscription, mine, now)
            if resets:
                incident(f"{name}-reset-{resets[0][1]}", "offsets_reset",
                         f"offsets of subscription {subscription} ({source}) {offsets.restarts(resets)}: its record "
                         "starts over at each; replay from Celonis what it missed")
            if missing:
                incident(f"{name}-{missing[0][0]}-{missing[-1][1]}", "lost_events",
                         f"{offsets.spans(missing)} missing for subscription {subscription} ({source}); replay from "
                         "Celonis")
    finally:  # a later subscription's 503 loses none of the gaps the earlier ones saved
        _raise(services, found, correlation_id)


def _advance(services: Services, name: str, source: str, subscription: str, mine: Sequence[Delivery],
             now: datetime) -> tuple[Spans, Spans]:
    """One subscription's read-modify-write under its ETag; the ranges it found missing, and its restarts."""
    def change(doc: dict[str, Any] | None) -> tuple[dict[str, Any], tuple[Spans, Spans]]:
        new, missing, resets = offsets.advance(doc, source, subscription, mine, now)
        return new, (missing, resets)

    return versioned.update(services, name, change, lambda: Unavailable(
        "Too many requests updated this subscription's offsets at once; the findings are stored, send the events "
        "again."), _ATTEMPTS)


def _raise(services: Services, found: Sequence[Incident], correlation_id: str) -> None:
    """Record every incident, then tell: a notifier failing is logged (as services/ingest.py `offer` does)."""
    notes = []
    for incident in found:
        kept, note = notices.incident_of(services, incident)
        services.reference.record_incident(kept)
        notes.append(note)
    notifier = services.notifier
    if notifier is None:
        return
    for note in notes:
        try:
            notifier.notify(note.kind, note.opportunity_id, note.subject, note.details)
        except Exception:  # recorded already (GET /api/incidents); the card is what is lost
            bind(log, correlation_id).exception("offsets escalation %s not sent", note.opportunity_id)


def view(services: Services, top: int = 100) -> dict[str, Any]:
    """`GET /api/sources`: the `top` subscriptions' records, the most recently heard from first."""
    items = []
    for doc in services.coordination.states(PREFIX).values():
        items.append({"source": doc.get("source"), "subscription": doc.get("subscription"),
                      "highestOffset": doc.get("highestOffset"), "lastEventAt": doc.get("lastEventAt"),
                      "lastReceivedAt": doc.get("lastReceivedAt"), "events": doc.get("events", 0),
                      "redelivered": doc.get("redelivered", 0), "gaps": doc.get("gaps", 0),
                      "resets": doc.get("resets", 0),
                      "missing": [{"from": lo, "to": hi} for lo, hi in doc.get("missing") or ()]})
    items.sort(key=lambda i: i["lastReceivedAt"] or "", reverse=True)
    return {"items": items[:top]}
