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
from datetime import datetime, timedelta

from ..domain.errors import FieldError, Unauthorized

SIGNATURE_HEADER = "x-emporix-hmac"
SECRET_HEADER = "x-closedloop-secret"
# An event time further than this from the app's clock is a replay (the 5 minutes; Stripe and Slack use
# the same window for their signed webhooks).
WINDOW = timedelta(minutes=5)

_REFUSED = "The request must carry a valid Celonis signature; nothing was stored."


def sign(secret: str, body: bytes) -> str:
    """The `x-emporix-hmac` value of `body`: Base64 of its HMAC-SHA256 under `secret` (what Celonis computes)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode("ascii")


def verify(secret: str, body: bytes, signature: str | None, presented: str | None) -> None:
    """Unauthorized unless `signature` is the body's HMAC under `secret` or `presented` is the secret itself.

    Both compared in constant time; the refusal says neither which header failed nor how."""
    ok = False
    if signature:
        ok = hmac.compare_digest(signature.strip().encode(), sign(secret, body).encode())
    if presented and not ok:
        ok = hmac.compare_digest(presented.strip().encode(), secret.encode())
    if not ok:
        raise Unauthorized(_REFUSED, [FieldError(f"header:{SIGNATURE_HEADER}", "missing or wrong")])


def stale(at: datetime, now: datetime, window: timedelta = WINDOW) -> bool:
    """Is `at` further than `window` from `now`, either way (a clock ahead of ours is no excuse)?"""
    return abs(now - at) > window


def replayed(where: str) -> Unauthorized:
    """The refusal of an event whose time (at `where`: `header:ce-time`, `/time`, `/creationDate`) is stale."""
    minutes = int(WINDOW.total_seconds() // 60)
    return Unauthorized(f"The event's time is more than {minutes} minutes from the server's clock: refused as a "
                        "replay; nothing was stored.", [FieldError(where, f"outside ±{minutes} minutes of now")])
