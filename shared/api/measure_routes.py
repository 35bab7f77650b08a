"""Measurement routes: outcomes in; KPI impact (JSON, CSV), the weekly review and the dashboard out."""
import azure.functions as func

from ..domain.errors import FieldError, InvalidInput
from .http import check_api_key, endpoint, json_response, read_body, require_media_type

bp = func.Blueprint()


@bp.route(route="outcomes", methods=["POST"])
@endpoint
def post_outcomes(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Case-level KPI observations, one object or a list of up to 5,000."""
    from ..ingest.outcomes import parse_outcomes
    from ..runtime import services
    from ..services.measure import record_outcomes

    svc = services()
    check_api_key(req, svc.settings.ingest_api_key)
    require_media_type(req, ("application/json",))
    outcomes = parse_outcomes(read_body(req, svc.settings.max_body_bytes))
    return json_response(record_outcomes(svc, outcomes, cid), 202, cid)


def _report(req: func.HttpRequest):
    from ..ports import Filter
    from ..runtime import services
    from ..services.measure import kpis

    p = req.params
    version = p.get("actionVersion")
    # At most 9 digits, as the document says: int() of 4,301 digits raises ValueError, which was a 500.
    if version is not None and not (version.isdecimal() and len(version) <= 9):
        raise InvalidInput("actionVersion is a whole number.",
                           [FieldError("?actionVersion", "an integer from 0 to 999999999")])
    weekly = p.get("weekly", "true").lower()
    if weekly not in ("true", "false"):
        raise InvalidInput("weekly is true or false.", [FieldError("?weekly", "expected true or false")])
    where = Filter(processArea=p.get("processArea") or None, deviationPattern=p.get("deviationPattern") or None)
    return kpis(services(), where, p.get("actionId") or None, int(version) if version else None,
                p.get("metric") or None, weekly == "true")


@bp.route(route="kpis", methods=["GET"])
@endpoint
def get_kpis(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Treated vs control per processArea + pattern + action + version: n, means, difference, 95% CI, p, ROI."""
    return json_response(_report(req), 200, cid)


@bp.route(route="kpis.csv", methods=["GET"])
@endpoint
def get_kpis_csv(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """The same report as a flat CSV (one line per action version, KPI and week) for Power BI."""
    from ..services.measure import to_csv

    return func.HttpResponse(to_csv(_report(req)), status_code=200, mimetype="text/csv",
                             headers={"x-correlation-id": cid, "content-disposition": 'inline; filename="kpis.csv"'})


@bp.route(route="insights", methods=["GET"])
@endpoint
def get_insights(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """The weekly review: catalog gaps, weak action versions, failure reasons, feedback, work sent to people."""
    from ..runtime import services
    from ..services.insights import weekly_review

    days = req.params.get("days", "28")
    if not days.isdecimal() or len(days) > 3 or not 1 <= int(days) <= 365:
        raise InvalidInput("days is a whole number from 1 to 365.", [FieldError("?days", "expected 1..365")])
    return json_response(weekly_review(services(), int(days)), 200, cid)


@bp.route(route="dashboard", methods=["GET"])
@endpoint
def get_dashboard(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """An HTML page of charts: throughput, success rate, treated vs control with CIs, ROI."""
    from ..runtime import services
    from ..services.dashboard import data
    from .dashboard_page import render

    return func.HttpResponse(render(data(services())), status_code=200, mimetype="text/html",
                             headers={"x-correlation-id": cid, "cache-control": "no-store"})
