"""Store calls are bounded: a Dataverse that refuses, does not answer, or keeps failing, and Azure Tables that refuse
or do not answer, are Unavailable (503 with Retry-After) within their timeout and retry budget, on every port; the
HTTP layer maps what the SDKs raise to the same 503."""
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devhost.azurite import free_port
from shared.adapters.dataverse.client import DataverseClient
from shared.domain.errors import Unavailable


class _Failing(BaseHTTPRequestHandler):
    status = 503
    retry_after = "0"
    calls = 0

    def do_GET(self):
        type(self).calls += 1
        self.send_response(self.status)
        self.send_header("Retry-After", self.retry_after)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def failing():
    _Failing.calls, _Failing.retry_after = 0, "0"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [500, 503, 429])
def test_dataverse_failing_after_its_retries_is_unavailable(failing, status):
    _Failing.status = status
    client = DataverseClient(f"http://127.0.0.1:{failing.server_address[1]}", lambda: "t", max_retries=2)
    with pytest.raises(Unavailable) as exc:
        client.json("GET", "cl_opportunities")
    assert _Failing.calls == 3 and exc.value.headers == {"Retry-After": "1"}


def test_dataverse_throttling_past_the_wait_budget_is_unavailable_with_its_retry_after(failing):
    _Failing.status, _Failing.retry_after = 429, "30"
    client = DataverseClient(f"http://127.0.0.1:{failing.server_address[1]}", lambda: "t", max_wait=10)
    with pytest.raises(Unavailable) as exc:
        client.json("GET", "cl_opportunities")
    assert _Failing.calls == 1 and exc.value.headers == {"Retry-After": "30"}


def test_dataverse_that_does_not_answer_is_unavailable_within_its_timeout():
    with socket.socket() as silent:  # listens, so connections open, but nothing ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        client = DataverseClient(f"http://127.0.0.1:{silent.getsockname()[1]}", lambda: "t", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(Unavailable):
            client.json("GET", "cl_opportunities")
        assert time.monotonic() - started < 3


def test_dataverse_refusing_connections_is_unavailable():
    client = DataverseClient(f"http://127.0.0.1:{free_port()}", lambda: "t", timeout=1.0)
    with pytest.raises(Unavailable):
        client.json("GET", "cl_opportunities")


def test_what_the_sdks_raise_when_a_part_does_not_answer_maps_to_503():
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseTimeoutError

    from shared.adapters.tables.batch import TransactionFailed
    from shared.api.edge import unavailable

    def caused_by(cause):
        try:
            raise RuntimeError("wrapped") from cause
        except RuntimeError as exc:
            return exc

    for exc in (ServiceRequestError("refused"), ServiceResponseTimeoutError("slow"), ConnectionRefusedError(),
                TransactionFailed(503, "ServerBusy", 0, "busy"), caused_by(TimeoutError()),
                HttpResponseError(message="busy", response=None)):
        if isinstance(exc, HttpResponseError):
            exc.status_code = 503
        found = unavailable(exc)
        assert found is not None and found.status == 503 and found.headers["Retry-After"].isdecimal(), exc
    for exc in (ValueError("a bug"), TransactionFailed(412, "UpdateConditionNotSatisfied", 0, "etag"),
                KeyError("x")):
        assert unavailable(exc) is None, exc


def _tables_at(port: int) -> str:
    from shared.adapters.tables.shards import AZURITE_ACCOUNT_KEY

    return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_ACCOUNT_KEY};"
            f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")


def test_azure_tables_that_do_not_answer_are_unavailable_within_the_timeout_on_every_port():
    from shared.adapters.tables import open_tables

    with socket.socket() as silent:  # listens, so connections open, but nothing ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        for port in open_tables(_tables_at(silent.getsockname()[1]), None, "t", shards=2, timeout=1.0):
            started = time.monotonic()
            with pytest.raises(Unavailable):
                port.ping()
            assert time.monotonic() - started < 5, type(port).__name__


def test_azure_tables_refusing_connections_are_unavailable():
    from shared.adapters.tables import open_tables

    records, reference, coordination = open_tables(_tables_at(free_port()), None, "t", timeout=1.0)
    with pytest.raises(Unavailable):
        coordination.acquire_many([], 0)
    with pytest.raises(Unavailable):
        records.get("x")
