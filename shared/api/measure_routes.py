"""Measurement routes: outcomes in; KPI impact (JSON, CSV), the weekly review and the dashboard out."""
from typing import TYPE_CHECKING, Any

import azure.functions as func

from ..domain.errors import FieldError, InvalidInput
from .edge import lazy, services
from .http import check_api_key, endpoint, json_response, query_int, read_body, require_media_type

if TYPE_CHECKING:
    from .. import ports
    from ..ingest import outcomes
    from ..services import dashboard, insights, measure
    from . import dashboard_page
else:
    dashboard, insights = lazy("shared.services.dashboard"), lazy("shared.services.insights")
    measure, outcomes = lazy("shared.services.measure"), lazy("shared.ingest.outcomes")
    dashboard_page, ports = lazy("shared.api.dashboard_page"), lazy("shared.ports")

bp = func.Blueprint()


@bp.route(route="outcomes", methods=["POST"])
@endpoint
def post_outcomes(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Case-level KPI observations, one object or a list of up to 5,000."""
    svc = services()
    check_api_key(req, svc.settings.ingest_api_key)
    require_media_type(req, ("application/json",))
    observed = outcomes.parse_outcomes(read_body(req, svc.settings.max_body_bytes))
    return json_response(measure.record_outcomes(svc, observed, cid), 202, cid)


def _report(req: func.HttpRequest) -> dict[str, Any]:
    p = req.params
    version = query_int(req, "actionVersion", None, 0, 999_999_999)
    weekly = p.get("weekly", "true").lower()
    if weekly not in ("true", "false"):
        raise InvalidInput("weekly is true or false.", [FieldError("?weekly", "expected true or false")])
    where = ports.Filter(processArea=p.get("processArea") or None, deviationPattern=p.get("deviationPattern") or None)
    return measure.kpis(services(), where, p.get("actionId") or None, version, p.get("metric") or None,
                        weekly == "true")


@bp.route(route="kpis", methods=["GET"])
@endpoint
def get_kpis(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Treated vs control per processArea + pattern + action + version: n, means, difference, 95% CI, p, ROI."""
    return json_response(_report(req), 200, cid)


@bp.route(route="kpis.csv", methods=["GET"])
@endpoint
def get_kpis_csv(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """The same report as a flat CSV (one line per action version, KPI and week) for Power BI."""
    return func.HttpResponse(measure.to_csv(_report(req)), status_code=200, mimetype="text/csv",
                             headers={"x-correlation-id": cid, "content-disposition": 'inline; filename="kpis.csv"'})


@bp.route(route="insights", methods=["GET"])
@endpoint
def get_insights(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """The weekly review: catalog gaps, weak action versions, failure reasons, feedback, work sent to people."""
    return json_response(insights.weekly_review(services(), query_int(req, "days", 28, 1, 365)), 200, cid)


@bp.route(route="dashboard", methods=["GET"])
@endpoint
def get_dashboard(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """An HTML page of charts: throughput, success rate, treated vs control with CIs, ROI."""
    return func.HttpResponse(dashboard_page.render(dashboard.data(services())), status_code=200, mimetype="text/html",
                             headers={"x-correlation-id": cid, "cache-control": "no-store"})
