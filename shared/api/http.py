"""HTTP plumbing shared by the route blueprints: problem+json, body and query checks, API key, correlation id.
The rules HTTP shares with the MCP tools (problems, principals, the services) live in shared/api/edge.py.

Imports nothing heavy: it is loaded when `function_app` is imported, at cold start. No `from __future__ import
annotations`: the Functions worker reads the wrapper's annotations as types, not strings.
"""
import hmac
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from ..domain import keyvault
from ..domain.errors import (
    FieldError,
    Forbidden,
    InvalidInput,
    PayloadTooLarge,
    ProblemError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from .edge import UNRESOLVED_RETRY_S, easy_auth_principal, lazy, problem_body, refusal

if TYPE_CHECKING:
    from ..domain.identity import Principal
    from ..ingest import generic
else:
    generic = lazy("shared.ingest.generic")

log = logging.getLogger("closedloop.http")
D = TypeVar("D", int, None)
PROBLEM = "application/problem+json"
FORM = "application/x-www-form-urlencoded"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CORRELATION = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def correlation_id(req: func.HttpRequest) -> str:
    """The caller's x-correlation-id when it is a sane token, else a new one."""
    given = req.headers.get("x-correlation-id", "")
    return given if _CORRELATION.match(given) else str(uuid.uuid4())


def json_response(body: Any, status: int = 200, cid: str | None = None,
                  headers: dict[str, str] | None = None) -> func.HttpResponse:
    h = {"x-correlation-id": cid} if cid else {}
    h.update(headers or {})
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json",
                             headers=h)


def problem(exc: ProblemError, instance: str, cid: str) -> func.HttpResponse:
    """The refusal as application/problem+json, with the headers the problem carries (Retry-After)."""
    return func.HttpResponse(json.dumps(problem_body(exc, instance, cid), default=str), status_code=exc.status,
                             mimetype=PROBLEM,
                             headers={"x-correlation-id": cid, **exc.headers})


def media_type(req: func.HttpRequest) -> str:
    return req.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def require_media_type(req: func.HttpRequest, allowed: Iterable[str]) -> str:
    """The request's media type if allowed (any `+json` counts as JSON), else 415."""
    allowed = tuple(allowed)
    kind = media_type(req)
    if kind in allowed or (kind.endswith("+json") and "application/json" in allowed):
        return kind
    raise UnsupportedMediaType(f"Send the body as {' or '.join(allowed)}; got {kind or 'no Content-Type'}.",
                               [FieldError("header:Content-Type", f"expected {' or '.join(allowed)}")])


def read_body(req: func.HttpRequest, limit: int) -> bytes:
    """The body, or 413 when it is over `limit` bytes (checked on Content-Length before reading)."""
    declared = req.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is {declared} bytes; the limit is {limit}.",
                              [FieldError("header:Content-Length", f"at most {limit} bytes")])
    body = req.get_body() or b""
    if len(body) > limit:
        raise PayloadTooLarge(f"The body is {len(body)} bytes; the limit is {limit}.",
                              [FieldError("", f"at most {limit} bytes")])
    return body


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object: 400 when it is not JSON (ingest.generic.decode_json's limits), 422 when it is
    JSON but not an object."""
    doc = generic.decode_json(body)
    if not isinstance(doc, dict):
        raise InvalidInput("Send a JSON object.", [FieldError("", "expected an object")])
    return doc


def form_or_json(req: func.HttpRequest, body: bytes) -> tuple[dict[str, Any], bool]:
    """The body as fields (a form post from one of the app's pages: the last value of each name) or as a JSON
    object, and whether it was a form; any other media type is a 415."""
    if require_media_type(req, ("application/json", FORM)) == FORM:
        return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}, True
    return json_object(body), False


def _origin(url: str) -> str | None:
    """scheme://host[:port] of a URL or an Origin header, lower case, default port dropped; None if it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    shown = f":{port}" if port is not None and port != _DEFAULT_PORTS.get(scheme) else ""
    return f"{scheme}://{parts.hostname.lower()}{shown}"


def require_same_origin_form(req: func.HttpRequest, settings: Any) -> None:
    """A form post must come from one of the app's own pages (its confirmation pages): 403 otherwise, before
    anything is read or recorded. A card's link, and so its token, is seen by everyone in the channel; without
    this a page elsewhere could make a signed-in approver's browser post an answer with their Easy Auth cookie.
    JSON is not checked: a browser sends it across sites only after a CORS preflight, which this app never grants.

    Own origin: PUBLIC_BASE_URL's (where the cards' links point); on the local host the request's own too. The
    confirmation pages say Referrer-Policy: same-origin, so a browser sends their form posts with the real Origin;
    a post with `Origin: null` (a privacy setting, a sandboxed page) or none needs `Sec-Fetch-Site: same-origin`."""
    if media_type(req) != FORM:
        return
    own = {o for o in (_origin(settings.public_base_url or ""),) if o}
    if settings.local and req.headers.get("host"):
        own.add(_origin(f"{urlsplit(req.url).scheme or 'http'}://{req.headers['host']}") or "")
    sent = (req.headers.get("origin") or "").strip()
    if sent and sent != "null":
        if _origin(sent) in own:
            return
        why = f"Origin {sent[:100]} is not this app's"
    elif req.headers.get("sec-fetch-site", "").strip().lower() == "same-origin":
        return
    else:
        why = "neither an Origin of this app's nor Sec-Fetch-Site: same-origin"
    raise Forbidden("A form is answered only from this app's own page (open the card's link); nothing was "
                    "recorded.", [FieldError("header:Origin", why)])


_told: set[str] = set()


def require_resolved(setting: str, value: str | None) -> None:
    """503 with Retry-After naming `setting` when its value is an unresolved Key Vault reference (fail closed),
    logged once per setting and process. The whole app refuses first (edge.services, Settings.unresolved); this
    guards a secret where it is used, whatever built the settings."""
    if not keyvault.is_reference(value):
        return
    if setting not in _told:
        _told.add(setting)
        log.error("%s is an unresolved Key Vault reference: every request it guards is refused with 503 until it "
                  "resolves (grant the app's identity access to the secret, then restart)", setting)
    raise Unavailable(f"{setting} is a Key Vault reference the host could not resolve; nothing is accepted until "
                      "it is.", UNRESOLVED_RETRY_S, setting=setting)


def check_api_key(req: func.HttpRequest, secret: str | None, setting: str = "INGEST_API_KEY") -> None:
    """When a key is configured, `x-api-key` or `AppKey` (what Celonis sends) must match it; a key that is an
    unresolved Key Vault reference is a 503 (require_resolved)."""
    if not secret:
        return
    require_resolved(setting, secret)
    given = req.headers.get("x-api-key") or req.headers.get("appkey") or ""
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise Unauthorized("A valid API key is required in the x-api-key (or AppKey) header.",
                           [FieldError("header:x-api-key", "missing or wrong")])


def principal(req: func.HttpRequest, settings: Any) -> "Principal | None":
    """The request's Easy Auth principal, under the edge's one rule for believing it (edge.easy_auth_principal)."""
    return easy_auth_principal(req.headers.get("x-ms-client-principal"), settings)


def query_int(req: func.HttpRequest, name: str, default: D, lowest: int, highest: int) -> int | D:
    """A whole-number query parameter within [lowest, highest], else 422 naming it (at most 9 digits: int() of
    thousands of digits raises ValueError, which was a 500)."""
    raw = req.params.get(name)
    if raw is None:
        return default
    if not raw.isdecimal() or len(raw) > 9 or not lowest <= int(raw) <= highest:
        raise InvalidInput(f"`{name}` must be a whole number from {lowest} to {highest}.",
                           [FieldError(f"?{name}", f"an integer from {lowest} to {highest}")])
    return int(raw)


def route_version(req: func.HttpRequest) -> int:
    """The `{version}` in the route: a whole number of at most 9 digits, else 422."""
    raw = req.route_params.get("version", "")
    if not raw.isdecimal() or len(raw) > 9:
        raise InvalidInput("The version is a whole number.", [FieldError("/version", "an integer")])
    return int(raw)


Route = Callable[[func.HttpRequest, str], func.HttpResponse]


def endpoint(fn: Route) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """Wrap a route: correlation id in, every failure out as the problem edge.refusal maps it to (problem+json,
    503 with Retry-After, or a logged 500)."""

    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        cid = correlation_id(req)
        path = "/" + req.url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
        try:
            return fn(req, cid)
        except Exception as exc:
            return problem(refusal(exc, log, f"{req.method} {path}", cid), path, cid)

    # Not functools.wraps: the Functions worker reads the signature, and `__wrapped__` would expose `cid`.
    wrapper.__name__, wrapper.__qualname__, wrapper.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    return wrapper
