"""The edge's rules, one place for the HTTP routes (shared/api/http.py) and the MCP tools (shared/api/mcp_tools.py):
the services accessor, the problem every refusal is, and when to believe an Easy Auth principal.

No azure.functions and nothing heavy: `import function_app` loads it at cold start (tests/test_function_app.py).
"""
from __future__ import annotations

import importlib
import logging
import sys
from typing import TYPE_CHECKING, Any

from ..domain.errors import Conflict, ProblemError, Unavailable

if TYPE_CHECKING:
    from .. import runtime
    from ..domain import identity
    from ..domain.identity import Principal
    from ..ports import Services
    from ..settings import Settings


class _Lazy:
    """A module imported on its first attribute read (the import system's lock makes that thread-safe)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name}>"


def lazy(name: str) -> Any:
    """The module `name`, imported when first used: a route module names its service modules once, at its top,
    and `import function_app` stays cheap (shared.ports alone takes ~270 ms to import, pydantic included)."""
    return _Lazy(name)


if not TYPE_CHECKING:
    runtime, identity = lazy("shared.runtime"), lazy("shared.domain.identity")


def services() -> Services:
    """The app's services from the composition root (shared/runtime.py), built on first use; 503 with Retry-After
    while a setting still holds an unresolved Key Vault reference (refuse_unresolved), checked before anything is
    built. Every route but health, every MCP tool and every trigger gets its services here."""
    refuse_unresolved(runtime.settings())
    return runtime.services()


# Nothing a caller sends fixes an unresolved reference: an operator grants access and restarts. Five minutes
# keeps a retrying sender (Celonis redelivers, a flow retries) from hammering meanwhile.
UNRESOLVED_RETRY_S = 300
_told: set[tuple[str, ...]] = set()
log = logging.getLogger("closedloop.edge")


def refuse_unresolved(settings: Settings) -> None:
    """Unavailable naming every setting that still holds a Key Vault reference's text, logged once a process; the
    same rule on the local host as in Azure (the local host never has references, so it never refuses)."""
    if not settings.unresolved:
        return
    if settings.unresolved not in _told:
        _told.add(settings.unresolved)
        log.error("refusing to act: %s", settings.unresolved_why)
    raise Unavailable(f"The app refuses to act: {settings.unresolved_why}.", UNRESOLVED_RETRY_S,
                      unresolved=list(settings.unresolved))


class ServerFault(ProblemError):
    status = 500
    title = "Internal server error"


def problem_body(exc: ProblemError, instance: str, cid: str) -> dict[str, Any]:
    """The RFC 9457 problem of a refusal: the problem+json body over HTTP, the `error` of an MCP tool's answer."""
    return {"type": f"https://closedloop.dev/problems/{exc.status}", "title": exc.title, "status": exc.status,
            "detail": exc.detail, "instance": instance, "correlationId": cid,
            "errors": [e.to_dict() for e in exc.errors], **exc.extra}


def refusal(exc: Exception, log: logging.Logger, what: str, cid: str) -> ProblemError:
    """The problem a failure answers, logged once: a ProblemError as itself, a write that lost a race as 409, a part
    that did not answer as 503 with Retry-After, anything else as a 500 that tells the caller only the correlation
    id."""
    extra = {"correlationId": cid}
    if isinstance(exc, ProblemError):
        log.info("%s → %d %s", what, exc.status, exc.detail, extra=extra)
        return exc
    if _lost_race(exc):
        log.info("%s → 409 concurrent change: %s", what, exc, extra=extra)
        return Conflict("The record was changed by someone else meanwhile; read it again, and send this again if "
                        "it still applies.")
    down = unavailable(exc)
    if down is not None:
        log.warning("%s → 503 %s", what, down.detail, extra=extra, exc_info=exc)
        return down
    log.error("%s failed", what, extra=extra, exc_info=exc)
    return ServerFault("The server failed; the request may be retried. Quote the correlation id.")


def _lost_race(exc: Exception) -> bool:
    """Whether the store refused a write because the record changed since it was read (ports.ConcurrencyConflict,
    looked up only when loaded: whatever raised it loaded it, and this file stays free of heavy imports)."""
    ports = sys.modules.get("shared.ports")
    return ports is not None and isinstance(exc, ports.ConcurrencyConflict)


def easy_auth_principal(header: str | None, settings: Any) -> Principal | None:
    """The principal of an X-MS-CLIENT-PRINCIPAL header, believed only where Easy Auth is on (App Service put it
    there) or on the local host: anywhere else a client could forge it, so it counts as none."""
    if header and (settings.easy_auth or settings.local):
        return identity.from_easy_auth(header)
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


def unavailable(exc: BaseException | None) -> Unavailable | None:
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
