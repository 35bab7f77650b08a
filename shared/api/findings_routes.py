"""Ingest routes: findings from Celonis, Power Automate Process Mining, or anything else; CloudEvents on the
Celonis and generic routes; signed Celonis events; and the sources view (per subscription offsets)."""
from datetime import datetime
from typing import TYPE_CHECKING, Any

import azure.functions as func

from ..domain.errors import FieldError, InvalidInput
from .edge import lazy, services
from .http import check_api_key, endpoint, json_response, query_int, read_body, require_media_type, require_resolved

if TYPE_CHECKING:
    from ..domain.findings import Finding
    from ..domain.offsets import Delivery
    from ..ingest import celonis, cloudevents, generic, process_mining, signing
    from ..services import ingest, sources
else:
    celonis, generic = lazy("shared.ingest.celonis"), lazy("shared.ingest.generic")
    process_mining, ingest = lazy("shared.ingest.process_mining"), lazy("shared.services.ingest")
    cloudevents, signing = lazy("shared.ingest.cloudevents"), lazy("shared.ingest.signing")
    sources = lazy("shared.services.sources")

bp = func.Blueprint()


def _strict(params: dict[str, str], source: str, strict_sources: Any) -> bool:
    """`?strict=true` or the route's source in INGEST_STRICT_SOURCES: unknown fields refused, not kept."""
    asked = params.pop("strict", None)
    if asked is not None and asked.strip().lower() not in ("true", "false"):
        raise InvalidInput("strict is true or false.", [FieldError("?strict", "expected true or false")])
    return (asked or "").strip().lower() == "true" or source in strict_sources


def _accept(req: func.HttpRequest, cid: str, source: str) -> func.HttpResponse:
    svc = services()
    settings = svc.settings
    check_api_key(req, settings.ingest_api_key)
    kinds = ("application/json", "text/csv") if source == "process-mining" else ("application/json",)
    kind = require_media_type(req, kinds)
    body = read_body(req, settings.max_body_bytes)
    secret = settings.celonis_signing_secret if source == "celonis" else ""
    proof = None
    if secret:  # on the raw bytes, before anything is parsed
        require_resolved("CELONIS_SIGNING_SECRET", secret)
        proof = signing.verify(secret, body, req.headers.get(signing.SIGNATURE_HEADER),
                               req.headers.get(signing.SECRET_HEADER))
    params = dict(req.params)
    strict = _strict(params, source, settings.strict_sources)
    now = svc.clock.now()
    # While Celonis events are signed, the unsigned generic route takes no finding in their name (dedupe is by
    # eventId per case: one sent here first would make the genuine signed event a duplicate).
    reserved = source == "generic" and bool(settings.celonis_signing_secret)
    findings, skipped, deliveries, times = _read(req, source, kind, body, params, strict, now, reserved,
                                                 proof == signing.BODY_SIGNED)
    if secret:
        sources.refuse_replays(svc, times, deliveries, now)
    report = ingest.ingest(svc, findings, cid, skipped)
    if deliveries:  # after the findings are stored: a refused batch advances no offset
        sources.record(svc, source, deliveries, cid)
    return json_response(report.to_dict(), 202, cid)


def _read(req: func.HttpRequest, source: str, kind: str, body: bytes, params: dict[str, str], strict: bool,
          now: datetime, reserved: bool, body_signed: bool
          ) -> "tuple[list[Finding], int, list[Delivery], list[tuple[datetime, str]]]":
    """The request's findings, how many reported items were no deviations, the Celonis subscription deliveries
    they came in, and the event times sent (CloudEvents `time`). `body_signed`: proven by x-emporix-hmac, which
    covers the body alone."""
    read = None if source == "process-mining" else cloudevents.read(kind, req.headers.get, body)
    if read is not None:
        events, batch = read
        times = [(e.time, e.where("time")) for e in events if e.time is not None]
        if source == "celonis":
            received = celonis.from_events(events, batch, params, now, strict, body if body_signed else None)
            return received.findings, 0, received.deliveries, times
        return cloudevents.findings(events, batch, source, now, strict, reserved), 0, [], times
    if source == "celonis":
        received = celonis.normalize(body, params, strict, body_signed)
        return received.findings, received.skipped, received.deliveries, []
    if source == "process-mining":
        result = process_mining.normalize(body, kind, params)
        return result.findings, result.skipped, [], []
    found = generic.parse_findings(body, strict)
    if reserved:
        signing.refuse_claims(found, generic.is_array(body))
    return found, 0, [], []


@bp.route(route="findings", methods=["POST"])
@endpoint
def ingest_findings(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Normalized findings, one object or a list of up to 1,000; or CloudEvents carrying them."""
    return _accept(req, cid, "generic")


@bp.route(route="findings/celonis", methods=["POST"])
@endpoint
def ingest_celonis(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """A Celonis event-subscription callback or Action Flow body, or CloudEvents (Orchestration Engine) carrying
    either; signed when CELONIS_SIGNING_SECRET is set."""
    return _accept(req, cid, "celonis")


@bp.route(route="findings/process-mining", methods=["POST"])
@endpoint
def ingest_process_mining(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """The Process Mining connector's refresh trigger body (JSON) or a designer CSV export."""
    return _accept(req, cid, "process-mining")


@bp.route(route="sources", methods=["GET"])
@endpoint
def get_sources(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Per Celonis subscription: the highest offset, the last event's time, offsets that never arrived (`?top=`,
    default 100, at most 1,000)."""
    return json_response(sources.view(services(), query_int(req, "top", 100, 1, 1000)), 200, cid)
