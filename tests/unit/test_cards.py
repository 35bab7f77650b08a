"""Cards checked by the official adaptivecards library (Node) against schema 1.5, and against Teams' 28 KB."""
import itertools
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


# As the opportunity keeps them (shared/domain/opportunity.py `kpis`, `signals`).
KPIS = [{"metric": "cycle_time_days", "reported": "days_to_close", "estimate": 4.0, "unit": "days",
         "direction": "decrease", "change": -4.0},
        {"metric": "leakage_amount", "estimate": 1250.5, "unit": "EUR", "direction": "decrease", "change": -1250.5}]
SIGNALS = [{"name": "vendor", "value": "V300", "share": 0.34}, {"name": "plant", "value": "1010", "weight": 0.8},
           {"name": "blocked", "value": True}]
EVIDENCE = {"kpis": KPIS, "signals": SIGNALS}

ALL = {
    "approve-submit": cards.approval_card("a", CASE, PLAN, "medium", "2/3 fields; medium risk", **EVIDENCE),
    "approve-links": cards.approval_card("a", CASE, PLAN, "medium", "why", LINKS, **EVIDENCE),
    "enrich-submit": cards.enrich_card("a", CASE, "ap.request-missing-fields", ["vendorId", "missingFields"],
                                       **EVIDENCE),
    "enrich-links": cards.enrich_card("a", CASE, "ap.request-missing-fields", ["vendorId"], LINKS, **EVIDENCE),
    "escalate": cards.escalation_card(CASE, "Watchdog breach: lead.ownerId is None", {"Action": "leads.reassign"},
                                      "https://x.example/api/opportunities/0", **EVIDENCE),
    "approve-plain": cards.approval_card("a", CASE, PLAN, "medium", "no kpis, no signals"),
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
    [_, _, details] = card["body"]
    assert len(details["facts"]) == cards.MAX_FACTS + 1 and details["facts"][-1]["value"] == "15 more in the app"


def rendered(card):
    """Every TextBlock and Fact of the card as the official library renders its Markdown (markdown-it, linkify)."""
    node = shutil.which("node")
    assert node, "node is needed (it runs Azurite too)"
    assert (ROOT / "node_modules/markdown-it").is_dir(), "markdown-it is a devDependency: run npm ci"
    out = subprocess.run([node, str(ROOT / "tests/js/card_markdown.js")], input=json.dumps(card), text=True,
                         capture_output=True, check=True)
    doc = json.loads(out.stdout)
    assert doc["events"] == []
    return doc["texts"]


def as_text(html_):
    """What a person reads: tags dropped, entities decoded, the invisible word joiners removed."""
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", html_)).replace("\u2060", "").strip()


HOSTILE = ["[Approve now](https://evil.example/pay)", "<https://evil.example>", "https://evil.example/x?a=1",
           "www.evil.com", "see evil.com now", "**urgent** _now_", "# Heading", "- item", "1. item", "> quote",
           "a | b |", "`code`", "![img](https://evil.example/i.png)", "[x]: https://evil.example", "ana@contoso.com",
           "~~gone~~", "line one\n\n[two](https://evil.example)", "\\[escaped\\](https://evil.example)"]


def hostile_cards():
    case = {"Case": HOSTILE[0], "Process": f"{HOSTILE[1]} / {HOSTILE[2]}", "Priority": "1,200", "Opportunity": "0" * 32}
    params = {f"field{i}": value for i, value in enumerate(HOSTILE)} | {"[k](https://evil.example)": -120.5}
    plan = {"actionId": "[ap](https://evil.example)", "actionVersion": 1, "parameters": params,
            "summary": HOSTILE[3]}
    evidence = {"kpis": [{"metric": v, "reported": v, "unit": v, "change": -1.0} for v in HOSTILE[:10]],
                "signals": [{"name": v, "value": v, "share": 0.5} for v in HOSTILE]}
    return {
        "approve-submit": cards.approval_card("a", case, plan, HOSTILE[4], " ".join(HOSTILE), **evidence),
        "approve-links": cards.approval_card("a", case, plan, "medium", HOSTILE[0], LINKS, **evidence),
        "enrich-submit": cards.enrich_card("a", case, HOSTILE[0], ["vendorId", HOSTILE[2]], **evidence),
        "enrich-links": cards.enrich_card("a", case, "ap.request-missing-fields", [HOSTILE[0]], LINKS, **evidence),
        "escalate": cards.escalation_card(case, f"{HOSTILE[0]}: leads.reassign failed",
                                          {f"k{i}": v for i, v in enumerate(HOSTILE)},
                                          "https://x.example/api/opportunities/0", **evidence),
        "approve-plain": cards.approval_card("a", case, plan, "medium", HOSTILE[0]),
    }


@pytest.mark.parametrize("kind", sorted(ALL))
def test_no_data_value_on_a_card_renders_as_a_link_or_markup(kind):
    card = hostile_cards()[kind]
    assert events(card) == [] and cards.size_ok(card)
    texts = rendered(card)
    assert texts, "the card shows text"
    for t in texts:
        assert "<a " not in t["html"] and "<img" not in t["html"], t
        assert not any(tag in t["html"] for tag in ("<strong>", "<em>", "<h1>", "<li>", "<blockquote>", "<code>",
                                                    "<s>", "<table>")), t


def test_an_escaped_value_reads_as_exactly_its_own_text():
    card = cards.escalation_card({"Case": "INV-1"}, "headline", {f"k{i}": v for i, v in enumerate(HOSTILE)})
    shown = {t["where"]: as_text(t["html"]) for t in rendered(card)}
    values = [v for w, v in sorted(shown.items()) if w.startswith("body[2]") and w.endswith(".value")]
    assert sorted(values) == sorted(" ".join(v.split()) for v in HOSTILE)  # line breaks become spaces


def test_the_harness_does_see_a_link_when_a_card_has_one():
    raw = {"type": "AdaptiveCard", "version": "1.5", "body": [
        {"type": "TextBlock", "text": "[Approve now](https://evil.example)"},
        {"type": "FactSet", "facts": [{"title": "x", "value": "see https://evil.example/x"}]}]}
    assert all("<a href=" in t["html"] for t in rendered(raw) if t["where"] != "body[1].facts[0].title")


def test_the_apps_own_labels_and_signed_links_are_not_escaped():
    card = hostile_cards()["approve-links"]
    texts = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    assert "Proposed parameters" in texts and any(t.startswith("Risk: ") for t in texts)
    assert {a["url"] for a in card["actions"]} == {LINKS["approve"], LINKS["reject"]}
    assert next(b for b in card["body"] if b["type"] == "FactSet")["facts"][0]["title"] == "Case"


def test_a_clipped_value_never_ends_in_half_an_escape():
    card = cards.approval_card("a", CASE, PLAN, "medium", "[" * 5000)
    why = next(b["text"] for b in card["body"] if b["type"] == "TextBlock" and b["text"].startswith("Why: "))
    body = why.removesuffix("…")
    assert (len(body) - len(body.rstrip("\\"))) % 2 == 0


@pytest.mark.parametrize("kind", ["approve-submit", "approve-links", "enrich-submit", "enrich-links", "escalate"])
def test_a_card_showing_a_case_reads_its_expected_kpi_movements_and_root_cause_signals(kind):
    shown = [as_text(t["html"]) for t in rendered(ALL[kind])]
    pairs = list(itertools.pairwise(shown))
    assert "Expected KPI movement" in shown and "Root-cause signals" in shown
    assert ("cycle_time_days", "\u22124 days (reported as days_to_close)") in pairs
    assert ("leakage_amount", "\u22121,250.5 EUR") in pairs
    assert ("vendor", "= V300 (34 %)") in pairs and ("plant", "= 1010 (weight 0.8)") in pairs
    assert ("blocked", "= true") in pairs


def test_a_case_without_kpis_or_signals_shows_neither_heading():
    texts = [b.get("text") for b in ALL["approve-plain"]["body"]]
    assert "Expected KPI movement" not in texts and "Root-cause signals" not in texts


def test_the_most_evidence_a_finding_may_carry_still_fits_with_the_largest_plan():
    kpis = [{"metric": "m" * 64, "reported": "r" * 64, "estimate": 1e15, "unit": "u" * 16, "change": -1e15}] * 10
    signals = [{"name": "n" * 64, "value": "請" * 200, "share": 1.0}] * 20
    huge = {f"field{i}": "x" * 5000 for i in range(60)}
    card = cards.approval_card("a", CASE, {**PLAN, "parameters": huge}, "medium", "y" * 50_000, kpis=kpis,
                               signals=signals)
    assert cards.size_ok(card) and events(card) == []


def test_an_increase_without_a_computed_change_is_shown_from_its_estimate_and_direction():
    [_, facts] = cards.evidence([{"metric": "sla_met", "estimate": 5, "unit": "percent", "direction": "increase"}])
    [_, down] = cards.evidence([{"metric": "dso_days", "estimate": 3, "unit": "days", "direction": "decrease"}])
    assert facts["facts"][0]["value"] == "+5 percent" and down["facts"][0]["value"] == "\u22123 days"


def test_a_review_card_for_an_opportunity_shows_its_kpis_signals_and_the_names_it_was_reported_under():
    from dataclasses import replace

    from shared.services import notices
    from shared.services.ingest import ingest
    from tests.factories import finding, memory_services, validated

    svc = memory_services()
    [r] = ingest(svc, validated(finding()), "cid").results
    opp = replace(r.opportunity, kpis=KPIS, signals=SIGNALS, reported={"processArea": "AP"})
    note = notices.escalation(svc, "review", opp, "INV: look at this", {"reason": "a person decides"})
    card = note.details["cards"]["links"]
    assert events(card) == [] and cards.size_ok(card)
    shown = [as_text(t["html"]) for t in rendered(card)]
    assert "\u22124 days (reported as days_to_close)" in shown and "= V300 (34 %)" in shown
    assert "AP / invoice-missing-po" in shown and "Catalog gap" not in shown


def test_approval_and_enrichment_cards_show_the_cases_kpis_signals_and_reported_names():
    from dataclasses import replace

    from shared.services import approvals
    from shared.services.ingest import ingest
    from tests.factories import finding, memory_services, validated

    svc = memory_services()
    [r] = ingest(svc, validated(finding()), "cid").results
    opp = replace(r.opportunity, kpis=KPIS, signals=SIGNALS, reported={"deviationPattern": "missing-po-number"})
    plan = {"actionId": "ap.request-missing-fields", "actionVersion": 1, "parameters": {"invoiceId": "INV-1"}}
    _, approval = approvals.open_approval(svc, opp, plan, "low", "why", "cid")
    _, enrichment = approvals.open_enrichment(svc, opp, svc.catalog.actions["ap.request-missing-fields"],
                                              ["vendorId"], "cid")
    for card in (approval["cards"]["submit"], approval["cards"]["links"], enrichment["cards"]["submit"],
                 enrichment["cards"]["links"]):
        assert events(card) == [] and cards.size_ok(card)
        shown = [as_text(t["html"]) for t in rendered(card)]
        assert "\u22124 days (reported as days_to_close)" in shown and "= V300 (34 %)" in shown
        assert "accounts-payable / missing-po-number" in shown
