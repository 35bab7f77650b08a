"""When the store is down or frozen, routes answer 503 with Retry-After within bounded time, and /api/health
within 3 s: each test starts its own Azurite (not the session's) and stops or freezes that process for real."""
import contextlib
import os
import signal
import time

import pytest
import requests

from devhost.azurite import Azurite, free_port
from tests.conftest import hosted

# STORE_TIMEOUT_SECONDS' default: one store call gives up after it, plus one short backoff.
STORE_TIMEOUT = 5.0
HEALTH_BUDGET = 3.0


@contextlib.contextmanager
def own_azurite():
    server = Azurite(free_port(), location=None).start()
    try:
        yield server
    finally:
        if server.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGCONT)  # a frozen process cannot act on SIGTERM
        server.stop()


@contextlib.contextmanager
def frozen(server):
    """SIGSTOP the Azurite process group: connections still open (the kernel accepts them), nothing answers."""
    os.killpg(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(server.process.pid, signal.SIGCONT)


def timed(method, url, **kwargs):
    started = time.monotonic()
    r = requests.request(method, url, timeout=120, **kwargs)
    return r, time.monotonic() - started


def assert_unavailable(r):
    assert r.status_code == 503, (r.status_code, r.text[:300])
    assert r.headers["Retry-After"].isdecimal() and int(r.headers["Retry-After"]) >= 1


def test_with_the_store_stopped_routes_answer_503_with_retry_after_at_once(azurite):
    with own_azurite() as store, hosted(azurite, TABLES_CONNECTION=store.connection_string) as host:
        assert requests.get(f"{host.base_url}/opportunities").status_code == 200  # pooled connections exist
        store.stop()
        for method, route, body in [("GET", "/opportunities", None), ("GET", "/opportunities/" + "0" * 32, None),
                                    ("POST", "/findings", {"eventId": "e", "processArea": "ap",
                                                           "deviationPattern": "p", "caseKey": "C",
                                                           "detectedAt": "2026-11-20T08:15:00Z"})]:
            r, took = timed(method, host.base_url + route, json=body)
            assert_unavailable(r)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert took < STORE_TIMEOUT + 3, (route, took)
        r, took = timed("GET", f"{host.base_url}/health")
        assert_unavailable(r)
        assert r.json()["status"] == "down" and took < HEALTH_BUDGET


def test_with_no_store_listening_from_the_start_routes_answer_503(azurite):
    closed = f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={'A' * 88};" \
             f"TableEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;"
    with hosted(azurite, TABLES_CONNECTION=closed) as host:
        r, took = timed("GET", f"{host.base_url}/opportunities")
        assert_unavailable(r)
        assert took < STORE_TIMEOUT + 3
        r, took = timed("GET", f"{host.base_url}/health")
        assert_unavailable(r)
        assert took < HEALTH_BUDGET


def test_with_the_store_frozen_health_answers_503_within_3_s_and_routes_within_the_store_timeout(azurite):
    with own_azurite() as store, hosted(azurite, TABLES_CONNECTION=store.connection_string) as host:
        assert requests.get(f"{host.base_url}/health").status_code == 200
        assert requests.get(f"{host.base_url}/opportunities").status_code == 200
        with frozen(store):
            for _ in range(3):  # later checks wait on the same probe: one hung thread, not one per check
                r, took = timed("GET", f"{host.base_url}/health")
                assert_unavailable(r)
                assert took < HEALTH_BUDGET, took
                # No answer yet, or the probe's own timeout (STORE_TIMEOUT) has run out meanwhile.
                assert r.json()["checks"]["store"] in ("no answer within 2.5 s", "failed: Unavailable")
            r, took = timed("GET", f"{host.base_url}/opportunities")
            assert_unavailable(r)
            assert took < STORE_TIMEOUT + 3, took
        deadline = time.monotonic() + 30
        while requests.get(f"{host.base_url}/health").status_code != 200:  # thawed: healthy again by itself
            assert time.monotonic() < deadline, "health did not recover after the store came back"
            time.sleep(0.2)


@pytest.mark.parametrize("environment, key, warned", [("prod", "", True), ("prod", "k" * 32, False),
                                                       ("local", "", False)])
def test_health_says_plainly_when_approvals_are_off_yet_stays_200(azurite, environment, key, warned):
    with hosted(azurite, CLOSEDLOOP_ENV=environment, APPROVAL_SIGNING_KEY=key) as host:
        r = requests.get(f"{host.base_url}/health")
        assert r.status_code == 200 and r.json()["checks"]["store"] == "ok"
        body = r.json()
        if warned:
            assert body["checks"]["approvals"] == "off: APPROVAL_SIGNING_KEY is not set"
            assert body["status"] == "degraded"
            assert body["warnings"][0].startswith("approvals off: APPROVAL_SIGNING_KEY is not set")
        else:
            assert body["checks"]["approvals"] == "ok" and body["warnings"] == []
