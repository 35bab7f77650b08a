"""Echoes and recurrences on the local host (Azurite, the sandbox's child flows): a lead reported in a miner's own
words is mapped, worked to verified, echoed, then comes back; the opportunity, insights and KPIs read it back."""
import json
import shutil
from datetime import UTC, datetime, timedelta

import requests

from tests.conftest import ROOT, hosted, settle
from tests.factories import treated_case


def test_a_verified_case_echoes_then_recurs_and_a_person_is_told_not_the_agent(azurite, tmp_path):
    case = treated_case("LD-RC", "lead-management", "leads.reassign")
    now = datetime.now(UTC)

    def finding(event: str, detected: datetime) -> dict:
        # A miner's names: "sales" / "no-owner" are catalog/aliases.json's for lead-management / lead-unassigned.
        return {"eventId": event, "source": "celonis", "processArea": "sales", "deviationPattern": "no-owner",
                "caseKey": case, "detectedAt": detected.isoformat(),
                "attributes": {"leadId": case, "region": "EMEA"}}

    # The host runs on the real clock and refuses findings detected more than 5 minutes after it, so the day after
    # the action cannot be sent: an echo window of one minute makes two minutes after the action "after the window".
    catalog = tmp_path / "catalog"
    shutil.copytree(ROOT / "catalog", catalog)
    policy = json.loads((catalog / "policy.json").read_text())
    (catalog / "policy.json").write_text(json.dumps({**policy, "echoWindowHours": 1 / 60}))
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    with hosted(azurite, OUTBOX_DIR=str(outbox), CATALOG_DIR=str(catalog)) as server:
        base = server.base_url
        first = requests.post(f"{base}/findings", json=finding("rc-1", now - timedelta(hours=1)), timeout=30)
        assert first.status_code == 202, first.text
        oid = first.json()["opportunities"][0]["id"]
        settle(server)
        opp = requests.get(f"{base}/opportunities/{oid}", timeout=30).json()
        assert (opp["status"], opp["processArea"], opp["deviationPattern"]) == \
            ("verified", "lead-management", "lead-unassigned")
        assert opp["reported"] == {"processArea": "sales", "deviationPattern": "no-owner"}
        revision, acted = opp["revision"], [h["at"] for h in opp["history"] if h["to"] == "executed"][-1]

        # The miner's next refresh still sees the lead unassigned: an echo of the action, and a redelivery of it.
        echo = requests.post(f"{base}/findings", json=finding("rc-2", datetime.fromisoformat(acted)), timeout=30)
        assert echo.json()["opportunities"][0]["outcome"] == "echo" and echo.json()["echoes"] == 1
        again = requests.post(f"{base}/findings", json=finding("rc-2", datetime.fromisoformat(acted)), timeout=30)
        assert again.json()["opportunities"][0]["outcome"] == "duplicate"

        # After the window, the lead is unassigned again: a recurrence.
        back = datetime.fromisoformat(acted) + timedelta(minutes=2)
        recur = requests.post(f"{base}/findings", json=finding("rc-3", back), timeout=30)
        assert recur.json()["opportunities"][0]["outcome"] == "recurrence" and recur.json()["recurrences"] == 1
        settle(server)
        opp = requests.get(f"{base}/opportunities/{oid}", timeout=30).json()
        assert opp["status"] == "verified" and opp["echoes"] == 1 and opp["recurrences"] == [back.isoformat()]
        assert opp["revision"] == revision + 1  # the recurrence; the echo changed no revision
        assert len([x for x in opp["executions"] if x["kind"] == "action"]) == 1  # the agent did not act again

        [card] = [p for p in outbox.iterdir() if oid in p.name and "-review-" in p.name]
        note = json.loads(card.read_text())
        assert "is back after leads.reassign v1 was verified" in note["subject"]

        wanted = {"actionId": "leads.reassign", "actionVersion": 1, "verified": 1, "recurred": 1,
                  "recurrenceRate": 1.0, "recurrences": 1, "echoes": 1}
        assert wanted in requests.get(f"{base}/insights", timeout=30).json()["recurrence"]
        assert wanted in requests.get(f"{base}/kpis", timeout=30).json()["recurrence"]
