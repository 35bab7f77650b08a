"""`make demo`: findings from three miners go through the whole loop on the local host, and it prints
what was done, held out, sent for approval, failed and rolled back.

Runs on the embedded default: Azurite (in memory, its own port), the in-process bus, the local host,
and the sandbox child flows (with a few 429s and 5xx, and a lead router that misbehaves today).
"""
from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from .azurite import Azurite, free_port
from .boot import REPO, boot, configure_logging

SAMPLES = REPO / "samples"
USE_CASES = {"accounts-payable": "AP exceptions", "lead-management": "Lead routing",
             "order-to-cash": "Order-to-cash SLA"}
COLUMNS = [("verified", "done"), ("control", "held out"), ("awaiting_approval", "for approval"),
           ("rejected", "rejected"), ("needs_data", "needs data"), ("needs_review", "for review"),
           ("failed", "failed"), ("compensated", "rolled back"), ("executing", "next slot")]
# The sandbox's approval flow plays the approver: it approves amounts up to 500 and rejects the rest.
APPROVER = {"id": "ap-lead", "name": "ap.lead@contoso.example", "roles": ["AP.Approver", "O2C.Approver"]}
O2C = {"caseKeyAttribute": "orderId", "metricUnit": "days", "costOfDelayPerDay": "150"}
SOURCES = [
    ("Celonis event subscription (AP invoices blocked)", "findings/celonis", "celonis-ap-invoice-blocked.json", {},
     "application/json"),
    ("ERP export, normalized (AP price variances)", "findings", "erp-price-variance.json", {}, "application/json"),
    ("Process Mining refresh trigger (O2C deliveries at risk)", "findings/process-mining",
     "process-mining-o2c-sla.json", {"processArea": "order-to-cash", "deviationPattern": "delivery-sla-at-risk",
                                     "businessRule": "Delivery later than promised", **O2C}, "application/json"),
    ("Process Mining designer CSV (O2C SLA breached)", "findings/process-mining", "process-mining-o2c-breached.csv",
     {"processArea": "order-to-cash", "deviationPattern": "delivery-sla-breached", **O2C}, "text/csv"),
    ("CRM export, normalized (lead routing)", "findings", "crm-leads.json", {}, "application/json"),
]


def _post(base: str, route: str, name: str, params: dict[str, str], kind: str = "application/json") -> dict:
    r = requests.post(f"{base}/{route}", data=(SAMPLES / name).read_bytes(), params=params,
                      headers={"content-type": kind, "x-correlation-id": f"demo-{Path(name).stem}"})
    if r.status_code != 202:
        raise SystemExit(f"{route} answered {r.status_code}: {r.text}")
    return r.json()


def _table(rows: list[list[Any]], headers: list[str]) -> str:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells[1:]]
    return "\n".join("   " + line for line in out)


def _all(base: str) -> list[dict]:
    items, token = [], None
    while True:
        params = {"top": 200, **({"continuationToken": token} if token else {})}
        page = requests.get(f"{base}/opportunities", params=params).json()
        items += page["items"]
        token = page["continuationToken"]
        if not token:
            return items


def run(base: str, bus: Any, sandbox: Any) -> None:
    started = time.perf_counter()
    print("\n1. Findings arrive from three miners and an ERP/CRM export\n")
    rows = []
    for label, route, name, params, kind in SOURCES:
        t = time.perf_counter()
        body = _post(base, route, name, params, kind)
        rows.append([label, body["accepted"], body["duplicates"], body.get("skipped", 0),
                     f"{(time.perf_counter() - t) * 1000:.0f} ms"])
    print(_table(rows, ["source", "accepted", "duplicates", "skipped (OK)", "time"]))
    again = _post(base, "findings/celonis", "celonis-ap-invoice-blocked.json", {})
    print(f"\n   The Celonis events delivered again: accepted {again['accepted']}, duplicates {again['duplicates']}.")
    bad = json.loads((SAMPLES / "crm-leads.json").read_text())[:3]
    bad[1]["detectedAt"] = "last tuesday"
    del bad[2]["caseKey"]
    problem = requests.post(f"{base}/findings", json=bad).json()
    print(f"   A batch with two bad findings: {problem['status']} {problem['detail']}")
    for e in problem["errors"]:
        print(f"     {e.get('pointer')}: {e['detail']}")
    ingested = time.perf_counter()

    print("\n2. The agents work the backlog: triage → plan → execute (child flows) → verify\n")
    items = _settle(base, bus)
    settled = time.perf_counter()
    counts: dict[str, Counter] = {}
    for o in items:
        counts.setdefault(o["processArea"], Counter())[o["status"]] += 1
    rows = [[USE_CASES.get(area, area)] + [c[s] for s, _ in COLUMNS] + [sum(c.values())]
            for area, c in sorted(counts.items())]
    total = Counter()
    for c in counts.values():
        total.update(c)
    rows.append(["all"] + [total[s] for s, _ in COLUMNS] + [sum(total.values())])
    print(_table(rows, ["use case"] + [label for _, label in COLUMNS] + ["total"]))
    if total["executing"]:
        print(f"\n   next slot: {total['executing']} case(s) touch a record already changed today; the action's "
              "one-change-per-entity-per-day limit holds them until tomorrow (a scheduled message, no polling).")
    latency = [(datetime.fromisoformat(o["updatedAt"]) - datetime.fromisoformat(o["createdAt"])).total_seconds()
               for o in items if o["status"] in ("verified", "compensated")]
    if latency:
        print(f"\n   Finding to verified outcome: median {statistics.median(latency):.2f} s, "
              f"slowest {max(latency):.2f} s (it includes flows that answered 429 and 5xx and were retried).")
    stats = sandbox.stats()
    calls = stats["responses"]
    print(f"   Child-flow calls: {sum(calls.values())} ({', '.join(f'{n}× {c}' for c, n in sorted(calls.items()))}); "
          f"side effects applied: {sum(stats['effects'].values())}, each exactly once.")

    print("\n3. What changed in the system of record, with evidence\n")
    verified = next(o for o in items if o["status"] == "verified" and o["processArea"] == "lead-management")
    detail = requests.get(f"{base}/opportunities/{verified['id']}").json()
    x = detail["executions"][0]
    print(f"   {detail['caseKey']}: {x['actionId']} v{x['actionVersion']} (confidence {detail['plan']['confidence']}) "
          f"{x['status']}: {x['message']}")
    for label, after in (x["evidence"].get("after") or {}).items():
        before = (x["evidence"].get("before") or {}).get(label)
        if not before:
            print(f"     {label} {after.get('id')} created: " +
                  ", ".join(f"{k} {v!r}" for k, v in after.items() if k != "id"))
            continue
        changed = {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}
        print(f"     {label} {after.get('id')}: " + ", ".join(f"{k} {a!r} → {b!r}" for k, (a, b) in changed.items()))
    rolled = next((o for o in items if o["status"] == "compensated"), None)
    if rolled:
        detail = requests.get(f"{base}/opportunities/{rolled['id']}").json()
        print(f"\n   {detail['caseKey']} was rolled back. Its audit trail:")
        for a in detail["audit"]:
            print(f"     {a['at'][11:23]}  {a['actor']:<9} {a['event']:<18} {a['reason'][:90]}")

    print("\n4. This week's review (GET /api/backlog): commit to the top items\n")
    groups = requests.get(f"{base}/backlog").json()["items"]
    rows = [[f"{g['processArea']}/{g['deviationPattern']}", g["cases"], f"{g['totalImpact']:,.0f}",
             f"{g['meanPriority']:,.0f}", g["actionId"] or "-"] for g in groups]
    print(_table(rows, ["group", "cases", "impact", "mean priority", "action"]))
    incidents = requests.get(f"{base}/incidents").json()["items"]
    print(f"\n{len(items)} opportunities from 5 sources: ingested in {ingested - started:.1f} s, the loop settled "
          f"{settled - ingested:.1f} s later; {len(incidents)} incident(s) for people (GET /api/incidents); "
          f"approval cards went to the sandbox's approval flow, which answered as {APPROVER['name']} "
          f"(approves amounts up to 500); data and review cards are in the outbox folder.")


def _settle(base: str, bus) -> list:
    """Wait for the agents and the approver's answers; work a rate limit put off till tomorrow (a message
    scheduled a day out) does not hold the demo up."""
    deadline = time.monotonic() + 50
    while True:
        bus.wait_idle(max(0.1, deadline - time.monotonic()), include_scheduled=False)
        items = _all(base)
        soon = bus.next_due()
        waiting = any(o["status"] in ("awaiting_approval", "approved") for o in items)
        if (not waiting and (soon is None or soon > 30)) or time.monotonic() > deadline:
            return items
        time.sleep(0.1)


def main() -> None:
    configure_logging("ERROR")
    outbox = Path(tempfile.mkdtemp(prefix="closedloop-outbox-"))
    knobs = {"seed": 11, "throttle_rate": 0.08, "throttle_retry_after": 1, "failure_rate": 0.05,
             "breach_actions": {"leads.reassign"}, "approver": APPROVER}
    with Azurite(free_port(), location=None) as azurite:
        host = boot(0, {"TABLES_CONNECTION": azurite.connection_string, "TABLE_PREFIX": "demo",
                        "OUTBOX_DIR": str(outbox)}, sandbox="process", sandbox_knobs=knobs,
                    approvals_via_sandbox=True)
        try:
            print(f"closedloop demo: local host {host.base_url}, Azurite on port {azurite.table_port}, "
                  f"sandbox flows {host.sandbox.base_url} (8% 429s, 5% 5xx; leads.reassign leaves leads unowned)")
            run(host.base_url, host.bus, host.sandbox)
            print(f"Outbox: {outbox}")
        finally:
            host.stop()


if __name__ == "__main__":
    main()
