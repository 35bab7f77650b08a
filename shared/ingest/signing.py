"""Signed Celonis events (`POST /api/findings/celonis` when CELONIS_SIGNING_SECRET is set; README "Signed Celonis
events"). Pure: the route passes the raw body and the headers' values, before anything is parsed.

What Celonis documents, and what is checked here:
- Orchestration Engine events (docs.celonis.com/en/event-authentication.html, /en/cloud-events.html): CloudEvents in
  HTTP binary mode with `x-emporix-hmac` = Base64(HMAC-SHA256(secret, raw body)). Only the body is signed.
- Event-subscription callbacks (developer.celonis.com, Event Subscription API): no signature header is documented;
  the outbound webhook spec names only Bearer and `AppKey` auth, and a subscription's `callbackInfo.headers` are
  sent as given. So a subscription carries the secret itself in a custom callback header, SECRET_HEADER (this
  app's name, not Celonis's), compared in constant time. A body signed as above is accepted on any event too.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ..domain.errors import FieldError, InvalidInput, Unauthorized, pointer

SIGNATURE_HEADER = "x-emporix-hmac"
SECRET_HEADER = "x-closedloop-secret"
# An event time further than this from the app's clock is a replay (the 5 minutes; Stripe and Slack use
# the same window for their signed webhooks).
WINDOW = timedelta(minutes=5)

_REFUSED = "The request must carry a valid Celonis signature; nothing was stored."


def sign(secret: str, body: bytes) -> str:
    """The `x-emporix-hmac` value of `body`: Base64 of its HMAC-SHA256 under `secret` (what Celonis computes)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode("ascii")


# What a request proved (verify): the secret itself vouches for all of it; the body's HMAC for the body alone, so
# then nothing outside it (ce-* headers, the query) may say what the finding is (README "Signed Celonis events").
SECRET_PRESENTED = SECRET_HEADER
BODY_SIGNED = SIGNATURE_HEADER
NOT_SIGNED = "not signed (x-emporix-hmac covers only the body)"


def verify(secret: str, body: bytes, signature: str | None, presented: str | None) -> str:
    """SECRET_PRESENTED when `presented` is the secret itself, else BODY_SIGNED when `signature` is the body's
    HMAC under `secret`, else Unauthorized.

    Both compared in constant time; the refusal says neither which header failed nor how."""
    if presented and hmac.compare_digest(presented.strip().encode(), secret.encode()):
        return SECRET_PRESENTED
    if signature and hmac.compare_digest(signature.strip().encode(), sign(secret, body).encode()):
        return BODY_SIGNED
    raise Unauthorized(_REFUSED, [FieldError(f"header:{SIGNATURE_HEADER}", "missing or wrong")])


def not_signed(name: str) -> str:
    """Why a field the body leaves out may not come from a header or the query of a body-signed request."""
    return f"{NOT_SIGNED}: send {name} in the body"


def stale(at: datetime, now: datetime, window: timedelta = WINDOW) -> bool:
    """Is `at` further than `window` from `now`, either way (a clock ahead of ours is no excuse)?"""
    return abs(now - at) > window


def replayed(where: str) -> Unauthorized:
    """The refusal of an event whose time (at `where`: `header:ce-time`, `/time`, `/creationDate`) is stale."""
    minutes = int(WINDOW.total_seconds() // 60)
    return Unauthorized(f"The event's time is more than {minutes} minutes from the server's clock: refused as a "
                        "replay; nothing was stored.", [FieldError(where, f"outside ±{minutes} minutes of now")])


# What the signed Celonis route writes and the unsigned generic route must not (README "Signed Celonis events"):
# its source, and the eventId namespaces it mints: subscription events (celonis.py), its CloudEvents (cloudevents.py
# with celonis.CE_NAMESPACE) and Orchestration Engine events proven by their body's HMAC (`oe:`). Dedupe is by eventId
# per case: an unsigned finding holding a genuine event's id would turn that event into a "duplicate".
SOURCE = "celonis"
NAMESPACES = ("celonis:", "celonis-ce:", "celonis-ceh:", "oe:")
RESERVED_SOURCE = ("the signed Celonis route's source: send it to POST /api/findings/celonis, signed, or name "
                   "another source")
RESERVED_ID = f"starts with {', '.join(NAMESPACES)}: eventIds the signed Celonis route gives; choose another"


def claims(findings: Sequence[Any]) -> list[tuple[int, str, str]]:
    """(index, field, why) of each finding that speaks for the signed Celonis route: its source or its eventIds."""
    found = []
    for k, f in enumerate(findings):
        if f.source.strip().lower() == SOURCE:
            found.append((k, "source", RESERVED_SOURCE))
        if f.eventId.lstrip().startswith(NAMESPACES):
            found.append((k, "eventId", RESERVED_ID))
    return found


def refused_claims(errors: list[FieldError]) -> InvalidInput:
    return InvalidInput("Celonis events are signed here: the generic route takes nothing in their name; nothing was "
                        "stored.", errors)


def refuse_claims(findings: Sequence[Any], many: bool) -> None:
    """422 naming each field of the generic route's findings (a list when `many`) that claims the signed route's
    source or eventIds; called while CELONIS_SIGNING_SECRET is set."""
    errors = [FieldError(pointer(*((k,) if many else ()), name), why) for k, name, why in claims(findings)]
    if errors:
        raise refused_claims(errors)
