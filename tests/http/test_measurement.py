"""Measurement on the local host: outcomes in over HTTP, impact, CSV, the weekly review and the dashboard,
on real Azurite with the sandbox's child flows."""
import csv
import io
import json
import random
import re
import subprocess
import shutil
from datetime import datetime, timedelta

import pytest
import requests

from tests.conftest import ROOT, hosted, settle

LEADS = 150
TRUE_EFFECT = -2.0  # days, on every case the agent acted on


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory):
    """The repo catalog with a 30% holdout on leads.reassign, 20-case minimum, ROI parameters and gaps at 5."""
    folder = tmp_path_factory.mktemp("catalog")
    shutil.copytree(ROOT / "catalog", folder, dirs_exist_ok=True)
    path = folder / "actions" / "leads.reassign.v1.json"
    doc = json.loads(path.read_text())
    doc["holdoutPercent"] = 30
    path.write_text(json.dumps(doc))
    policy = json.loads((folder / "policy.json").read_text())
    policy["measurement"] = {"minSamples": 20, "gapMinCases": 5,
                             "roi": {"leads.reassign": {"valuePerUnit": {"cycle_time_days": 40.0},
                                                        "handlingMinutes": 20, "hourlyCost": 45, "teamFte": 3}}}
    (folder / "policy.json").write_text(json.dumps(policy))
    return folder


@pytest.fixture(scope="module")
def measured(azurite, catalog_dir):
    """A host that worked 150 unassigned leads, and the cases as the API lists them afterwards."""
    with hosted(azurite, CATALOG_DIR=str(catalog_dir)) as server:
        base = server.base_url
        findings = [{"eventId": f"m-{i}", "processArea": "lead-management", "deviationPattern": "lead-unassigned",
                     "caseKey": f"LM-{i:04d}", "detectedAt": "2026-11-20T08:00:00Z",
                     "attributes": {"leadId": f"LM-{i:04d}", "region": "EMEA"}} for i in range(LEADS)]
        findings += [{"eventId": f"g-{i}", "processArea": "procurement", "deviationPattern": "maverick-buying",
                      "caseKey": f"PO-{i}", "detectedAt": "2026-11-20T08:00:00Z", "kpiImpact": 300.0}
                     for i in range(6)]
        assert requests.post(f"{base}/findings", json=findings).status_code == 202
        settle(server)
        cases = []
        token = None
        while True:
            page = requests.get(f"{base}/opportunities", params={"top": 200, "processArea": "lead-management",
                                                                 **({"continuationToken": token} if token else {})})
            cases += page.json()["items"]
            token = page.json()["continuationToken"]
            if not token:
                break
        body = _outcomes(cases, random.Random(11))
        body.append({"processArea": "lead-management", "caseKey": "NOT-A-CASE", "metric": "cycle_time_days",
                     "value": 3, "observedAt": "2026-11-21T00:00:00Z"})
        r = requests.post(f"{base}/outcomes", json=body)
        assert r.status_code == 202 and r.json()["accepted"] == len(body)
        yield server, cases, body


def _outcomes(cases, rng):
    """A known truth: cycle time ~ N(9, 2) days, 2 days less where the agent acted; a baseline week before."""
    out = []
    for c in cases:
        created = datetime.fromisoformat(c["createdAt"])
        acted = c["status"] in ("verified", "executed", "compensated", "closed")
        out.append({"processArea": c["processArea"], "caseKey": c["caseKey"], "metric": "cycle_time_days",
                    "value": round(rng.gauss(9.0, 2.0), 3), "observedAt": (created - timedelta(days=7)).isoformat()})
        out.append({"processArea": c["processArea"], "caseKey": c["caseKey"], "metric": "cycle_time_days",
                    "value": round(rng.gauss(9.0, 2.0) + (TRUE_EFFECT if acted else 0.0), 3),
                    "observedAt": (created + timedelta(days=2)).isoformat()})
    return out


def test_control_cases_never_reach_a_child_flow(measured):
    server, cases, _ = measured
    control = [c for c in cases if c["status"] == "control"]
    treated = [c for c in cases if c["status"] == "verified"]
    assert 25 <= len(control) <= 65 and len(treated) >= 80
    # The sandbox makes a lead record up on first reference: a control lead no flow ever touched has none.
    assert all(server.sandbox.record("lead", c["caseKey"]) is None for c in control)
    assert all(server.sandbox.record("lead", c["caseKey"])["ownerId"] for c in treated)


def test_outcomes_measure_the_known_effect_with_its_confidence_interval(measured):
    server, cases, body = measured
    base = server.base_url
    assert requests.post(f"{base}/outcomes", json=body).status_code == 202  # a redelivery changes nothing

    report = requests.get(f"{base}/kpis", params={"processArea": "lead-management"}).json()
    [e] = [e for e in report["items"] if e["actionId"] == "leads.reassign"]
    [m] = e["metrics"]
    acted = e["actedShare"]
    control = sum(c["status"] == "control" for c in cases)
    assert (m["treated"]["n"], m["control"]["n"]) == (LEADS - control, control)
    assert report["outcomes"] == len(body) and report["unmatchedOutcomes"] == 1
    # Intention to treat: the expected difference is the true effect times the share acted on.
    assert m["status"] == "ok" and m["ci"]["low"] <= TRUE_EFFECT * acted <= m["ci"]["high"]
    assert m["verdict"] == "better" and m["pValue"] < 0.01
    assert m["baseline"]["treated"]["n"] == LEADS - control and abs(m["baseline"]["treated"]["mean"] - 9.0) < 1.0
    assert all(re.fullmatch(r"\d{4}-W\d{2}", w["week"]) for w in m["weeks"])
    assert sum(w["treated"]["n"] for w in m["weeks"]) == m["treated"]["n"]
    # The effect on the cases the action ran on covers the true effect itself; the figures say whom they are about.
    verified = sum(c["status"] == "verified" for c in cases)
    assert m["acted"]["ci"]["low"] <= TRUE_EFFECT <= m["acted"]["ci"]["high"]
    assert m["acted"]["share"] == pytest.approx(verified / (LEADS - control), abs=1e-3)
    assert m["population"].startswith("every case drawn") and m["acted"]["population"].startswith("cases the action")
    assert "intention to treat" in report["method"] and m["se"] > 0 and m["expected"] is None  # no named KPI sent
    assert m["attribution"][0] == {"cohort": "treated", "actionId": "leads.reassign", "actionVersion": 1,
                                   "n": verified, "mean": m["attribution"][0]["mean"]}
    assert m["attribution"][-1]["cohort"] == "control" and m["attribution"][-1]["n"] == control
    assert m["srm"]["expectedControlShare"] == 0.3 and not m["srm"]["mismatch"] and not m["srmAssigned"]["mismatch"]
    roi = e["roi"]
    terms = {t["term"]: t for t in roi["terms"]}
    assert terms["costOfDelay"]["basis"] == "measured"
    assert terms["costOfDelay"]["value"] == pytest.approx(-m["acted"]["difference"] * verified * 40.0, rel=1e-3)
    # Low-risk reassignments: every verified lead was resolved with no person touching it.
    assert terms["deflection"]["basis"] == "counted" and terms["deflection"]["value"] == verified * 20 / 60 * 45
    assert terms["throughput"]["basis"] == "not_valued" and terms["leakage"]["basis"] == "not_valued"
    assert roi["total"]["value"] == pytest.approx(terms["costOfDelay"]["value"] + terms["deflection"]["value"])
    assert roi["total"]["low"] < roi["total"]["value"] < roi["total"]["high"] and roi["currency"] == "EUR"
    assert roi["annualized"]["label"].startswith("projection: ") and roi["period"]["weeks"] >= 1
    assert roi["period"]["days"] >= 0 and roi["total"]["label"] == "measured and counted terms"
    [portfolio] = report["portfolio"]
    assert portfolio["versions"] == len(report["items"]) and portfolio["currency"] == "EUR"
    assert portfolio["projected"] == len({e["actionId"] for e in report["items"] if e["roi"]})

    table = list(csv.DictReader(io.StringIO(requests.get(f"{base}/kpis.csv").text)))
    overall = next(row for row in table if row["actionId"] == "leads.reassign" and row["week"] == "all")
    assert float(overall["difference"]) == m["difference"] and overall["verdict"] == "better"
    assert float(overall["roiTotal"]) == roi["total"]["value"] and float(overall["actedDifference"]) == \
        m["acted"]["difference"]
    assert any(row["week"].startswith("20") for row in table)


def test_bad_outcomes_get_a_problem_naming_the_field_and_store_nothing(measured):
    server, _, _ = measured
    base = server.base_url
    before = requests.get(f"{base}/kpis").json()["outcomes"]
    r = requests.post(f"{base}/outcomes", json=[
        {"processArea": "lead-management", "caseKey": "LM-0001", "metric": "cycle_time_days", "value": 1,
         "observedAt": "2026-11-22T00:00:00Z"},
        {"processArea": "lead-management", "caseKey": "LM-0002", "metric": "cycle time", "value": "fast",
         "observedAt": "2026-11-22T00:00:00Z"}])
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert {e["pointer"] for e in r.json()["errors"]} == {"/1/metric", "/1/value"}
    assert requests.get(f"{base}/kpis").json()["outcomes"] == before
    assert requests.post(f"{base}/outcomes", data="{", headers={"content-type": "application/json"}).status_code == 400
    deep = "[" * 50_000 + "]" * 50_000  # deeper than Python's parser recurses: a 400, not a 500
    for route in ("outcomes", "findings", "approvals/x"):
        assert requests.post(f"{base}/{route}", data=deep, headers={"content-type": "application/json"}
                             ).status_code == 400, route
    assert requests.post(f"{base}/outcomes", data="a,b", headers={"content-type": "text/csv"}).status_code == 415
    assert requests.get(f"{base}/kpis", params={"actionVersion": "two"}).status_code == 422
    assert requests.get(f"{base}/insights", params={"days": "0"}).status_code == 422


def test_the_weekly_review_names_catalog_gaps_and_where_people_do_the_work(measured):
    server, _, _ = measured
    review = requests.get(f"{server.base_url}/insights").json()
    gap = next(g for g in review["catalogGaps"] if g["deviationPattern"] == "maverick-buying")
    assert gap["cases"] == 6 and gap["totalImpact"] == 1800.0
    assert set(review) >= {"weakActionVersions", "failureReasons", "watchdogFlags", "cardFeedback", "sentToPeople"}


def test_the_dashboard_is_one_self_contained_page(measured):
    server, _, _ = measured
    r = requests.get(f"{server.base_url}/dashboard")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    for section in ("throughput", "success", "effect", "roi"):
        assert f'id="{section}"' in page
    assert "leads.reassign v1 · cycle_time_days" in page


def _rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def test_the_dashboard_draws_its_charts_in_headless_chromium(measured, tmp_path):
    from PIL import Image

    from shared.api.dashboard_page import EFFECT, ROI, SUCCESS, THROUGHPUT

    server, _, _ = measured
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed: make test installs it (scripts/ensure-chromium)"
    shot = tmp_path / "dashboard.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1400",
                    f"--screenshot={shot}", f"{server.base_url}/dashboard"],
                   check=True, capture_output=True, timeout=120)
    image = Image.open(shot).convert("RGB")
    pixels = list(image.get_flattened_data())
    counts = {name: sum(1 for p in pixels if p == _rgb(colour))
              for name, colour in (("throughput", THROUGHPUT), ("success", SUCCESS), ("effect", EFFECT),
                                   ("roi", ROI))}
    # Each chart filled bars (or the CI bar and dot) in its own colour: hundreds of pixels, not a stray line.
    assert all(n >= 300 for n in counts.values()), counts


def test_the_sweep_freezes_each_experiments_baseline_once(measured):
    server, cases, _ = measured
    base = server.base_url
    live = _metric(requests.get(f"{base}/kpis").json())
    assert live["baseline"]["frozen"] is False
    server.run_timer("sweep")
    frozen = _metric(requests.get(f"{base}/kpis").json())["baseline"]
    assert frozen["frozen"] is True and frozen["at"]
    assert frozen["treated"] == live["baseline"]["treated"] and frozen["control"] == live["baseline"]["control"]
    # A late pre-period observation changes the live figures, not the snapshot taken at the start.
    control = next(c for c in cases if c["status"] == "control")
    late = {"processArea": control["processArea"], "caseKey": control["caseKey"], "metric": "cycle_time_days",
            "value": 400.0, "observedAt": (datetime.fromisoformat(control["createdAt"]) - timedelta(days=1)).isoformat()}
    assert requests.post(f"{base}/outcomes", json=late).status_code == 202
    from shared.runtime import services
    from shared.services.measure import snapshot_baselines

    snapshot_baselines(services(), "test", force=True)  # the hourly throttle aside, a snapshot is never redone
    assert _metric(requests.get(f"{base}/kpis").json())["baseline"] == frozen


def _metric(report):
    [e] = [e for e in report["items"] if e["actionId"] == "leads.reassign"]
    return e["metrics"][0]
