"""Dataverse ingest against the fake Web API: requests per 1,000 findings, and findings/s with and without
injected 429s (every 5th request refused with Retry-After: 1, as the service protection limits do).
Prints JSON. Run by `python -m bench` (or directly)."""
from __future__ import annotations

import json
import time
from functools import partial


def main(n: int = 10_000, batch: int = 1000) -> None:
    import logging

    from bench.__main__ import _findings
    from devhost.dataverse_fake import FakeDataverse
    from shared.adapters.dataverse.client import DataverseClient
    from shared.adapters.dataverse.provision import provision
    from shared.adapters.dataverse.schema import Names
    from shared.adapters.dataverse.store import DataverseStore
    from shared.domain.opportunity import from_findings, merge
    from shared.ingest.generic import validate_findings
    from shared.runtime import REPO_CATALOG, load_catalog, load_policy

    logging.disable(logging.WARNING)
    catalog, policy = load_catalog(REPO_CATALOG, "local"), load_policy(REPO_CATALOG).scoring
    figures = {}
    for label, throttle in (("plain", 0), ("throttled", 5)):
        with FakeDataverse() as server:
            provision(DataverseClient(server.url, lambda: "test-token"), Names("cl"))
            store = DataverseStore(DataverseClient(server.url, lambda: "test-token"), Names("cl"))
            server.requests, server.throttle_every, server.retry_after = 0, throttle, "1"
            batches = [validate_findings(_findings(batch, f"{label}{b}")) for b in range(n // batch)]
            start = time.perf_counter()
            for findings in batches:
                now = __import__("datetime").datetime.now(__import__("datetime").timezone.utc)
                store.ingest(from_findings(findings, catalog, policy, now), partial(merge, catalog=catalog,
                                                                                     policy=policy, now=now))
            elapsed = time.perf_counter() - start
            figures[label] = {"requests": server.requests, "throttled": server.throttled,
                              "per_s": round(n / elapsed), "rows": len(server.rows["cl_opportunities"])}
    assert figures["throttled"]["rows"] == n, "a throttled write was lost"
    print(json.dumps({"dataverse_requests_per_1000": round(figures["plain"]["requests"] * 1000 / n, 2),
                      "dataverse_ingest_per_s": figures["plain"]["per_s"],
                      "dataverse_throttled_per_s": figures["throttled"]["per_s"],
                      "dataverse_throttled_429s": figures["throttled"]["throttled"]}))


if __name__ == "__main__":
    main()
