"""The learning route: expected vs measured per action version, the verdicts and the policy events they caused."""
from typing import TYPE_CHECKING

import azure.functions as func

from .edge import lazy, services
from .http import endpoint, json_response

if TYPE_CHECKING:
    from ..services import learning
else:
    learning = lazy("shared.services.learning")

bp = func.Blueprint()


@bp.route(route="learning", methods=["GET"])
@endpoint
def get_learning(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """Expected vs measured per action version × pattern × KPI with the calibration, verdicts and policy events."""
    return json_response(learning.report(services()), 200, cid)
