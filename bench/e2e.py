"""One e2e measurement in a process of its own, so its peak memory is the local host's alone.

Prints JSON: {"e2e_per_s", "peak_rss_mb", "statuses"}. Run by `python -m bench` (or directly).
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
            for g in requests.get(host.base_url + "/backlog").json()["items"]:
                statuses.update(g["statusCounts"])
        finally:
            host.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"e2e_per_s": round(accepted / elapsed), "e2e_seconds": round(elapsed, 1),
                      "peak_rss_mb": round(peak), "statuses": dict(statuses)}))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
