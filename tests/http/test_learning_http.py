"""The loop learns, on the local host over real Azurite: findings with a named KPI impact, the agents at work,
outcomes with a known effect, one sweep; then GET /api/learning shows expected vs measured with a calibration
whose interval covers the true ratio, priorities carry the factor (new findings and open ones rescored), and a
harmful action is frozen in that sweep with one escalation."""
import json
import random
import re
import shutil
import subprocess
from datetime import datetime, timedelta

import pytest
import requests

from shared.api.openapi import document
from tests.conftest import ROOT, hosted, settle

N = 150
HELP, EXPECT = -2.0, -3.0  # leads.reassign saves 2 days on the cases it ran on; the miners expected 3
HARM = +2.0  # leads.escalate adds 2 days to every case drawn into treatment
KPI = {"metric": "cycle_time_days", "estimate": 3, "unit": "days", "costOfDelayPerDay": 50}
REPORTED = 150.0  # 3 days × 50 a day


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory):
    """The repo catalog with a 30% holdout on both lead actions and a 20-case minimum."""
    folder = tmp_path_factory.mktemp("catalog")
    shutil.copytree(ROOT / "catalog", folder, dirs_exist_ok=True)
    for name in ("leads.reassign", "leads.escalate"):
        path = folder / "actions" / f"{name}.v1.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "holdoutPercent": 30}))
    policy = json.loads((folder / "policy.json").read_text())
    policy["measurement"]["minSamples"] = 20
    (folder / "policy.json").write_text(json.dumps(policy))
    return folder


def findings(pattern, prefix, n, attributes):
    return [{"eventId": f"{prefix}-{i}", "processArea": "lead-management", "deviationPattern": pattern,
             "caseKey": f"{prefix}-{i:04d}", "detectedAt": "2026-11-20T08:00:00Z", "kpiImpact": KPI,
             "attributes": {"leadId": f"{prefix}-{i:04d}", **attributes}} for i in range(n)]


def cases(base, pattern):
    out, token = [], None
    while True:
        page = requests.get(f"{base}/opportunities", params={"top": 200, "deviationPattern": pattern,
                                                              **({"continuationToken": token} if token else {})})
        out += page.json()["items"]
        token = page.json()["continuationToken"]
        if not token:
            return out


def outcomes(found, rng, effect, acted_only):
    """Cycle time ~ N(9, 2) days, `effect` more on the cases the agent acted on (acted_only) or on every case
    drawn into treatment."""
    out = []
    for c in found:
        hit = c["status"] in ("verified", "executed", "compensated") if acted_only else c["cohort"] == "treated"
        out.append({"processArea": c["processArea"], "caseKey": c["caseKey"], "metric": "cycle_time_days",
                    "value": round(rng.gauss(9.0, 2.0) + (effect if hit else 0.0), 3),
                    "observedAt": (datetime.fromisoformat(c["createdAt"]) + timedelta(days=2)).isoformat()})
    return out


@pytest.fixture(scope="module")
def learned(azurite, catalog_dir, tmp_path_factory):
    """A host whose agents worked 150 unassigned and 150 SLA-breached leads, with outcomes, before one sweep."""
    outbox = tmp_path_factory.mktemp("outbox")
    with hosted(azurite, CATALOG_DIR=str(catalog_dir), OUTBOX_DIR=str(outbox)) as server:
        base = server.base_url
        # Case keys whose draws sit near the 30% share (47 and 40 of 150 in control): keys drawing 62 of 150
        # ("LU-") are 3 standard deviations out, near the sample-ratio check's p < 0.001 line, which is not this
        # test's subject.
        body = findings("lead-unassigned", "UN", N, {"region": "EMEA"}) + \
            findings("lead-sla-breach", "SB", N, {"ownerId": "carla"}) + \
            findings("lead-unassigned", "LW", 6, {})  # no region: these wait for data, open
        assert requests.post(f"{base}/findings", json=body).status_code == 202
        settle(server)
        helped, harmed = cases(base, "lead-unassigned"), cases(base, "lead-sla-breach")
        waiting = [c for c in helped if c["caseKey"].startswith("LW") and c["status"] == "needs_data"]
        helped = [c for c in helped if c["caseKey"].startswith("UN")]
        rng = random.Random(21)
        observed = outcomes(helped, rng, HELP, True) + outcomes(harmed, rng, HARM, False)
        assert requests.post(f"{base}/outcomes", json=observed).status_code == 202
        before = {c["id"]: requests.get(f"{base}/opportunities/{c['id']}").json() for c in waiting}
        server.run_timer("sweep")
        yield server, outbox, before


def learning_report(server):
    r = requests.get(f"{server.base_url}/learning")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    return r.json()


def test_the_sweep_ran_its_learn_step(learned):
    from shared.runtime import services

    beat = services().coordination.state("sweep")
    assert "failed" not in beat and beat["learned"]["calibrations"] >= 1 and beat["learned"]["frozen"] == 1


def test_learning_shows_expected_beside_measured_and_a_ratio_whose_interval_covers_the_truth(learned):
    server, _, _ = learned
    report = learning_report(server)
    [item] = [i for i in report["items"] if i["actionId"] == "leads.reassign"
              and i["deviationPattern"] == "lead-unassigned" and i["metric"] == "cycle_time_days"]
    assert item["expected"]["change"] == EXPECT and item["expected"]["n"] >= 80
    assert item["measured"]["basis"] == "acted" and "ran on" in item["measured"]["population"]
    assert item["n"]["treated"] >= 80 and item["n"]["control"] >= 25 and item["primary"]
    m = item["measured"]
    assert m["ci"]["low"] <= HELP <= m["ci"]["high"]
    ratio = item["calibration"]["ratio"]
    assert ratio["low"] <= HELP / EXPECT <= ratio["high"] and ratio["high"] - ratio["low"] < 0.8
    assert 0 < item["calibration"]["factor"] < 1 and item["verdict"]["verdict"] == "helpful"
    assert item["srm"]["mismatch"] is False and item["srmAssigned"]["mismatch"] is False


def test_a_new_findings_priority_and_rationale_carry_the_factor(learned):
    server, _, _ = learned
    base = server.base_url
    factor = _factor(server)
    r = requests.post(f"{base}/findings", json=findings("lead-unassigned", "LN", 1, {"region": "EMEA"}))
    oid = r.json()["opportunities"][0]["id"]
    settle(server)
    opp = requests.get(f"{base}/opportunities/{oid}").json()
    assert opp["scores"]["impact"] == pytest.approx(REPORTED * factor, abs=0.01)
    assert f"= reported 150.00 × {factor:.2f}: leads.reassign v1 measured" in opp["rationale"]


def test_an_opportunity_open_before_the_sweep_was_rescored(learned):
    server, _, before = learned
    factor = _factor(server)
    assert before, "some findings without a region wait for data"
    for oid, was in before.items():
        now = requests.get(f"{server.base_url}/opportunities/{oid}").json()
        assert was["scores"]["impact"] == REPORTED and now["status"] == "needs_data"
        assert now["scores"]["impact"] == pytest.approx(REPORTED * factor, abs=0.01)
        assert now["scores"]["priority"] < was["scores"]["priority"] and f"× {factor:.2f}" in now["rationale"]
    events = learning_report(server)["policyEvents"]
    assert any(e["kind"] == "rescored" and e["deviationPattern"] == "lead-unassigned" and e["rescored"] >= len(before)
               for e in events)


def _factor(server):
    [item] = [i for i in learning_report(server)["items"] if i["actionId"] == "leads.reassign"
              and i["metric"] == "cycle_time_days"]
    return item["calibration"]["factor"]


def _harm_cards(outbox):
    return [p for p in outbox.iterdir() if "harm-leads.escalate-v1" in p.name and "-escalate-" in p.name]


def test_a_harmful_action_is_frozen_within_one_sweep_with_one_escalation(learned):
    server, outbox, _ = learned
    base = server.base_url
    autonomy = requests.get(f"{base}/autonomy").json()
    assert "leads.escalate" in autonomy["frozenActions"] and autonomy["reason"].startswith("harm: ")
    report = learning_report(server)
    [verdict] = [v for v in report["verdicts"] if v["actionId"] == "leads.escalate"]
    assert verdict["verdict"] == "harmful" and verdict["frozen"] and verdict["frozenByLearning"]
    assert re.search(r"cycle_time_days \+\d", verdict["why"])
    [event] = [e for e in report["policyEvents"] if e["kind"] == "freeze"]
    assert event["actionId"] == "leads.escalate" and event["evidence"] == verdict["why"]
    incidents = requests.get(f"{base}/incidents").json()["items"]
    assert [i["id"] for i in incidents].count("harm-leads.escalate-v1") == 1
    assert len(_harm_cards(outbox)) == 1
    server.run_timer("sweep")  # still harmful: no second freeze, no second card
    assert len(_harm_cards(outbox)) == 1
    assert [e["kind"] for e in learning_report(server)["policyEvents"]].count("freeze") == 1


def test_learning_is_in_the_openapi_document(learned):
    server, _, _ = learned
    op = document()["paths"]["/learning"]["get"]
    assert op["operationId"] == "GetLearning" and set(op["responses"]) >= {"200", "401", "503"}
    assert "/learning" in requests.get(f"{server.base_url}/openapi.json").json()["paths"]


def test_the_dashboard_shows_learning_and_roi_terms_as_what_they_are(learned):
    server, _, _ = learned
    page = requests.get(f"{server.base_url}/dashboard").text
    assert 'id="learning"' in page and "leads.reassign v1 · lead-unassigned · cycle_time_days" in page
    assert "frozen to approval" in page and "harmful" in page
    # An interval is never a single point: "[74, 74]" is shown as the exact (counted) figure it is.
    assert not [m for m in re.findall(r"\[(-?[\d,]+), (-?[\d,]+)\]", page) if m[0] == m[1]]
    assert "projection" in page and "(counted)" in page and "(measured, 95% CI)" in page


def test_the_dashboard_draws_the_learning_chart_in_headless_chromium(learned, tmp_path):
    from PIL import Image

    from shared.api.dashboard_page import LEARNING

    server, _, _ = learned
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed: make test installs it (scripts/ensure-chromium)"
    shot = tmp_path / "dashboard.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2400",
                    f"--screenshot={shot}", f"{server.base_url}/dashboard"],
                   check=True, capture_output=True, timeout=120)
    rgb = tuple(int(LEARNING[i:i + 2], 16) for i in (1, 3, 5))
    drawn = sum(1 for p in Image.open(shot).convert("RGB").get_flattened_data() if p == rgb)
    assert drawn >= 200, drawn  # the ratio's CI bars and dots, not a stray line


def test_with_the_store_down_learning_answers_503_with_retry_after(azurite):
    from tests.http.test_store_outage import assert_unavailable, own_azurite

    with own_azurite() as store, hosted(azurite, TABLES_CONNECTION=store.connection_string) as host:
        assert requests.get(f"{host.base_url}/learning").status_code == 200
        store.stop()
        r = requests.get(f"{host.base_url}/learning", timeout=120)
        assert_unavailable(r)
        assert r.headers["content-type"].startswith("application/problem+json")
