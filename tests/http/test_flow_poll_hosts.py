"""A flow's 202 Location is polled only on the flows' own hosts (FLOW_POLL_HOSTS, else the configured flow
URLs'): anything else fails the execution with an incident and is never requested (no SSRF)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from shared.adapters.http_flows import HttpFlows
from shared.ports import PollRefused
from tests.conftest import hosted, settle
from tests.factories import treated_case

SAS = "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=s3cret"
DONE = {"status": "succeeded", "evidence": {"recordIds": [], "before": {}, "after": {}}, "message": "done"}


class Counter(ThreadingHTTPServer):
    """A bystander on another local port: counts every request, answers as a finished flow would."""

    daemon_threads = True

    def __init__(self):
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.hits.append(self.path)
                body = json.dumps(DONE).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def counter():
    server = Counter()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("location, allowed", [
    (SAS.replace("/triggers/manual/paths/invoke", "/runs/1/operations/2"), True),
    ("https://PROD-12.westeurope.logic.azure.com./workflows/abc/runs/1", True),  # case and a trailing dot
    ("https://prod-12.westeurope.logic.azure.com:8443/workflows/abc/runs/1", False),  # another port
    ("http://prod-12.westeurope.logic.azure.com/workflows/abc/runs/1", False),  # another scheme
    ("https://prod-13.westeurope.logic.azure.com/workflows/abc/runs/1", False),
    ("https://prod-12.westeurope.logic.azure.com@169.254.169.254/metadata", False),  # user info
    ("https://169.254.169.254\\@prod-12.westeurope.logic.azure.com/", False),
    ("/workflows/abc/runs/1", False), ("", False), ("https://prod-12.westeurope.logic.azure.com /x", False),
])
def test_a_location_is_pollable_only_on_a_configured_flow_urls_origin(location, allowed):
    flows = HttpFlows({"FLOW_LEADS_REASSIGN": SAS}, flow_settings=lambda: ["FLOW_LEADS_REASSIGN", "FLOW_READ_RECORD"])
    assert (flows.refusal(location) is None) is allowed


def test_flow_poll_hosts_replaces_the_configured_hosts_and_names_https_hosts():
    flows = HttpFlows({"FLOW_LEADS_REASSIGN": SAS}, poll_hosts=["runs.example", "other.example:8443"])
    assert flows.refusal("https://runs.example/op/1") is None
    assert flows.refusal("https://other.example:8443/op/1") is None
    assert flows.refusal("http://runs.example/op/1") and flows.refusal("https://other.example/op/1")
    assert flows.refusal(SAS)  # listed hosts only, once there is a list


def test_outside_the_local_host_only_https_is_polled_even_on_a_configured_http_flow():
    flows = HttpFlows({"FLOW_X": "http://flows.example/x"}, https_only=True)
    assert "not https" in flows.refusal("http://flows.example/op/1")


def test_a_refused_poll_sends_nothing_and_an_allowed_one_does(counter):
    refused = HttpFlows({"FLOW_X": "http://127.0.0.1:9/x"})
    with pytest.raises(PollRefused):
        refused.poll(f"{counter.url}/op/1", "cid", 2.0)
    assert counter.hits == []
    listed = HttpFlows({"FLOW_X": "http://127.0.0.1:9/x"}, poll_hosts=[counter.url])
    assert listed.poll(f"{counter.url}/op/1", "cid", 2.0).status == 200 and counter.hits == ["/op/1"]


def test_a_202_pointing_at_another_host_fails_the_case_with_an_incident_and_is_never_polled(azurite, counter):
    with hosted(azurite) as server:
        case = treated_case("LD-POLL", "lead-management", action="leads.reassign")
        server.sandbox.script("leads.reassign", [{"status": 202, "body": {"status": "running"},
                                                  "headers": {"Location": f"{counter.url}/operations/op-1?sig=x",
                                                              "Retry-After": "0"}}])
        finding = {"eventId": f"e-{case}", "source": "crm", "processArea": "lead-management",
                   "deviationPattern": "lead-unassigned", "caseKey": case, "detectedAt": "2026-11-20T08:00:00Z",
                   "attributes": {"leadId": case, "region": "EMEA"}}
        r = requests.post(server.base_url + "/findings", json=finding)
        assert r.status_code == 202, r.text
        oid = r.json()["opportunities"][0]["id"]
        settle(server)
        view = requests.get(f"{server.base_url}/opportunities/{oid}").json()
        assert view["status"] == "failed", view["status"]
        [x] = view["executions"]
        assert x["status"] == "failed" and counter.url.removeprefix("http://") in x["message"]
        assert "sig=x" not in x["message"]  # the origin is named, never the URL (it may carry a signature)
        incidents = requests.get(f"{server.base_url}/incidents").json()["items"]
        assert any(i["opportunityId"] == oid and i["kind"] == "failed" for i in incidents)
    assert counter.hits == []
