"""The review card: valid for the official adaptivecards parser, under 28 KB at the worst case, data escaped."""
import pytest

from shared.domain import cards, review_cards
from tests.unit.test_cards import CASE, EVIDENCE, HOSTILE, as_text, events, rendered

LINKS = {d: f"https://x.example/api/approvals/r/confirm?decision={d}&token=t"
         for d in ("run", "provide", "handover", "dismiss")}
LINKS |= {"helpful:yes": "https://x.example/f?helpful=yes", "helpful:no": "https://x.example/f?helpful=no"}


def candidate(i, fields=4, value="INV-1", locked=0):
    names = [f"field{i}_{n}" for n in range(fields)]
    return {"id": f"ap.action-{i}", "version": 1, "name": f"Action {i}", "riskTier": "medium",
            "approvalRole": "AP.Approver", "effortHours": 0.5, "prerequisites": ["vendor master maintained"],
            "failureModes": ["GL period closed"], "fields": names, "required": names,
            "parameters": dict.fromkeys(names, value), "locked": names[:locked]}


CONTEXT = {"candidates": [candidate(1), candidate(2)], "reason": "ap.action-1 fits almost as well",
           "problems": [{"pointer": "/parameters/glAccount", "detail": "must match pattern ^[0-9]{4,8}$"}]}
WORST = {"candidates": [candidate(i, 25, "ж" * 200, locked=5) for i in range(10)], "reason": "ж" * 500,
         "handedOver": {"to": "ж" * 200, "by": "ж" * 200},
         "problems": [{"pointer": f"/parameters/f{i}", "detail": "d" * 200} for i in range(5)]}


@pytest.mark.parametrize("links", [None, LINKS], ids=["submit", "links"])
@pytest.mark.parametrize("context", [CONTEXT, WORST, {"candidates": [], "reason": "no action"}],
                         ids=["two", "worst", "none"])
def test_the_review_card_is_valid_adaptive_card_1_5_under_28_kb(context, links):
    card = review_cards.review_card("r", CASE, context, links, **EVIDENCE)
    assert card["version"] == "1.5" and events(card) == [] and cards.size_ok(card)


def test_the_submit_card_offers_every_decision_with_the_candidates_and_fields_prefilled():
    card = review_cards.review_card("r", CASE, CONTEXT)
    inputs = {b["id"]: b for b in card["body"] if b["type"].startswith("Input.")}
    assert [c["value"] for c in inputs["actionId"]["choices"]] == ["ap.action-1", "ap.action-2"]
    assert inputs["parameters.ap.action-1.field1_0"]["value"] == "INV-1" and {"owner", "reason", "helpful"} <= set(inputs)
    assert inputs["parameters.ap.action-2.field2_3"]["value"] == "INV-1"  # each candidate's fields, by its id
    assert [(a["data"]["decision"], a["type"]) for a in card["actions"]] == [
        ("run", "Action.Submit"), ("provide", "Action.Submit"), ("handover", "Action.Submit"),
        ("dismiss", "Action.Submit")]
    text = " ".join(as_text(t["html"]) for t in rendered(card))
    for shown in ("medium", "AP.Approver", "0.5", "vendor master maintained", "GL period closed",
                  "fits almost as well"):
        assert shown in text


def test_the_link_card_has_signed_links_per_decision_and_helpful_links_and_no_inputs():
    card = review_cards.review_card("r", CASE, CONTEXT, LINKS)
    assert [a["url"] for a in card["actions"]] == [LINKS[d] for d in ("run", "provide", "handover", "dismiss")]
    [asked] = [b for b in card["body"] if b["type"] == "ActionSet"]
    assert [a["url"] for a in asked["actions"]] == [LINKS["helpful:yes"], LINKS["helpful:no"]]
    assert not any(b["type"].startswith("Input.") for b in card["body"])


def test_a_case_without_candidates_offers_only_handover_and_dismiss():
    card = review_cards.review_card("r", CASE, {"candidates": [], "reason": "no action"})
    assert [a["data"]["decision"] for a in card["actions"]] == ["handover", "dismiss"]


def test_hostile_data_on_a_review_card_renders_as_text_never_as_a_link():
    hostile = {**candidate(1), "name": HOSTILE[0], "prerequisites": HOSTILE[1:4], "failureModes": HOSTILE[4:8]}
    card = review_cards.review_card("r", CASE, {"candidates": [hostile], "reason": HOSTILE[8]})
    for shown in rendered(card):
        assert "<a " not in shown["html"] and "<img" not in shown["html"]


def test_the_fields_that_identify_the_record_are_facts_not_inputs():
    context = {"candidates": [candidate(1, value="INV-7", locked=1), candidate(2)], "reason": "two fit",
               "handedOver": {"to": "bob@contoso.com", "by": "Rita"}}
    card = review_cards.review_card("r", CASE, context)
    ids = {b["id"] for b in card["body"] if b["type"].startswith("Input.")}
    assert "parameters.ap.action-1.field1_0" not in ids and "parameters.ap.action-1.field1_1" in ids
    assert "parameters.ap.action-2.field2_0" in ids  # locked for action 1 only
    assert {"title": "field1\\_0", "value": "INV-7"} in [f for b in card["body"] if b["type"] == "FactSet"
                                                       for f in b["facts"]]
    text = " ".join(as_text(t["html"]) for t in rendered(card))
    assert "cannot be changed here" in text and "Handed to bob@contoso.com by Rita" in text
