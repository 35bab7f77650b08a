"""The edge's shared rules (shared/api/edge.py), without a host: whose principal to believe, what a failure
answers, and how an MCP tool reports it."""
import json
import logging
import subprocess
import sys
from types import SimpleNamespace

import pytest

from shared.api import edge, mcp_tools
from shared.domain.errors import FieldError, InvalidInput, MalformedHeader, ProblemError
from tests.conftest import ROOT
from tests.factories import principal_header

HEADER = principal_header("ana@contoso.com", "Autonomy.Admin")["X-MS-CLIENT-PRINCIPAL"]
LOG = logging.getLogger("test.edge")


def settings(easy_auth=False, local=False):
    return SimpleNamespace(easy_auth=easy_auth, local=local)


@pytest.mark.parametrize("easy_auth,local,believed", [(False, False, False), (True, False, True),
                                                      (False, True, True), (True, True, True)])
def test_an_easy_auth_header_is_believed_only_behind_easy_auth_or_on_the_local_host(easy_auth, local, believed):
    who = edge.easy_auth_principal(HEADER, settings(easy_auth, local))
    assert (who is not None and who.id == "ana@contoso.com") is believed


def test_no_header_is_no_principal_and_a_garbled_one_is_named_where_it_is_believed():
    assert edge.easy_auth_principal(None, settings(easy_auth=True)) is None
    assert edge.easy_auth_principal("", settings(easy_auth=True)) is None
    assert edge.easy_auth_principal("%%%", settings()) is None  # not believed, so not even read
    with pytest.raises(MalformedHeader):
        edge.easy_auth_principal("%%%", settings(easy_auth=True))


def test_mcp_reads_the_principal_from_the_transport_headers_under_the_same_rule():
    context = {"transport": {"properties": {"headers": {"X-MS-CLIENT-PRINCIPAL": HEADER}}}}
    assert mcp_tools.principal_of(context, settings()) is None
    assert mcp_tools.principal_of(context, settings(easy_auth=True)).id == "ana@contoso.com"


def test_a_problem_answers_as_itself():
    exc = InvalidInput("top is 1 to 50.", [FieldError("/arguments/top", "an integer from 1 to 50")])
    assert edge.refusal(exc, LOG, "test", "cid-1") is exc
    body = edge.problem_body(exc, "/api/x", "cid-1")
    assert body == {"type": "https://closedloop.dev/problems/422", "title": "Invalid input", "status": 422,
                    "detail": "top is 1 to 50.", "instance": "/api/x", "correlationId": "cid-1",
                    "errors": [{"pointer": "/arguments/top", "detail": "an integer from 1 to 50"}]}


def test_a_part_that_did_not_answer_is_a_503_with_retry_after():
    try:
        raise RuntimeError("store call failed") from ConnectionRefusedError()
    except RuntimeError as exc:
        answer = edge.refusal(exc, LOG, "test", "cid-2")
    assert answer.status == 503 and answer.headers["Retry-After"].isdecimal()


def test_a_real_fault_is_a_500_that_tells_only_the_correlation_id(caplog):
    with caplog.at_level(logging.ERROR, logger="test.edge"):
        answer = edge.refusal(KeyError("secret-column"), LOG, "GET /api/x", "cid-3")
    assert answer.status == 500 and "secret-column" not in answer.detail and "correlation id" in answer.detail
    assert any(r.exc_info and r.correlationId == "cid-3" for r in caplog.records)


def _down(*_):
    raise TimeoutError("the store did not answer")


def test_an_mcp_tool_whose_store_does_not_answer_is_a_503_not_a_500(monkeypatch):
    monkeypatch.setattr(mcp_tools, "services", lambda: None)
    error = json.loads(mcp_tools.run(json.dumps({"arguments": {}}), _down))["error"]
    assert error["status"] == 503 and error["headers"]["Retry-After"].isdecimal()
    assert error["instance"] == mcp_tools.INSTANCE


def test_an_mcp_refusal_is_the_http_problem_body():
    exc = ProblemError("nope")
    error = json.loads(mcp_tools._refusal(exc, "cid-4"))["error"]
    assert error == edge.problem_body(exc, mcp_tools.INSTANCE, "cid-4")


def test_a_lazy_module_is_imported_on_first_use_only():
    code = ("import sys; from shared.api.edge import lazy; m = lazy('shared.domain.stats'); "
            "before = 'shared.domain.stats' in sys.modules; m.mean; "
            "print(before, 'shared.domain.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
