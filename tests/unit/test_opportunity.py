"""Fingerprints, dedupe and the status machine of an Opportunity."""
from datetime import timedelta

import pytest

from shared.domain.opportunity import from_finding, group_key, merge, opportunity_id, partition_of
from shared.domain.status import TRANSITIONS, IllegalTransition, Status
from shared.runtime import REPO_CATALOG, load_catalog, load_policy
from tests.factories import NOW, finding, validated

CATALOG = load_catalog(REPO_CATALOG, "local")
POLICY = load_policy(REPO_CATALOG).scoring


def opp(**kw):
    return from_finding(validated(finding(**kw))[0], CATALOG, POLICY, NOW)


def test_id_is_source_neutral_and_ignores_case_and_spacing_of_area_and_pattern():
    a = opportunity_id("Accounts-Payable", "Invoice-Missing-PO ", "INV-1")
    b = opportunity_id("accounts-payable", "invoice-missing-po", "INV-1")
    assert a == b
    assert opp(source="celonis", caseKey="X").id == opp(source="process-mining", caseKey="X").id


def test_id_differs_per_case_and_starts_with_its_partition_key():
    a, b = opportunity_id("ap", "late", "1"), opportunity_id("ap", "late", "2")
    assert a != b and len(a) == 32
    assert partition_of(a) == partition_of(b) == group_key("ap", "late")


def test_same_event_delivered_twice_changes_nothing():
    first = opp(eventId="e-1", caseKey="C")
    again = opp(eventId="e-1", caseKey="C")
    assert merge(first, again, CATALOG, POLICY, NOW) is None


def test_new_event_on_same_case_bumps_occurrences_and_rescores():
    first = opp(eventId="e-1", caseKey="C", kpiImpact=100.0)
    later = opp(eventId="e-2", caseKey="C", kpiImpact=900.0, detectedAt="2026-11-19T10:00:00Z")
    merged = merge(first, later, CATALOG, POLICY, NOW + timedelta(hours=1))
    assert merged.occurrences == 2
    assert merged.sourceEventIds == ["e-1", "e-2"]
    assert merged.scores.impact == 900.0 and merged.scores.priority > first.scores.priority
    assert merged.revision == first.revision + 1
    assert merged.lastDetectedAt > merged.detectedAt


def test_merge_keeps_both_sources_when_two_miners_report_the_case():
    merged = merge(opp(source="celonis", eventId="a", caseKey="C"),
                   opp(source="process-mining", eventId="b", caseKey="C"), CATALOG, POLICY, NOW)
    assert merged.source == "celonis,process-mining"


def test_illegal_status_transition_is_refused():
    o = opp()
    with pytest.raises(IllegalTransition):
        o.transition(Status.executed, "test", "skip ahead", NOW)
    assert o.status is Status.new


def test_legal_transition_records_history_and_bumps_revision():
    o = opp().transition(Status.triaged, "triage", "complete", NOW)
    assert o.status is Status.triaged and o.revision == 2
    assert o.history[-1] == {"from": "new", "to": "triaged", "at": NOW.isoformat(), "actor": "triage",
                             "reason": "complete"}


def test_terminal_statuses_lead_nowhere_and_every_status_has_a_rule():
    assert set(TRANSITIONS) == set(Status)
    assert TRANSITIONS[Status.closed] == TRANSITIONS[Status.dismissed] == frozenset()


def test_batch_builder_fills_every_field_where_it_belongs():
    f = validated(finding(eventId="e-9", caseKey="C-9", kpiImpact=42.0, severity="high", rootCause="why",
                          recommendedAction="do", complianceFlags=["sox"], detectedAt=1700000000))[0]
    o = from_finding(f, CATALOG, POLICY, NOW, "cid")
    assert (o.source, o.sourceEventIds, o.processArea, o.deviationPattern, o.caseKey) == \
        ("generic", ["e-9"], "accounts-payable", "invoice-missing-po", "C-9")
    assert o.detectedAt == o.lastDetectedAt and o.detectedAt.year == 2023 and o.detectedAt.tzinfo is not None
    assert (o.kpiImpact, o.rootCause, o.recommendedAction, o.severity, o.complianceFlags) == \
        (42.0, "why", "do", "high", ["sox"])
    assert (o.status, o.occurrences, o.revision, o.createdAt, o.updatedAt, o.correlationId) == \
        (Status.new, 1, 1, NOW, NOW, "cid")
    assert o.scores.impact == 42.0 and o.rationale == "" and "Priority =" in o.explained()
    assert o.owner is None and o.notes is None and o.cohort is None and o.history == []
