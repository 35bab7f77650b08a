"""Every card a person can answer asks "was this helpful?": on a link card (Teams Workflows webhooks take no
inputs) as two signed links to the feedback page, wherever the card puts them."""
import pytest

from shared.services import approvals, notices
from shared.services.ingest import ingest
from tests.factories import finding, memory_services, validated
from tests.unit.test_cards import events
from tests.unit.test_review import review_case


def _urls(node):
    """Every Action.OpenUrl url on a card, in its action row and in its body's ActionSets."""
    if isinstance(node, dict):
        found = [node["url"]] if node.get("type") == "Action.OpenUrl" else []
        return found + [u for v in node.values() for u in _urls(v)]
    return [u for v in node for u in _urls(v)] if isinstance(node, list) else []


def _approve(svc, opp):
    plan = {"actionId": "ap.request-missing-fields", "actionVersion": 1, "parameters": {"invoiceId": "INV-1"}}
    return approvals.open_approval(svc, opp, plan, "low", "why", "cid")[1]


def _enrich(svc, opp):
    return approvals.open_enrichment(svc, opp, svc.catalog.actions["ap.request-missing-fields"], ["vendorId"], "cid")[1]


def _escalate(svc, opp):
    return notices.answerable(svc, "escalate", opp, "the flow failed", {}, [], "cid")[0].details


def _review(svc, _opp):
    return review_case(svc)[1]


@pytest.mark.parametrize("notice_of", [_approve, _enrich, _escalate, _review], ids=["approve", "enrich", "escalate",
                                                                                    "review"])
def test_every_link_card_carries_both_helpful_links(notice_of):
    svc = memory_services()
    [r] = ingest(svc, validated(finding()), "cid").results
    notice = notice_of(svc, r.opportunity)
    card, links = notice["cards"]["links"], notice["links"]
    urls = _urls(card)
    assert links["helpful:yes"] in urls and links["helpful:no"] in urls
    assert "/feedback?helpful=yes&token=" in links["helpful:yes"]
    assert events(card) == []  # still a valid card, within Teams' five actions a row


def test_an_approval_card_tells_the_actions_effort_prerequisites_and_failure_modes():
    svc = memory_services()
    [opp] = ingest(svc, validated(finding()), "cid").results
    action = svc.catalog.actions["ap.request-missing-fields"]
    assert action.effortHours is not None and action.prerequisites and action.failureModes
    notice = _approve(svc, opp.opportunity)
    for card in notice["cards"].values():
        facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}
        assert facts["Effort"] == f"{action.effortHours:g} h"
        assert action.prerequisites[0].split()[0] in facts["Prerequisites"]
        assert action.failureModes[0].split()[0] in facts["Known failure modes"]
        assert events(card) == []
