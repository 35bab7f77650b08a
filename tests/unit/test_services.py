"""Services over the in-memory store: ingest, triage, the sweep and the backlog."""
import json
import time
from datetime import timedelta

import pytest

from shared.domain.errors import Conflict, InvalidInput, NotFound
from shared.ports import Filter
from shared.services import backlog, pipeline, sweep
from shared.services.ingest import ingest
from tests.factories import finding, memory_services, person, validated


def findings(*items):
    return validated(*items)


def test_ingest_stores_scores_and_sends_one_triage_message_per_new_opportunity():
    svc = memory_services()
    report = ingest(svc, findings(finding(), finding()), "cid-1")
    assert [r.outcome for r in report.results] == ["created", "created"]
    assert all(svc.store.get(r.opportunity.id).scores.priority > 0 for r in report.results)
    assert [m.message_id for m in svc.bus.messages] == [f"triage:{r.opportunity.id}:1" for r in report.results]
    assert svc.bus.messages[0].body == {"type": "triage", "opportunityId": report.results[0].opportunity.id,
                                        "correlationId": "cid-1", "attempt": 1}


def test_redelivered_batch_changes_nothing_and_sends_nothing():
    svc = memory_services()
    batch = [finding(), finding()]
    ingest(svc, findings(*batch), "c")
    before = [svc.store.get(m.body["opportunityId"]) for m in svc.bus.messages]
    report = ingest(svc, findings(*batch), "c")
    assert report.to_dict()["duplicates"] == 2 and report.to_dict()["accepted"] == 0
    assert len(svc.bus.messages) == 2
    assert [svc.store.get(o.id).revision for o in before] == [o.revision for o in before]


def test_new_event_for_known_case_bumps_occurrences_without_a_second_triage():
    svc = memory_services()
    first = finding(caseKey="INV-9")
    ingest(svc, findings(first), "c")
    report = ingest(svc, findings(finding(caseKey="INV-9")), "c")
    assert report.results[0].outcome == "updated"
    assert report.results[0].opportunity.occurrences == 2
    assert len(svc.bus.messages) == 1


def test_two_events_on_one_case_in_one_batch_make_one_opportunity():
    svc = memory_services()
    report = ingest(svc, findings(finding(caseKey="C"), finding(caseKey="C"), finding(caseKey="C")), "c")
    assert [r.outcome for r in report.results] == ["created", "updated", "updated"]
    assert len({r.opportunity.id for r in report.results}) == 1
    assert report.results[0].opportunity.occurrences == 3
    assert len(svc.bus.messages) == 1


def test_duplicate_triage_delivery_advances_the_opportunity_once():
    svc = memory_services()
    ingest(svc, findings(finding()), "c")
    message = json.dumps(svc.bus.messages[0].body).encode()
    assert pipeline.handle(svc, "triage", message) == "triaged"
    assert pipeline.handle(svc, "triage", message, delivery_count=2) == "already triaged"
    plans = [m for m in svc.bus.messages if m.body["type"] == "plan"]
    assert len(plans) == 1
    opp = svc.store.get(svc.bus.messages[0].body["opportunityId"])
    assert opp.status.value == "triaged" and [h["to"] for h in opp.history] == ["triaged"]


@pytest.mark.parametrize("raw", [b"not json", b'{"type":"triage"}', b'{"type":"bogus","opportunityId":"x"}'])
def test_poison_message_settles_instead_of_raising(raw):
    assert pipeline.handle(memory_services(), "triage", raw) == "poison"


def test_sweep_resends_triage_for_opportunities_stuck_in_new():
    svc = memory_services()
    ingest(svc, findings(finding()), "c")
    svc.bus.messages.clear()
    assert sweep.reconcile(svc, "sweep") == 0  # not stale yet
    svc.clock.current += timedelta(seconds=svc.policy.reconcileAfterSeconds + 1)
    assert sweep.reconcile(svc, "sweep") == 1
    assert svc.bus.messages[0].message_id.startswith("triage:")


def test_ranked_pages_cover_every_opportunity_once_in_priority_order():
    svc = memory_services()
    ingest(svc, findings(*[finding(kpiImpact=float(100 + (i * 37) % 50)) for i in range(23)]), "c")
    seen, token = [], None
    while True:
        page = backlog.list_opportunities(svc, Filter(), 5, token)
        seen += page["items"]
        token = page["continuationToken"]
        if token is None:
            break
    priorities = [i["scores"]["priority"] for i in seen]
    assert len(seen) == 23 and len({i["id"] for i in seen}) == 23
    assert priorities == sorted(priorities, reverse=True)


def test_filters_narrow_the_ranked_list():
    svc = memory_services()
    ingest(svc, findings(finding(), finding(processArea="order-to-cash", deviationPattern="delivery-sla-at-risk")), "c")
    page = backlog.list_opportunities(svc, Filter(processArea="ORDER-TO-CASH"), 10, None)
    assert [i["processArea"] for i in page["items"]] == ["order-to-cash"]


def test_forged_continuation_token_is_a_400_class_error():
    with pytest.raises(InvalidInput):
        backlog.list_opportunities(memory_services(), Filter(), 5, "not-a-token")


def test_patch_sets_owner_and_dismiss_is_refused_once_acted_on():
    svc = memory_services()
    oid = ingest(svc, findings(finding()), "c").results[0].opportunity.id
    ana = person("ana", "Backlog.Owner")
    assert backlog.patch(svc, oid, {"owner": "ana@contoso.com"}, ana, "c").owner == "ana@contoso.com"
    dismissed = backlog.patch(svc, oid, {"dismiss": True, "dismissReason": "vendor gone"}, ana, "c")
    assert dismissed.status.value == "dismissed" and dismissed.history[-1]["reason"] == "vendor gone"
    with pytest.raises(Conflict):
        backlog.patch(svc, oid, {"dismiss": True}, ana, "c")


def test_patch_with_stale_etag_is_refused():
    svc = memory_services()
    oid = ingest(svc, findings(finding()), "c").results[0].opportunity.id
    with pytest.raises(backlog.PreconditionFailed):
        backlog.patch(svc, oid, {"notes": "x"}, person("ana"), "c", if_match='W/"stale"')


def test_unknown_opportunity_is_not_found():
    with pytest.raises(NotFound):
        backlog.get(memory_services(), "0" * 32)


def test_backlog_groups_by_area_and_pattern_with_totals():
    svc = memory_services()
    ingest(svc, findings(finding(kpiImpact=100.0), finding(kpiImpact=300.0),
                         finding(processArea="lead-management", deviationPattern="lead-unassigned", kpiImpact=50.0)),
           "c")
    groups = backlog.backlog(svc, Filter(), 10)["items"]
    ap = next(g for g in groups if g["processArea"] == "accounts-payable")
    assert ap["cases"] == 2 and ap["totalImpact"] == 400.0 and ap["statusCounts"] == {"new": 2}
    assert groups[0]["totalPriority"] >= groups[-1]["totalPriority"]


def test_a_poison_message_becomes_one_escalated_incident_however_often_it_arrives():
    svc = memory_services()
    body = b'{"type":"triage","note":"from ana@contoso.com"}'
    for n in (1, 2):
        assert pipeline.handle(svc, "triage", body, delivery_count=n) == "poison"
    incidents = svc.reference.incidents(10)
    assert len(incidents) == 1 and incidents[0].kind == "poison" and "ana@contoso.com" not in incidents[0].detail
    escalations = [n for n in svc.notifier.sent if n[0] == "escalate"]
    assert escalations and escalations[0][3]["cards"]["links"]["type"] == "AdaptiveCard"


def test_the_sweep_leaves_a_heartbeat_and_health_notices_when_it_stops(monkeypatch):
    svc = memory_services()
    # Grace is counted from process start; pin it so a long test session does not decide this test.
    monkeypatch.setattr(sweep, "_STARTED", time.monotonic())
    assert sweep.heartbeat(svc)["detail"] == "not run yet"
    monkeypatch.setattr(sweep, "_STARTED", time.monotonic() - svc.policy.sweepStaleAfterSeconds - 1)
    never = sweep.heartbeat(svc)
    assert never["ok"] is False and never["detail"] == "the timer has never run"
    sweep.run(svc, "s1")
    assert sweep.heartbeat(svc)["ok"] is True
    svc.clock.current += timedelta(seconds=svc.policy.sweepStaleAfterSeconds + 1)
    stale = sweep.heartbeat(svc)
    assert stale["ok"] is False and "is the timer running" in stale["detail"]


def test_a_failing_sweep_step_does_not_stop_the_others_and_health_names_it(monkeypatch, caplog):
    from shared.services import measure

    svc = memory_services()
    ingest(svc, findings(finding()), "c1")
    svc.bus.messages.clear()  # the triage message is lost
    svc.clock.current += timedelta(seconds=svc.policy.reconcileAfterSeconds + 1)

    def broken(*_args, **_kwargs):
        raise RuntimeError("the store refused the baselines")

    monkeypatch.setattr(measure, "snapshot_baselines", broken)
    done = sweep.run(svc, "s1")
    assert done["resent"] == 1 and svc.bus.messages[0].message_id.startswith("triage:")
    assert done["failed"] == ["baselines"]
    beat = sweep.heartbeat(svc)
    assert beat["ok"] is False and beat["failedSteps"] == ["baselines"] and "baselines" in beat["detail"]
    assert any("sweep step baselines failed" in r.getMessage() and r.exc_info for r in caplog.records)
    monkeypatch.undo()
    assert "failed" not in sweep.run(svc, "s2") and sweep.heartbeat(svc)["ok"] is True
