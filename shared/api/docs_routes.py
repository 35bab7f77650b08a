"""GET /api/openapi.json: the API's OpenAPI 2.0 definition, the same document as the custom connector's."""
from typing import TYPE_CHECKING

import azure.functions as func

from .edge import lazy
from .http import endpoint, json_response

if TYPE_CHECKING:
    from . import openapi
else:
    openapi = lazy("shared.api.openapi")

bp = func.Blueprint()


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def get_openapi(req: func.HttpRequest, cid: str) -> func.HttpResponse:
    """This API's OpenAPI 2.0 document, with the host the request came to (no secrets in it: anonymous)."""
    host = req.headers.get("x-forwarded-host") or req.headers.get("host") or "localhost:7071"
    scheme = "http" if host.startswith(("localhost", "127.0.0.1")) else "https"
    return json_response(openapi.document(host, scheme), 200, cid)
