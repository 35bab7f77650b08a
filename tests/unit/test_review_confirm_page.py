"""The confirmation page's form per decision, read from the approval's kind and context, everything escaped."""
from datetime import UTC, datetime

import pytest

from shared.api import confirm_page
from shared.domain.approvals import ESCALATE, REVIEW, Approval
from tests.factories import memory_services

NOW = datetime(2026, 11, 19, tzinfo=UTC)


def approval(kind, context):
    return Approval("0" * 32 + "-x1", "0" * 32, kind, None, None, "Backlog.Owner", "h", NOW, NOW, "cid",
                    context=context)


@pytest.mark.parametrize("decision, field", [("retry", None), ("undo", None), ("accept", 'name="reason"'),
                                             ("close", 'name="reason"'), ("handover", 'name="owner"')])
def test_an_escalation_page_asks_each_decision_for_its_fields(decision, field):
    page = confirm_page.render(memory_services().catalog, approval(ESCALATE, {}), decision, "tok")
    assert 'name="helpful" value="yes"' in page and 'name="helpful" value="no"' in page
    assert (field in page) if field else ('name="reason"' not in page and 'name="owner"' not in page)


def test_the_recommended_answer_comes_first_and_only_offered_answers_are_linked():
    context = {"options": ["close", "retry", "undo"], "recommended": "retry"}
    page = confirm_page.render(memory_services().catalog, approval(ESCALATE, context), "close", "t/k")
    assert "Recommended: <b>retry</b>" in page
    assert page.index("decision=retry") < page.index("decision=undo") and "decision=accept" not in page
    assert "token=t%2Fk" in page


def test_every_value_from_the_context_is_escaped():
    context = {"reason": "<b>x</b>", "candidates": [
        {"id": "a<i>", "version": 1, "riskTier": "low", "fields": ["f\"><script>"], "parameters": {}}]}
    page = confirm_page.render(memory_services().catalog, approval(REVIEW, context), "run", "t\"><x>")
    assert "<script>" not in page and "<i>" not in page and "<b>x</b>" not in page and '"><x>' not in page


def test_the_run_form_names_each_candidates_fields_and_shows_the_record_it_changes_read_only():
    context = {"candidates": [
        {"id": "ap.a", "version": 1, "riskTier": "low", "fields": ["invoiceId", "glAccount"], "locked": ["invoiceId"],
         "parameters": {"invoiceId": "INV-1", "glAccount": "ABC"}},
        {"id": "ap.b", "version": 1, "riskTier": "low", "fields": ["invoiceId", "flag"], "locked": ["invoiceId"],
         "parameters": {"invoiceId": "INV-1", "flag": True}}]}
    page = confirm_page.render(memory_services().catalog, approval(REVIEW, context), "run", "t")
    assert 'name="parameters.ap.a.glAccount" maxlength="1000" value="ABC"' in page
    assert 'name="parameters.ap.b.flag" maxlength="1000" value="true"' in page
    assert "invoiceId" in page and 'name="parameters.ap.a.invoiceId"' not in page and "<b>INV-1</b>" in page
    provide = confirm_page.render(memory_services().catalog, approval(REVIEW, context), "provide", "t")
    assert 'name="data.glAccount"' in provide and 'name="data.invoiceId"' not in provide
