"""OpenTelemetry: off without a connection string; with one, the Azure Monitor distro exports the app's
custom metrics per action version (to a local ingestion endpoint standing in for Application Insights)."""
import gzip
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared import telemetry
from shared.settings import Settings
from tests.conftest import ROOT
from tests.http.test_pipeline import LEAD, drive, start


@pytest.fixture
def metrics():
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    telemetry.configure(Settings.from_env({}), meter_provider=MeterProvider(metric_readers=[reader]))
    yield reader
    telemetry.off()


def _points(reader, name):
    data = reader.get_metrics_data()
    return [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name
            for p in m.data.data_points]


def test_executions_latency_and_rollbacks_are_counted_per_action_version(svc, sandbox, metrics):
    start(svc, caseKey="T-1", attributes={"leadId": "T-1", "region": "EMEA"})
    drive(svc)
    sandbox.configure(breach_actions={"leads.reassign"})
    start(svc, caseKey="T-2", attributes={"leadId": "T-2", "region": "EMEA"})
    drive(svc)
    done = {(p.attributes["action"], p.attributes["status"]): p.value for p in _points(metrics, "closedloop.executions")}
    assert done[("leads.reassign", "succeeded")] == 2 and done[("leads.restore-owner", "succeeded")] == 1
    [latency] = [p for p in _points(metrics, "closedloop.flow.latency") if p.attributes["action"] == "leads.reassign"]
    assert latency.count == 2 and latency.sum > 0
    [rolled] = _points(metrics, "closedloop.compensations")
    assert rolled.attributes == {"action": "leads.reassign", "version": 1} and rolled.value == 1


def test_without_a_connection_string_telemetry_stays_off_and_unimported():
    code = ("import sys; from shared import telemetry; from shared.settings import Settings; "
            "print(telemetry.configure(Settings.from_env({})), 'opentelemetry' in sys.modules, "
            "'azure.monitor.opentelemetry' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


def test_the_azure_monitor_distro_exports_the_custom_metrics(tmp_path):
    received = []

    class Ingestion(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            received.append((self.path, body.decode("utf-8", "replace")))
            reply = json.dumps({"itemsReceived": 1, "itemsAccepted": 1, "errors": []}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingestion)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cs = (f"InstrumentationKey=00000000-0000-0000-0000-000000000000;"
              f"IngestionEndpoint=http://127.0.0.1:{server.server_address[1]}/")
        code = ("from shared import telemetry; from shared.settings import Settings; "
                f"assert telemetry.configure(Settings.from_env({{'APPLICATIONINSIGHTS_CONNECTION_STRING': {cs!r}}})); "
                "telemetry.execution_ended('ap.request-missing-fields', 1, 'succeeded'); "
                "from opentelemetry import metrics; metrics.get_meter_provider().force_flush()")
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)})
    finally:
        server.shutdown()
    sent = "\n".join(body for _, body in received)
    assert any("/v2.1/track" in path for path, _ in received)
    assert "closedloop.executions" in sent and "ap.request-missing-fields" in sent
