"""`make demo`: sample findings from three miners go through the app over HTTP, and the backlog prints.

Runs on the embedded default: Azurite (in memory, its own port), the in-process bus, the local host.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests

from .azurite import Azurite, free_port
from .boot import REPO, boot, configure_logging

SAMPLES = REPO / "samples"


def _post(base: str, route: str, path: Path, params: dict[str, str], content_type: str = "application/json") -> dict:
    r = requests.post(f"{base}/{route}", data=path.read_bytes(), params=params,
                      headers={"content-type": content_type, "x-correlation-id": f"demo-{path.stem}"})
    if r.status_code != 202:
        raise SystemExit(f"{route} answered {r.status_code}: {r.text}")
    return r.json()


def _table(rows: list[list[Any]], headers: list[str]) -> str:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), line]
    out += ["  ".join(c.ljust(w) if i < len(widths) - 1 else c for i, (c, w) in enumerate(zip(r, widths)))
            for r in cells[1:]]
    return "\n".join(out)


def run(base: str, bus: Any) -> None:
    started = time.perf_counter()
    print("\n1. Findings arrive from three sources\n")
    ingests = [
        ("Celonis event subscription (AP invoices blocked)", "findings/celonis",
         SAMPLES / "celonis-ap-invoice-blocked.json", {}, "application/json"),
        ("Process Mining refresh trigger (O2C deliveries at risk)", "findings/process-mining",
         SAMPLES / "process-mining-o2c-sla.json",
         {"processArea": "order-to-cash", "deviationPattern": "delivery-sla-at-risk",
          "businessRule": "Delivery later than promised", "caseKeyAttribute": "orderId",
          "metricUnit": "days", "costOfDelayPerDay": "150"}, "application/json"),
        ("Process Mining designer CSV (O2C SLA breached)", "findings/process-mining",
         SAMPLES / "process-mining-o2c-breached.csv",
         {"processArea": "order-to-cash", "deviationPattern": "delivery-sla-breached",
          "caseKeyAttribute": "orderId", "metricUnit": "days", "costOfDelayPerDay": "150"}, "text/csv"),
        ("CRM export, normalized (lead routing)", "findings", SAMPLES / "crm-leads.json", {}, "application/json"),
    ]
    rows = []
    for label, route, path, params, kind in ingests:
        t = time.perf_counter()
        body = _post(base, route, path, params, kind)
        rows.append([label, body["accepted"], body["duplicates"], body.get("skipped", 0),
                     f"{(time.perf_counter() - t) * 1000:.0f} ms"])
    print(_table(rows, ["source", "accepted", "duplicates", "skipped", "time"]))

    print("\n2. The same Celonis events delivered again (at-least-once delivery) change nothing\n")
    again = _post(base, "findings/celonis", SAMPLES / "celonis-ap-invoice-blocked.json", {})
    print(f"   accepted {again['accepted']}, duplicates {again['duplicates']}")

    print("\n3. Garbage gets a precise answer, and nothing of the batch is stored\n")
    bad = json.loads((SAMPLES / "crm-leads.json").read_text())[:3]
    bad[1]["detectedAt"] = "last tuesday"
    del bad[2]["caseKey"]
    r = requests.post(f"{base}/findings", json=bad)
    problem = r.json()
    print(f"   {r.status_code} {problem['title']}: {problem['detail']}")
    for e in problem["errors"]:
        print(f"     {e.get('pointer')}: {e['detail']}")

    bus.wait_idle(30)
    print("\n4. The ranked backlog (GET /api/opportunities?top=10), triaged by the triage agent\n")
    page = requests.get(f"{base}/opportunities", params={"top": 10}).json()
    rows = [[f"{o['scores']['priority']:,.0f}", o["status"], f"{o['processArea']}/{o['deviationPattern']}",
             o["caseKey"], o["scores"]["actionId"] or "(no action: manual)", o["source"]] for o in page["items"]]
    print(_table(rows, ["priority", "status", "processArea/pattern", "case", "candidate action", "source"]))
    top = requests.get(f"{base}/opportunities/{page['items'][0]['id']}").json()
    print(f"\n   Why #1 ranks first: {top['rationale']}")

    print("\n5. This week's review (GET /api/backlog): commit to the top items\n")
    groups = requests.get(f"{base}/backlog").json()["items"]
    rows = [[f"{g['processArea']}/{g['deviationPattern']}", g["cases"], f"{g['totalImpact']:,.0f}",
             f"{g['meanPriority']:,.0f}", g["actionId"] or "-", ", ".join(f"{k} {v}" for k, v in g["statusCounts"].items())]
            for g in groups]
    print(_table(rows, ["group", "cases", "impact", "mean priority", "action", "statuses"]))
    total = sum(g["cases"] for g in groups)
    print(f"\n{total} opportunities from 4 sources, deduplicated, scored and triaged in "
          f"{time.perf_counter() - started:.1f} s. Next: the planner and executor act on them "
          "(see README, 'What happens next').")


def main() -> None:
    configure_logging("WARNING")
    with Azurite(free_port(), location=None) as azurite:
        host = boot(0, {"TABLES_CONNECTION": azurite.connection_string, "TABLE_PREFIX": "demo"})
        try:
            print(f"closedloop demo: local host on {host.base_url}, Azurite on port {azurite.table_port}")
            run(host.base_url, host.bus)
        finally:
            host.stop()


if __name__ == "__main__":
    main()
