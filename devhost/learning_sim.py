"""The learning loop, end to end on the local host: three actions with known true effects (one helps, one does
nothing, one harms) go through ingest, the agents, outcomes and one sweep; then what the loop learned is read back.

The miners predict the same thing for all three: 3 days off the cycle time (kpiImpact cycle_time_days −3 d,
150 EUR). The truth, on the cases each action ran on: leads.reassign −2 days (it helps, 2/3 of what was
expected), leads.escalate 0 (it does nothing), o2c.open-case +2 days (it harms). Both lead actions ramp (50%, then
all cases). `run()` returns the figures; tests/http/test_learning_loop.py asserts them and `make bench` records
them (bench figure `learning`).
"""
from __future__ import annotations

import json
import random
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from .boot import REPO

TRUTH = {"leads.reassign": -2.0, "leads.escalate": 0.0, "o2c.open-case": +2.0}
EXPECTED = -3.0
KPI = {"metric": "cycle_time_days", "estimate": 3, "unit": "days", "costOfDelayPerDay": 50}
# (action, processArea, pattern, case key prefix, attributes its contract needs)
ARMS = [("leads.reassign", "lead-management", "lead-unassigned", "SU", {"region": "EMEA"}),
        ("leads.escalate", "lead-management", "lead-sla-breach", "SB", {"ownerId": "carla"}),
        ("o2c.open-case", "order-to-cash", "delivery-sla-at-risk", "SO", {"customerId": "C-7"})]
ENTITY = {"lead-management": "leadId", "order-to-cash": "orderId"}
RAMPED = ("leads.reassign", "leads.escalate")


def catalog(folder: Path) -> Path:
    """The repo catalog with a 30% holdout on the three actions, a 50% → 100% ramp on the lead actions (widened
    after 5 clean executions), 20 cases per cohort to measure and judge harm, 40 to call an effect null."""
    shutil.copytree(REPO / "catalog", folder, dirs_exist_ok=True)
    for path in (folder / "actions").glob("*.json"):
        doc = json.loads(path.read_text())
        if doc["id"] in TRUTH:
            doc["holdoutPercent"] = 30
            if doc["id"] in RAMPED:
                doc["ramp"] = [50, 100]
            path.write_text(json.dumps(doc))
    policy = json.loads((folder / "policy.json").read_text())
    policy["measurement"]["minSamples"] = 20
    policy["measurement"]["primary"] = {"*": "cycle_time_days"}
    policy["learning"] = {"harmMinCases": 20, "nullAfterCases": 40}
    policy["rampPromoteAfter"] = 5
    (folder / "policy.json").write_text(json.dumps(policy))
    return folder


def findings(prefix: str, n: int) -> list[dict[str, Any]]:
    """n findings per action's pattern, all predicting the same: 3 days faster."""
    out = []
    for _, area, pattern, key, attributes in ARMS:
        for i in range(n):
            case = f"{prefix}{key}-{i:04d}"
            out.append({"eventId": f"{prefix}{key}-{i}", "processArea": area, "deviationPattern": pattern,
                        "caseKey": case, "detectedAt": "2026-11-20T08:00:00Z", "kpiImpact": KPI,
                        "attributes": {ENTITY[area]: case, **attributes}})
    return out


def _all(base: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        params: dict[str, str] = {"top": "200", "state": "all", **({"continuationToken": token} if token else {})}
        page = requests.get(f"{base}/opportunities", params=params, timeout=30).json()
        out += page["items"]
        token = page["continuationToken"]
        if not token:
            return out


def outcomes(cases: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Cycle time ~ N(9, 2) days two days after the finding, the action's true effect added where it ran."""
    rng = random.Random(seed)
    out = []
    for c in sorted(cases, key=lambda c: c["caseKey"]):
        ran = (c.get("arm") or {}).get("actionId")  # one candidate per pattern here: the arm is what ran
        acted = c["status"] in ("verified", "executed", "compensated", "closed") and ran in TRUTH
        effect = TRUTH[ran] if acted and ran else 0.0
        out.append({"processArea": c["processArea"], "caseKey": c["caseKey"], "metric": "cycle_time_days",
                    "value": round(rng.gauss(9.0, 2.0) + effect, 3),
                    "observedAt": (datetime.fromisoformat(c["createdAt"]) + timedelta(days=2)).isoformat()})
    return out


def _priorities(base: str, prefix: str) -> dict[str, dict[str, Any]]:
    """The probe case of each action's pattern: its priority and rationale, by action."""
    by_key = {c["caseKey"]: c for c in _all(base) if c["caseKey"].startswith(prefix)}
    out = {}
    for action, _, _, key, _ in ARMS:
        c = by_key[f"{prefix}{key}-0000"]
        full = requests.get(f"{base}/opportunities/{c['id']}", timeout=30).json()
        out[action] = {"priority": full["scores"]["priority"], "impact": full["scores"]["impact"],
                       "rationale": full["rationale"]}
    return out


def run(host: Any, n: int = 150, seed: int = 21) -> dict[str, Any]:
    """The simulation on a booted local host (its catalog from `catalog()`); the figures of what it learned."""
    from shared.runtime import services
    from shared.services import autonomy, ramp

    from .boot import settle

    base = host.base_url
    host.run_timer("sweep")  # the ramps start counting
    requests.post(f"{base}/findings", json=findings("B", 1), timeout=60).raise_for_status()  # probes, before
    requests.post(f"{base}/findings", json=findings("", n), timeout=120).raise_for_status()
    settle(host)
    cases = [c for c in _all(base) if not c["caseKey"].startswith("B")]
    observed = outcomes(cases, seed)
    for start in range(0, len(observed), 2000):
        requests.post(f"{base}/outcomes", json=observed[start:start + 2000], timeout=120).raise_for_status()
    before = _priorities(base, "B")
    host.run_timer("sweep")  # one sweep: learn, then the ramps
    svc = services()
    beat = svc.coordination.state("sweep") or {}
    learned = requests.get(f"{base}/learning", timeout=60).json()
    requests.post(f"{base}/findings", json=findings("A", 1), timeout=60).raise_for_status()  # probes, after
    settle(host)
    after = _priorities(base, "A")
    frozen = autonomy.current(svc, fresh=True).frozenActions
    out: dict[str, Any] = {"cases": len(cases), "sweepFailed": beat.get("failed", []), "frozen": sorted(frozen),
                           "actions": {}}
    for action, _, pattern, _, _ in ARMS:
        [item] = [i for i in learned["items"] if i["actionId"] == action and i["deviationPattern"] == pattern
                  and i["metric"] == "cycle_time_days"]
        cal = item.get("calibration") or {}
        current = svc.catalog.actions[action]
        out["actions"][action] = {
            "truth": TRUTH[action], "trueRatio": TRUTH[action] / EXPECTED,
            "verdict": (item.get("verdict") or {}).get("verdict"), "n": item["n"],
            "measured": item.get("measured"), "ratio": cal.get("ratio"), "factor": cal.get("factor"),
            "rampShare": ramp.share(svc, current) if current.ramp else None,
            "priorityBefore": before[action]["priority"], "priorityAfter": after[action]["priority"],
            "rationaleAfter": after[action]["rationale"]}
    flagged = requests.get(f"{base}/insights", timeout=60).json()["learningFlags"]
    out["insightsFlags"] = sorted((f["actionId"], f["verdict"]) for f in flagged)
    order = sorted(out["actions"], key=lambda a: -out["actions"][a]["priorityAfter"])
    out["orderBefore"] = sorted(out["actions"], key=lambda a: -out["actions"][a]["priorityBefore"])
    out["orderAfter"] = order
    return out


def main(n: int = 150, seed: int = 21) -> dict[str, Any]:
    """Boot Azurite and a local host on the simulation's catalog, run it, and return the figures."""
    from .azurite import Azurite, free_port
    from .boot import boot

    folder = Path(tempfile.mkdtemp(prefix="closedloop-learning-"))
    try:
        with Azurite(free_port(), location=None) as azurite:
            host = boot(0, {"TABLES_CONNECTION": azurite.connection_string, "TABLE_PREFIX": "learnsim",
                            "INGEST_API_KEY": "", "OUTBOX_DIR": str(folder / "outbox"),
                            "CATALOG_DIR": str(catalog(folder / "catalog"))}, scheduled=False)
            try:
                return run(host, n, seed)
            finally:
                host.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
