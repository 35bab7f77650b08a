"""The agent pipeline against the sandbox's child flows over real HTTP (memory store, recording bus, fake clock)."""
import json

import pytest

from shared.domain.status import Status
from shared.services import pipeline
from shared.services.ingest import ingest
from tests.factories import finding, validated

LEAD = dict(processArea="lead-management", deviationPattern="lead-unassigned",
            attributes={"leadId": "LD-1", "region": "EMEA"})


def drive(svc, deliveries=1, limit=200):
    """Deliver every queued message `deliveries` times, moving the fake clock to scheduled ones, until quiet."""
    handled = []
    for _ in range(limit):
        if not svc.bus.messages:
            return handled
        m = min(svc.bus.messages, key=lambda m: (m.scheduled_at is not None, m.scheduled_at or 0))
        svc.bus.messages.remove(m)
        if m.scheduled_at is not None and m.scheduled_at > svc.clock.current:
            svc.clock.current = m.scheduled_at
        for n in range(deliveries):
            handled.append(pipeline.handle(svc, m.body["type"], json.dumps(m.body).encode(), n + 1))
    raise AssertionError("pipeline did not settle")


def start(svc, **kw):
    [r] = ingest(svc, validated(finding(**{**LEAD, **kw})), "cid").results
    return r.opportunity.id


def test_every_message_delivered_twice_still_acts_once(svc, sandbox):
    ids = [start(svc, caseKey=f"LD-{i}", attributes={"leadId": f"LD-{i}", "region": "AMER"}) for i in range(5)]
    drive(svc, deliveries=2)
    assert sandbox.effects["leads.reassign"] == 5
    for oid in ids:
        opp = svc.store.get(oid)
        assert opp.status is Status.verified
        [x] = svc.store.executions(oid)
        assert x.status == "succeeded" and x.evidence["after"]["lead"]["ownerId"] in ("carla", "dev")


def test_crash_after_the_flow_call_before_recording_does_not_act_twice(svc, sandbox):
    oid = start(svc)
    drive_until = [m for m in svc.bus.messages]
    assert drive_until
    real_commit = svc.store.commit
    crashed = []

    def crash_once(opp, executions=(), audit=(), approvals=()):
        if executions and executions[0].status == "succeeded" and not crashed:
            crashed.append(True)
            raise ConnectionError("host died after the flow answered")
        return real_commit(opp, executions, audit, approvals)

    svc.store.commit = crash_once
    with pytest.raises(ConnectionError):
        drive(svc)
    svc.store.commit = real_commit
    # The bus redelivers the message that was being handled; the stage replays the same idempotency key.
    opp = svc.store.get(oid)
    assert opp.status is Status.executing and sandbox.effects["leads.reassign"] == 1
    pipeline.handle(svc, "execute", json.dumps({"type": "execute", "opportunityId": oid, "correlationId": "cid",
                                                "attempt": 1}).encode(), 2)
    drive(svc)
    assert svc.store.get(oid).status is Status.verified
    assert sandbox.effects["leads.reassign"] == 1


def test_429_with_retry_after_is_honoured_on_the_clock_then_acts_once(svc, sandbox):
    sandbox.configure(throttle_retry_after=7)
    sandbox.script("leads.reassign", [429])
    oid = start(svc)
    before = svc.clock.current
    handled = drive(svc)
    assert "retry" in handled
    [x] = svc.store.executions(oid)
    assert x.attempts == 2 and x.status == "succeeded"
    assert (svc.clock.current - before).total_seconds() >= 7
    assert sandbox.effects["leads.reassign"] == 1
    assert svc.store.get(oid).status is Status.verified


def test_a_flow_failing_verification_is_compensated_once(svc, sandbox):
    sandbox.configure(breach_actions={"leads.reassign"})
    oid = start(svc)
    drive(svc, deliveries=2)
    opp = svc.store.get(oid)
    assert opp.status is Status.compensated
    kinds = sorted((x.kind, x.actionId, x.status) for x in svc.store.executions(oid))
    assert kinds == [("action", "leads.reassign", "succeeded"), ("compensation", "leads.restore-owner", "succeeded")]
    assert sandbox.effects["leads.restore-owner"] == 1
    assert any(n[0] == "review" and n[1] == oid for n in svc.notifier.sent)
    assert [a.event for a in svc.store.audit(oid)][-2:] == ["breach", "compensated"]


def test_server_errors_retry_with_backoff_then_give_up_into_an_incident(svc, sandbox):
    svc.policy = svc.policy.model_copy(update={"maxAttempts": 3})
    sandbox.script("leads.reassign", [500, 500, 500])
    oid = start(svc)
    drive(svc)
    opp = svc.store.get(oid)
    assert opp.status is Status.failed and sandbox.effects["leads.reassign"] == 0
    [x] = svc.store.executions(oid)
    assert x.attempts == 3 and "gave up" in x.message
    assert [i.kind for i in svc.reference.incidents(10)] == ["failed"]


def test_rejected_parameters_are_permanent_and_not_retried(svc, sandbox):
    sandbox.script("leads.reassign", [400])
    oid = start(svc)
    drive(svc)
    [x] = svc.store.executions(oid)
    assert x.status == "rejected" and x.attempts == 1
    assert svc.store.get(oid).status is Status.failed


def test_medium_risk_waits_for_approval_and_never_calls_the_flow(svc, sandbox):
    oid = start(svc, processArea="accounts-payable", deviationPattern="price-variance",
                attributes={"invoiceId": "INV-9", "vendorId": "V-1", "amount": 120.0, "glAccount": "6100"})
    drive(svc)
    assert svc.store.get(oid).status is Status.awaiting_approval
    assert sum(sandbox.effects.values()) == 0
    assert any(n[0] == "approve" for n in svc.notifier.sent)


def test_control_cases_are_tracked_but_never_reach_a_flow(svc, sandbox):
    svc.policy = svc.policy.model_copy(update={"holdoutPercent": 100.0})
    oid = start(svc)
    drive(svc)
    assert svc.store.get(oid).status is Status.control and sandbox.requests == []


def test_incomplete_data_asks_for_exactly_the_missing_fields(svc, sandbox):
    oid = start(svc, attributes={"region": "EMEA"})
    drive(svc)
    assert svc.store.get(oid).status is Status.needs_data
    [(kind, who, _, details)] = svc.notifier.sent
    assert (kind, who, details["missing"]) == ("enrich", oid, ["leadId"])


def test_a_poison_message_becomes_an_incident(svc):
    assert pipeline.handle(svc, "execute", b"\x00not json") == "poison"
    [incident] = svc.reference.incidents(5)
    assert incident.kind == "poison" and incident.stage == "execute"


def test_the_sweep_resends_lost_work_but_never_jumps_a_scheduled_retry(svc, sandbox):
    from datetime import timedelta

    from shared.services import sweep
    sandbox.configure(throttle_retry_after=3600)
    sandbox.script("leads.reassign", [429])
    oid = start(svc)
    for _ in range(3):  # triage, plan, execute → 429, retry scheduled an hour out
        m = min(svc.bus.messages, key=lambda m: m.scheduled_at is not None)
        svc.bus.messages.remove(m)
        pipeline.handle(svc, m.body["type"], json.dumps(m.body).encode())
    assert svc.store.get(oid).status is Status.executing
    svc.bus.messages.clear()  # the scheduled retry is lost too
    svc.clock.current += timedelta(seconds=svc.policy.reconcileAfterSeconds + 1)
    assert sweep.reconcile(svc, "sweep") == 0  # the retry is not due: hands off
    svc.clock.current += timedelta(hours=1)
    assert sweep.reconcile(svc, "sweep") == 1
    drive(svc)
    assert svc.store.get(oid).status is Status.verified and sandbox.effects["leads.reassign"] == 1


def test_fields_a_miner_lacks_are_filled_from_the_system_of_record_before_asking_a_person(svc, sandbox):
    oid = start(svc, processArea="order-to-cash", deviationPattern="delivery-sla-at-risk", caseKey="SO-1",
                attributes={"orderId": "SO-1"})
    drive(svc)
    opp = svc.store.get(oid)
    assert opp.status is Status.verified and opp.attributes["customerId"].startswith("C-")
    triaged = next(a for a in svc.store.audit(oid) if a.event == "triaged")
    assert triaged.outputs == {"filledFromRecord": ["customerId", "promisedDate"]}
    assert sandbox.effects["o2c.open-case"] == 1
    assert not any(n[0] == "enrich" for n in svc.notifier.sent)


def test_without_a_read_flow_a_missing_field_still_goes_to_a_person(svc, sandbox):
    svc.flows._env = {k: v for k, v in svc.flows._env.items() if k != "FLOW_READ_RECORD"}
    oid = start(svc, processArea="order-to-cash", deviationPattern="delivery-sla-at-risk", caseKey="SO-2",
                attributes={"orderId": "SO-2"})
    drive(svc)
    assert svc.store.get(oid).status is Status.needs_data
    assert [n[3]["missing"] for n in svc.notifier.sent if n[0] == "enrich"] == [["customerId"]]


def test_a_flow_that_never_finishes_is_polled_with_backoff_then_given_up_and_escalated(svc, sandbox):
    from datetime import timedelta

    sandbox.configure(async_actions={"leads.reassign"}, async_polls=100_000, async_retry_after=None)
    svc.policy = svc.policy.model_copy(update={"flowMaxWaitSeconds": 3600.0})
    oid = start(svc, caseKey="LD-SLOW", attributes={"leadId": "LD-SLOW", "region": "EMEA"})
    began = svc.clock.current
    drive(svc)
    opp = svc.store.get(oid)
    [x] = svc.store.executions(oid)
    assert opp.status is Status.failed and x.status == "failed" and "still running after 1." in x.message
    waits = [a for a in svc.store.audit(oid) if a.event == "flow.waiting"]
    # 1, 2, 4 … 256 s, then every 300 s: ~20 polls for an hour, where a fixed 1 s would have been 3,600.
    assert 10 <= len(waits) <= 25
    assert svc.clock.current - began >= timedelta(hours=1)
    assert any(n[0] == "escalate" for n in svc.notifier.sent)
