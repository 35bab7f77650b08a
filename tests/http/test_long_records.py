"""Records longer than one Azure Tables property: what a flow reports is kept whole, over real Azurite."""
import requests

from tests.conftest import hosted, settle
from tests.factories import treated_case


def test_evidence_longer_than_a_table_property_is_recorded_and_the_case_verified(azurite):
    lead = treated_case("LONG", "lead-management", "leads.reassign")
    # ~22,000 characters of notes in the lead, before and after: ~44,000 in the evidence (a Tables
    # property holds 64 KiB of UTF-16, and astral characters take two units each).
    notes = "Kundenhistorie 😀 " * 1_300
    with hosted(azurite) as server:
        server.sandbox.records.put("lead", {"id": lead, "region": "EMEA", "ownerId": None, "escalated": False,
                                            "notes": notes})
        base = server.base_url
        r = requests.post(f"{base}/findings", json={
            "eventId": "long-1", "processArea": "lead-management", "deviationPattern": "lead-unassigned",
            "caseKey": lead, "detectedAt": "2026-11-20T08:00:00Z",
            "attributes": {"leadId": lead, "region": "EMEA"}})
        assert r.status_code == 202
        [opp] = r.json()["opportunities"]
        settle(server)
        body = requests.get(f"{base}/opportunities/{opp['id']}").json()
        assert body["status"] == "verified", body["history"]
        [x] = [x for x in body["executions"] if x["kind"] == "action"]
        assert x["evidence"]["before"]["lead"]["notes"] == notes
        assert x["evidence"]["after"]["lead"]["notes"] == notes and x["evidence"]["after"]["lead"]["ownerId"]
