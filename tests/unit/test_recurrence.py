"""Echoes and recurrences: findings on a case after the agent acted on it (shared/domain/recurrence.py)."""
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.errors import InvalidInput
from shared.domain.status import Status
from shared.services.ingest import ingest
from shared.services.insights import weekly_review
from shared.services.measure import kpis
from tests.factories import NOW, finding, memory_services, validated

ACTED = NOW - timedelta(hours=2)  # when the agent's action reached the system of record
PLAN = {"actionId": "ap.request-missing-fields", "actionVersion": 1, "parameters": {}}


def _acted(svc, case: str, until: Status = Status.verified, at=ACTED) -> str:
    """A case ingested, then moved by the agent through execution to `until` (executed at `at`)."""
    [r] = ingest(svc, validated(finding(caseKey=case, detectedAt="2026-11-19T08:30:00Z")), "cid").results
    svc.bus.messages.clear()
    opp = svc.store.get(r.opportunity.id)
    path = [Status.triaged, Status.planned, Status.executing, Status.executed]
    if until is not Status.executed:
        path.append(until)
    for status in path:
        opp = opp.transition(status, "test", "", at)
    svc.store.commit(replace(opp, plan=PLAN, cohort="treated",
                             arm={"actionId": PLAN["actionId"], "version": 1, "at": ACTED.isoformat()}))
    return r.opportunity.id


def _again(svc, case: str, detected, event: str | None = None, **kw):
    body = finding(caseKey=case, detectedAt=detected.isoformat(), **kw)
    if event:
        body["eventId"] = event
    report = ingest(svc, validated(body), "cid")
    return report, report.to_dict()["opportunities"][0]


def test_a_finding_within_the_window_after_the_action_is_an_echo_and_nothing_else_changes():
    svc = memory_services()
    oid = _acted(svc, "INV-E1")
    before = svc.store.get(oid)
    report, entry = _again(svc, "INV-E1", ACTED + timedelta(hours=23), attributes={"invoiceId": "X", "vendorId": "V9",
                                                                                   "missingFields": ["a", "b"]},
                           severity="critical")
    after = svc.store.get(oid)
    assert entry["outcome"] == "echo" and report.to_dict()["echoes"] == 1
    assert after.echoes == 1 and len(after.sourceEventIds) == 2
    assert (after.status, after.scores, after.attributes, after.severity, after.occurrences, after.revision,
            after.updatedAt, after.lastDetectedAt, after.recurrences) == \
        (before.status, before.scores, before.attributes, before.severity, before.occurrences, before.revision,
         before.updatedAt, before.lastDetectedAt, [])
    assert svc.bus.messages == [] and svc.notifier.sent == []


def test_a_redelivered_echo_stays_a_duplicate():
    svc = memory_services()
    oid = _acted(svc, "INV-E2")
    _again(svc, "INV-E2", ACTED + timedelta(hours=1), event="echo-1")
    report, entry = _again(svc, "INV-E2", ACTED + timedelta(hours=1), event="echo-1")
    assert entry["outcome"] == "duplicate" and report.to_dict()["duplicates"] == 1
    assert "echoes" not in report.to_dict()
    assert svc.store.get(oid).echoes == 1


def test_a_finding_detected_before_the_action_is_an_echo_whatever_the_status_after_it():
    svc = memory_services()
    oid = _acted(svc, "INV-E3", until=Status.compensated)
    _, entry = _again(svc, "INV-E3", ACTED - timedelta(hours=5))
    assert entry["outcome"] == "echo" and svc.store.get(oid).status is Status.compensated


def test_after_the_window_on_a_verified_case_it_is_a_recurrence_offered_to_a_person_not_acted_on():
    svc = memory_services()
    oid = _acted(svc, "INV-R1")
    seen = ACTED + timedelta(hours=30)
    report, entry = _again(svc, "INV-R1", seen)
    opp = svc.store.get(oid)
    assert entry["outcome"] == "recurrence" and report.to_dict()["recurrences"] == 1
    assert opp.recurrences == [seen.isoformat()] and opp.status is Status.verified and opp.occurrences == 2
    assert svc.bus.messages == []  # no stage message: the agent never re-acts on its own
    [(kind, about, subject, details)] = svc.notifier.sent
    assert (kind, about) == ("review", oid)
    assert "is back after ap.request-missing-fields v1 was verified" in subject
    assert details["recurrence"] == seen.isoformat() and details["cards"]["links"]["type"] == "AdaptiveCard"


def test_a_finding_dated_in_the_future_is_refused_and_the_later_real_recurrence_is_recorded_and_carded():
    # One finding dated 2099 on a verified case was the recurrence, and every real one until 2099 a silent repeat.
    svc = memory_services()
    oid = _acted(svc, "INV-FUT")
    before = svc.store.get(oid)
    with pytest.raises(InvalidInput) as refused:
        _again(svc, "INV-FUT", datetime(2099, 1, 1, tzinfo=UTC), event="bogus")
    assert [(e.pointer, "in the future" in e.detail) for e in refused.value.errors] == [("/0/detectedAt", True)]
    assert svc.store.get(oid) == before and svc.notifier.sent == []
    seen = ACTED + timedelta(days=3)
    _, real = _again(svc, "INV-FUT", seen, event="real")
    opp = svc.store.get(oid)
    assert real["outcome"] == "recurrence" and opp.recurrences == [seen.isoformat()]
    [(kind, about, _, details)] = svc.notifier.sent
    assert (kind, about, details["recurrence"]) == ("review", oid, seen.isoformat())


def test_the_card_goes_out_only_after_the_store_write_landed():
    svc = memory_services()
    _acted(svc, "INV-R2")
    real = svc.store.ingest

    def refused(incoming, merge):
        raise ConnectionError("store down")

    svc.store.ingest = refused
    with pytest.raises(ConnectionError):
        _again(svc, "INV-R2", ACTED + timedelta(hours=30))
    assert svc.notifier.sent == []
    svc.store.ingest = real


def test_the_same_recurrence_seen_again_within_the_window_is_counted_without_a_second_card():
    svc = memory_services()
    oid = _acted(svc, "INV-R3")
    _again(svc, "INV-R3", ACTED + timedelta(hours=30))
    _, entry = _again(svc, "INV-R3", ACTED + timedelta(hours=40))
    opp = svc.store.get(oid)
    assert entry["outcome"] == "updated"
    assert len(opp.recurrences) == 1 and opp.occurrences == 3 and len(svc.notifier.sent) == 1
    _, later = _again(svc, "INV-R3", ACTED + timedelta(hours=60))  # past the window after the last one: new
    assert later["outcome"] == "recurrence" and len(svc.store.get(oid).recurrences) == 2
    assert len(svc.notifier.sent) == 2


def test_recurrences_keep_the_newest_twenty():
    svc = memory_services()
    svc.policy = svc.policy.model_copy(update={"echoWindowHours": 1.0})
    oid = _acted(svc, "INV-R4")
    times = [ACTED + timedelta(hours=2 * i + 2) for i in range(22)]
    for t in times:
        _again(svc, "INV-R4", t)
    assert svc.store.get(oid).recurrences == [t.isoformat() for t in times[-20:]]


def test_the_echo_window_is_the_policys():
    svc = memory_services()
    svc.policy = svc.policy.model_copy(update={"echoWindowHours": 1.0})
    _acted(svc, "INV-W1")
    _, entry = _again(svc, "INV-W1", ACTED + timedelta(hours=2))
    assert entry["outcome"] == "recurrence"


@pytest.mark.parametrize("status", [Status.executed, Status.compensated, Status.failed])
def test_after_the_window_a_case_not_verified_is_an_ordinary_update_with_no_card(status):
    svc = memory_services()
    oid = _acted(svc, f"INV-U-{status.value}", until=status)
    _, entry = _again(svc, f"INV-U-{status.value}", ACTED + timedelta(hours=30))
    opp = svc.store.get(oid)
    assert entry["outcome"] == "updated" and opp.status is status
    assert opp.occurrences == 2 and opp.echoes == 0 and opp.recurrences == [] and svc.notifier.sent == []
    assert svc.bus.messages == []


def test_a_case_the_agent_has_not_acted_on_merges_as_before():
    svc = memory_services()
    [r] = ingest(svc, validated(finding(caseKey="INV-N1")), "cid").results
    _, entry = _again(svc, "INV-N1", ACTED + timedelta(hours=1), severity="high")
    opp = svc.store.get(r.opportunity.id)
    assert entry["outcome"] == "updated" and opp.occurrences == 2 and opp.severity == "high" and opp.echoes == 0


def test_two_findings_on_one_verified_case_in_one_batch_are_one_recurrence_and_one_card():
    svc = memory_services()
    oid = _acted(svc, "INV-B1")
    report = ingest(svc, validated(finding(caseKey="INV-B1", detectedAt=(ACTED + timedelta(hours=30)).isoformat()),
                                   finding(caseKey="INV-B1", detectedAt=(ACTED + timedelta(hours=31)).isoformat())),
                    "cid")
    body = report.to_dict()
    assert [o["outcome"] for o in body["opportunities"]] == ["recurrence", "recurrence"]
    assert svc.store.get(oid).recurrences == [(ACTED + timedelta(hours=31)).isoformat()]
    assert len(svc.notifier.sent) == 1


def test_recurrence_rate_and_echoes_per_action_version_in_kpis_and_insights():
    svc = memory_services()
    cases = [_acted(svc, f"INV-K{i}") for i in range(4)]
    _acted(svc, "INV-K-open", until=Status.executed)
    _again(svc, "INV-K0", ACTED + timedelta(hours=30))
    _again(svc, "INV-K0", ACTED + timedelta(hours=80))
    _again(svc, "INV-K1", ACTED + timedelta(hours=1))
    _again(svc, "INV-K-open", ACTED + timedelta(hours=3))
    wanted = [{"actionId": "ap.request-missing-fields", "actionVersion": 1, "verified": 4, "recurred": 1,
               "recurrenceRate": 0.25, "recurrences": 2, "echoes": 2}]
    assert kpis(svc)["recurrence"] == wanted
    assert weekly_review(svc)["recurrence"] == wanted
    assert len(cases) == 4


def test_the_response_names_each_findings_extension_fields():
    svc = memory_services()
    report = ingest(svc, validated(finding(extensions={"vendr": "V1", "kpiImpact.foo": 1}), finding()), "cid")
    first, second = report.to_dict()["opportunities"]
    assert first["extensions"] == ["kpiImpact.foo", "vendr"] and "extensions" not in second
