"""Ingest routes: findings from Celonis, Power Automate Process Mining, or anything else."""
from typing import TYPE_CHECKING

import azure.functions as func

from .edge import lazy, services
from .http import check_api_key, endpoint, json_response, read_body, require_media_type

if TYPE_CHECKING:
    from ..ingest import celonis, generic, process_mining
    from ..services import ingest
else:
    celonis, generic = lazy("shared.ingest.celonis"), lazy("shared.ingest.generic")
    process_mining, ingest = lazy("shared.ingest.process_mining"), lazy("shared.services.ingest")

bp = func.Blueprint()


def _accept(req: func.HttpRequest, cid: str, source: str) -> func.HttpResponse:
    svc = services()
    check_api_key(req, svc.settings.ingest_api_key)
    kinds = ("application/json", "text/csv") if source == "process-mining" else ("application/json",)
    kind = require_media_type(req, kinds)
    body = read_body(req, svc.settings.max_body_bytes)
    params = dict(req.params)
    skipped = 0
    if source == "celonis":
        result = celonis.normalize(body, params)
        findings, skipped = result.findings, result.skipped
    elif source == "process-mining":
        result = process_mining.normalize(body, kind, params)
        findings, skipped = result.findings, result.skipped
    else:
        findings = generic.parse_findings(body)
    report = ingest.ingest(svc, findings, cid, skipped)
    return json_response(report.to_dict(), 202, cid)


@bp.route(route="findings", methods=["POST"])
@endpoint
def ingest_findings(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Normalized findings, one object or a list of up to 1,000."""
    return _accept(req, cid, "generic")


@bp.route(route="findings/celonis", methods=["POST"])
@endpoint
def ingest_celonis(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """A Celonis event-subscription callback or Action Flow body."""
    return _accept(req, cid, "celonis")


@bp.route(route="findings/process-mining", methods=["POST"])
@endpoint
def ingest_process_mining(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """The Process Mining connector's refresh trigger body (JSON) or a designer CSV export."""
    return _accept(req, cid, "process-mining")
