"""Backlog routes: the ranked list, one opportunity, curation, and the grouped weekly view."""
import logging
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as NoAnswer
from typing import TYPE_CHECKING, Any

import azure.functions as func

from ..domain.errors import FieldError, InvalidInput
from .edge import UNRESOLVED_RETRY_S, lazy, services
from .http import endpoint, json_object, json_response, principal, query_int, read_body, require_media_type

if TYPE_CHECKING:
    from .. import runtime
    from .. import settings as app_settings
    from ..ports import Filter
    from ..services import backlog, commitments, sweep, views
else:
    backlog, sweep = lazy("shared.services.backlog"), lazy("shared.services.sweep")
    commitments = lazy("shared.services.commitments")
    views, app_settings = lazy("shared.services.views"), lazy("shared.settings")
    runtime = lazy("shared.runtime")

bp = func.Blueprint()
log = logging.getLogger("closedloop.http")


def _filter(req: func.HttpRequest, state: str = "all") -> "Filter":
    """The query's filter; `state` is the default of ?state (open, finished, all)."""
    return backlog.where(req.params.get("status"), req.params.get("processArea"), req.params.get("deviationPattern"),
                         state=req.params.get("state", state))


@bp.route(route="opportunities", methods=["GET"])
@endpoint
def list_opportunities(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """The ranked backlog, highest priority first; filters status, state (open, finished, all), processArea,
    deviationPattern."""
    page = backlog.list_opportunities(services(), _filter(req), query_int(req, "top", 50, 1, backlog.MAX_TOP),
                                      req.params.get("continuationToken") or None)
    return json_response(page, 200, cid)


@bp.route(route="opportunities/{id}", methods=["GET"])
@endpoint
def get_opportunity(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """One opportunity with its scores, rationale, plan, status history, executions and audit trail."""
    view = backlog.detail(services(), req.route_params.get("id", ""))
    return json_response(view, 200, cid, {"ETag": view["etag"] or ""})


_PATCHABLE = {"owner": 200, "notes": 4000, "dismissReason": 500}
_FIELDS = "owner, notes, dismiss, dismissReason, effortHours, committedFor"
MAX_EFFORT = 10_000


def _changes(body: bytes) -> dict[str, Any]:
    data = json_object(body)
    errors: list[FieldError] = []
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key in _PATCHABLE:
            if value is not None and (not isinstance(value, str) or len(value) > _PATCHABLE[key]):
                errors.append(FieldError(f"/{key}", f"a string of at most {_PATCHABLE[key]} characters, or null"))
            else:
                changes[key] = value.strip() if isinstance(value, str) else None
        elif key == "dismiss":
            if not isinstance(value, bool):
                errors.append(FieldError("/dismiss", "true or false"))
            else:
                changes[key] = value
        elif key == "effortHours":
            # bool is an int to Python, and NaN compares false with everything: both refused by name.
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or not 0 <= value <= MAX_EFFORT):
                errors.append(FieldError("/effortHours", f"hours from 0 to {MAX_EFFORT}, or null"))
            else:
                changes[key] = float(value) if value is not None else None
        elif key == "committedFor":
            if not isinstance(value, str):
                errors.append(FieldError("/committedFor", "an ISO week such as 2026-W49"))
            else:
                changes[key] = value
        else:
            errors.append(FieldError(f"/{key}", f"not a field you can change ({_FIELDS})"))
    if errors:
        raise InvalidInput("The change is invalid; nothing was changed.", errors)
    if not changes:
        raise InvalidInput("Nothing to change.", [FieldError("", f"set one of {_FIELDS}")])
    return changes


@bp.route(route="opportunities/{id}", methods=["PATCH"])
@endpoint
def patch_opportunity(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Set owner, notes or effortHours (a signed-in person), dismiss an opportunity that has not been acted on
    (the policy's dismissRole), or commit it for a week (committedFor, the policy's commitRole; owner then is the
    commitment's owner); recorded in the audit trail as the verified principal's change."""
    svc = services()
    require_media_type(req, ("application/json", "application/merge-patch+json"))
    changes = _changes(read_body(req, svc.settings.max_body_bytes))
    oid, who = req.route_params.get("id", ""), principal(req, svc.settings)
    if "committedFor" in changes:
        # Checked before anything is written: the rest of the change must not land without its commitment.
        commitments.allowed(svc, who)
        opp = backlog.get(svc, oid)
        week = commitments.week_of(svc, changes.pop("committedFor"), "/committedFor")
        owner = changes.pop("owner", None) or opp.owner or (who.name if who else "")
        if changes:
            backlog.patch(svc, oid, changes, who, cid, req.headers.get("if-match"))
        commitments.commit(svc, week, owner, [{"kind": "opportunity", "opportunityId": oid}], who, cid)
        opp = backlog.get(svc, oid)
    else:
        opp = backlog.patch(svc, oid, changes, who, cid, req.headers.get("if-match"))
    view = views.opportunity_view(opp, action=backlog.candidate(svc, opp))
    return json_response(view, 200, cid, {"ETag": opp.etag or ""})


@bp.route(route="backlog", methods=["GET"])
@endpoint
def get_backlog(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Opportunities grouped by processArea + deviationPattern, for the weekly commit to the top items: open work
    by default (?state=finished or all), the week's commitments first (?week, else the current week)."""
    svc = services()
    where = _filter(req, "open")
    week = commitments.week_of(svc, req.params.get("week"), "?week")
    return json_response(backlog.backlog(svc, where, query_int(req, "top", 100, 1, 1000), week), 200, cid)


@bp.route(route="backlog/commitments", methods=["POST"])
@endpoint
def commit_backlog(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Commit backlog groups or single opportunities for a week with an owner (the policy's commitRole)."""
    svc = services()
    require_media_type(req, ("application/json",))
    who = commitments.allowed(svc, principal(req, svc.settings))
    week, owner, items = commitments.parse(svc, json_object(read_body(req, svc.settings.max_body_bytes)))
    return json_response(commitments.commit(svc, week, owner, items, who, cid), 201, cid)


@bp.route(route="backlog/commitments", methods=["GET"])
@endpoint
def list_commitments(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """The week's commitments (?week, else the current week) with what became of each: done, inFlight, stuck."""
    svc = services()
    return json_response(commitments.listing(svc, commitments.week_of(svc, req.params.get("week"), "?week")), 200, cid)


# The platform's health probes and load balancers give up after a few seconds; 2.5 s keeps the answer under 3 s
# whatever the store does (a SIGSTOPped Azurite held this route for more than 120 s).
HEALTH_DEADLINE = 2.5
_HEALTH_RETRY_AFTER = "5"
_probe_lock = threading.Lock()
_probe: Future[Any] | None = None  # the probe in flight


def _store_probe() -> Future[Any]:
    """The probe of the store in flight, or a new one: one at a time, however many health checks wait on it, so
    a hung store holds one thread, not one per check."""
    global _probe
    with _probe_lock:
        if _probe is None or _probe.done():
            _probe = Future()
            threading.Thread(target=_run_probe, args=(_probe,), name="health-probe", daemon=True).start()
        return _probe


def _run_probe(future: Future[Any]) -> None:
    try:
        svc = services()
        for backend in {id(b): b for b in (svc.store, svc.reference, svc.coordination)}.values():
            backend.ping()  # each distinct backend once (Dataverse records, Azure Tables coordination)
        future.set_result((svc, sweep.heartbeat(svc)))
    except BaseException as exc:  # the probe's failure is the answer, delivered to whoever waits
        future.set_exception(exc)


def _warnings(settings: Any) -> list[str]:
    """What works only in part although the app serves: said plainly, for whoever reads the health check."""
    if not settings.local and not settings.approval_signing_key:
        return [("approvals off: APPROVAL_SIGNING_KEY is not set, so risky plans wait for review instead of "
                 "asking for approval")]
    return []


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def health(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Liveness with dependency checks, within 2.5 s: 200 when the store answers, 503 with Retry-After when not, or
    when a setting still holds an unresolved Key Vault reference (checks.secrets names each and the fix)."""
    checks: dict[str, Any] = {}
    try:
        settings = runtime.settings()  # without building the services: they would refuse (edge.services)
    except Exception:  # nothing to tell yet: the probe below says what failed
        settings = None
    if settings is not None and settings.unresolved:
        # The app refuses to act (every route and tool answers 503): down, naming each setting and the fix. The
        # store is not probed: the answer would change nothing an operator must do.
        checks["secrets"] = {"ok": False, "unresolved": list(settings.unresolved),
                             "action": app_settings.UNRESOLVED_FIX}
        log.error("health: %s", settings.unresolved_why, extra={"correlationId": cid})
        return json_response({"status": "down", "checks": checks, "warnings": [settings.unresolved_why]}, 503,
                             cid, {"Retry-After": str(UNRESOLVED_RETRY_S)})
    try:
        svc, timer = _store_probe().result(timeout=HEALTH_DEADLINE)
    except NoAnswer:
        checks["store"] = f"no answer within {HEALTH_DEADLINE} s"
    except Exception as exc:  # any failure here is the answer, not an error of this route
        checks["store"] = f"failed: {type(exc).__name__}"
    else:
        checks["store"] = "ok"
        # A stopped timer or switched-off approvals do not make the app unable to serve: 200, the status says so.
        checks["sweep"] = timer
        warnings = _warnings(svc.settings)
        checks["approvals"] = "off: APPROVAL_SIGNING_KEY is not set" if warnings else "ok"
        status = "ok" if timer["ok"] and not warnings else "degraded"
        return json_response({"status": status, "checks": checks, "warnings": warnings}, 200, cid)
    log.warning("health: store %s", checks["store"], extra={"correlationId": cid})
    try:
        settings = services().settings  # the local host's settings live there, not in os.environ
    except Exception:  # the services could not even be built: the environment is all there is
        settings = app_settings.Settings.from_env()
    warnings = _warnings(settings)
    return json_response({"status": "down", "checks": checks, "warnings": warnings}, 503, cid,
                         {"Retry-After": _HEALTH_RETRY_AFTER})
