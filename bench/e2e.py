"""One e2e measurement in a process of its own, so its peak memory is the local host's alone.

Prints JSON: {"e2e_per_s", "peak_rss_mb", "statuses", "backlog_ms", ...}. Run by `python -m bench` (or directly).
"""
from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from collections import Counter


def main(n: int = 10_000, batch: int = 1000) -> None:
    import requests

    from bench.__main__ import _findings, post_all, uncapped_catalog
    from devhost.azurite import Azurite, free_port
    from devhost.boot import boot, configure_logging

    configure_logging("ERROR")
    with Azurite(free_port(), location=None) as azurite:
        host = boot(0, {"TABLES_CONNECTION": azurite.connection_string, "TABLE_PREFIX": "e2e",
                        "OUTBOX_DIR": tempfile.mkdtemp(prefix="bench-outbox-"), "CATALOG_DIR": uncapped_catalog()},
                    sandbox="process")
        try:
            bodies = [json.dumps(_findings(batch, f"e{b}")).encode() for b in range(n // batch)]

            start = time.perf_counter()
            accepted = post_all(host.base_url, bodies, 2)
            if not host.bus.wait_idle(1800):
                raise SystemExit("the pipeline did not settle")
            elapsed = time.perf_counter() - start
            statuses: Counter = Counter()
            # Every status, finished work included: /api/backlog lists open work by default.
            for g in requests.get(host.base_url + "/backlog", params={"state": "all"}).json()["items"]:
                statuses.update(g["statusCounts"])
            # The weekly review's read (open work, commitments first) over every case: one scan, median of 3.
            timings = []
            for _ in range(3):
                began = time.perf_counter()
                requests.get(host.base_url + "/backlog").raise_for_status()
                timings.append(time.perf_counter() - began)
            backlog_ms = round(sorted(timings)[1] * 1000)
            measured = measurement(host.base_url, bodies)
        finally:
            host.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"e2e_per_s": round(accepted / elapsed), "e2e_seconds": round(elapsed, 1),
                      "peak_rss_mb": round(peak), "statuses": dict(statuses), "backlog_ms": backlog_ms, **measured}))


def measurement(base_url: str, bodies: list, per_request: int = 5000) -> dict:
    """Two outcomes per case (a baseline and one after) posted in batches, then GET /api/kpis over them."""
    import random

    import requests

    rng = random.Random(1)
    outcomes = []
    for body in bodies:
        for f in json.loads(body):
            for day in ("2026-11-01T00:00:00Z", "2027-01-15T00:00:00Z"):
                outcomes.append({"processArea": f["processArea"], "caseKey": f["caseKey"],
                                 "metric": "cycle_time_days", "value": round(rng.gauss(9, 2.5), 2), "observedAt": day})
    session = requests.Session()
    start = time.perf_counter()
    for i in range(0, len(outcomes), per_request):
        session.post(base_url + "/outcomes", json=outcomes[i:i + per_request]).raise_for_status()
    posted = time.perf_counter() - start
    timings = []
    report = None
    for _ in range(3):
        t = time.perf_counter()
        report = session.get(base_url + "/kpis")
        report.raise_for_status()
        timings.append(time.perf_counter() - t)
    return {"outcomes_http_per_s": round(len(outcomes) / posted), "kpis_ms": round(sorted(timings)[1] * 1000),
            "kpis_outcomes": report.json()["outcomes"] if report is not None else 0}


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
