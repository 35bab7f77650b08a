"""HTTP plumbing shared by the route blueprints: problem+json, body checks, API key, correlation id.

Imports nothing heavy: it is loaded when `function_app` is imported, at cold start.
"""
import hmac
import json
import logging
import re
import sys
import uuid
from typing import Any, Callable, Iterable, Optional

import azure.functions as func

from ..domain.errors import (FieldError, PayloadTooLarge, ProblemError, Unauthorized, Unavailable,
                             UnsupportedMediaType)

log = logging.getLogger("closedloop.http")
PROBLEM = "application/problem+json"
_CORRELATION = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def correlation_id(req: func.HttpRequest) -> str:
    """The caller's x-correlation-id when it is a sane token, else a new one."""
    given = req.headers.get("x-correlation-id", "")
    return given if _CORRELATION.match(given) else str(uuid.uuid4())


def json_response(body: Any, status: int = 200, cid: Optional[str] = None,
                  headers: Optional[dict[str, str]] = None) -> func.HttpResponse:
    h = {"x-correlation-id": cid} if cid else {}
    h.update(headers or {})
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json",
                             headers=h)


def problem(exc: ProblemError, instance: str, cid: str) -> func.HttpResponse:
    body = {"type": f"https://closedloop.dev/problems/{exc.status}", "title": exc.title, "status": exc.status,
            "detail": exc.detail, "instance": instance, "correlationId": cid,
            "errors": [e.to_dict() for e in exc.errors], **exc.extra}
    return func.HttpResponse(json.dumps(body, default=str), status_code=exc.status, mimetype=PROBLEM,
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


def check_api_key(req: func.HttpRequest, secret: Optional[str]) -> None:
    """When a key is configured, `x-api-key` or `AppKey` (what Celonis sends) must match it."""
    if not secret:
        return
    given = req.headers.get("x-api-key") or req.headers.get("appkey") or ""
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise Unauthorized("A valid API key is required in the x-api-key (or AppKey) header.",
                           [FieldError("header:x-api-key", "missing or wrong")])


def principal(req: func.HttpRequest, settings: Any) -> Optional[Any]:
    """The Easy Auth principal, trusted only where Easy Auth is on (or on the local host): elsewhere a
    client could forge the header. None when there is none."""
    header = req.headers.get("x-ms-client-principal")
    if header and (settings.easy_auth or settings.local):
        from ..domain.identity import from_easy_auth
        return from_easy_auth(header)
    return None


# Exceptions meaning a part the app needs did not answer (module, class names): checked only when the module is
# already loaded, so this file imports none of them (function_app's import stays cheap).
_UNANSWERED = (("azure.core.exceptions", ("ServiceRequestError", "ServiceResponseError")),
               ("requests.exceptions", ("ConnectionError", "Timeout")),
               ("urllib3.exceptions", ("TimeoutError", "NewConnectionError", "ProtocolError")),
               ("azure.servicebus.exceptions", ("ServiceBusConnectionError", "OperationTimeoutError",
                                                "ServiceBusServerBusyError", "ServiceBusCommunicationError")))
# Exceptions carrying the store's HTTP status (module, class, attribute): a 5xx or 429 after retries is an outage.
_STATUSED = (("azure.core.exceptions", "HttpResponseError", "status_code"),
             ("shared.adapters.tables.batch", "TransactionFailed", "status"),
             ("shared.adapters.dataverse.client", "DataverseError", "status"))


def unavailable(exc: BaseException) -> Optional[Unavailable]:
    """The 503 an unexpected exception stands for when it (or what caused it) says a part the app needs did not
    answer: a refused connection, a timeout, a 5xx or 429 after retries. None for a real fault."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, Unavailable):
            return exc
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return Unavailable(f"A service the app needs did not answer ({type(exc).__name__}); try again shortly.")
        for module, names in _UNANSWERED:
            loaded = sys.modules.get(module)
            if loaded is not None and isinstance(exc, tuple(getattr(loaded, n) for n in names if hasattr(loaded, n))):
                return Unavailable(f"A service the app needs did not answer ({type(exc).__name__}); "
                                   "try again shortly.")
        for module, name, attribute in _STATUSED:
            cls = getattr(sys.modules.get(module), name, None)
            status = getattr(exc, attribute, None) if cls is not None and isinstance(exc, cls) else None
            if isinstance(status, int) and (status >= 500 or status == 429):
                return Unavailable(f"The store answered {status} after retries; try again shortly.")
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def endpoint(fn: Callable[[func.HttpRequest, str], func.HttpResponse]) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """Wrap a route: correlation id in, ProblemError → problem+json, a part that did not answer → 503 with
    Retry-After, a real fault → logged 500."""

    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        cid = correlation_id(req)
        path = "/" + req.url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
        try:
            return fn(req, cid)
        except ProblemError as exc:
            log.info("%s %s → %d %s", req.method, path, exc.status, exc.detail, extra={"correlationId": cid})
            return problem(exc, path, cid)
        except Exception as exc:
            down = unavailable(exc)
            if down is not None:
                log.warning("%s %s → 503 %s", req.method, path, down.detail, extra={"correlationId": cid},
                            exc_info=True)
                return problem(down, path, cid)
            log.exception("%s %s failed", req.method, path, extra={"correlationId": cid})
            err = ProblemError("The server failed; the request may be retried. Quote the correlation id.")
            err.status, err.title = 500, "Internal server error"
            return problem(err, path, cid)

    # Not functools.wraps: the Functions worker reads the signature, and `__wrapped__` would expose `cid`.
    wrapper.__name__, wrapper.__qualname__, wrapper.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    return wrapper
