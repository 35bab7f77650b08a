"""Cards checked by the official adaptivecards library (Node) against schema 1.5, and against Teams' 28 KB."""
import json
import shutil
import subprocess

import pytest

from shared.domain import cards
from tests.conftest import ROOT

CASE = {"Case": "INV-1", "Process": "accounts-payable / price-variance", "Priority": "1,200", "Opportunity": "0" * 32}
PLAN = {"actionId": "ap.post-gl-adjustment", "actionVersion": 1,
        "parameters": {"invoiceId": "INV-1", "amount": 120.0, "glAccount": "6100"}}
LINKS = {"approve": "https://x.example/api/approvals/a?decision=approve&token=t",
         "reject": "https://x.example/api/approvals/a?decision=reject&token=t",
         "provide": "https://x.example/api/approvals/a?decision=provide&token=t"}


def events(card):
    node = shutil.which("node")
    assert node, "node is needed (it runs Azurite too)"
    out = subprocess.run([node, str(ROOT / "tests/js/validate_card.js")], input=json.dumps(card), text=True,
                         capture_output=True, check=True)
    return json.loads(out.stdout)["events"]


ALL = {
    "approve-submit": cards.approval_card("a", CASE, PLAN, "medium", "2/3 fields; medium risk"),
    "approve-links": cards.approval_card("a", CASE, PLAN, "medium", "why", LINKS),
    "enrich-submit": cards.enrich_card("a", CASE, "ap.request-missing-fields", ["vendorId", "missingFields"]),
    "enrich-links": cards.enrich_card("a", CASE, "ap.request-missing-fields", ["vendorId"], LINKS),
    "escalate": cards.escalation_card(CASE, "Watchdog breach: lead.ownerId is None", {"Action": "leads.reassign"},
                                      "https://x.example/api/opportunities/0"),
}


@pytest.mark.parametrize("kind", sorted(ALL))
def test_every_card_kind_is_valid_adaptive_card_1_5_under_the_teams_limit(kind):
    card = ALL[kind]
    assert card["version"] == "1.5"
    assert events(card) == []
    assert cards.size_ok(card)


def test_the_validator_does_report_a_broken_card():
    broken = {**ALL["enrich-submit"], "body": ALL["enrich-submit"]["body"] + [{"type": "Input.Text"}, {"type": "Nope"}]}
    messages = [e["message"] for e in events(broken)]
    assert any("unique Id" in m for m in messages) and any("Unknown element type" in m for m in messages)


def test_link_cards_carry_no_submit_actions_because_webhooks_cannot_take_them():
    for kind in ("approve-links", "enrich-links"):
        assert {a["type"] for a in ALL[kind]["actions"]} == {"Action.OpenUrl"}


def test_long_texts_are_clipped_so_a_card_stays_under_28_kb():
    huge = {f"field{i}": "x" * 5000 for i in range(60)}
    card = cards.approval_card("a", CASE, {**PLAN, "parameters": huge}, "medium", "y" * 50_000)
    assert cards.size_ok(card)


def test_many_non_latin_facts_still_fit_because_they_travel_as_six_byte_escapes():
    import json

    wide = {f"項目{i}": "請求書の説明" * 40 for i in range(40)}
    card = cards.escalation_card({**CASE, **{f"属性{i}": "値" * 200 for i in range(30)}}, "見出し" * 300, wide)
    assert len(json.dumps(card).encode()) <= cards.MAX_BYTES and events(card) == []
    [_, case_facts, details] = card["body"]
    assert len(details["facts"]) == cards.MAX_FACTS + 1 and details["facts"][-1]["value"] == "15 more in the app"
