"""The runner (what the queue triggers run, a batch at a time) keeps the pipeline's promises."""
import json

from shared.domain.status import Status
from shared.services.runner import run
from shared.services.stage import Result
from shared.services.ingest import ingest
from tests.factories import finding, validated


def leads(svc, n):
    items = [finding(processArea="lead-management", deviationPattern="lead-stale", caseKey=f"LB-{i}",
                     attributes={"leadId": f"LB-{i}", "region": "APAC"}) for i in range(n)]
    return [r.opportunity.id for r in ingest(svc, validated(*items), "cid").results]


def drain(svc, copies=1):
    """Deliver everything queued, stage by stage, as batches (each message `copies` times in its batch)."""
    for _ in range(50):
        if not svc.bus.messages:
            return
        due = min(svc.bus.messages, key=lambda m: m.scheduled_at or svc.clock.current)
        stage = due.body["type"]
        batch = svc.bus.take(stage)
        later = max((m.scheduled_at for m in batch if m.scheduled_at), default=None)
        if later and later > svc.clock.current:
            svc.clock.current = later
        run(svc, stage, [(json.dumps(m.body).encode(), n + 1) for m in batch for n in range(copies)])
    raise AssertionError("did not settle")


def test_a_batch_carrying_every_message_twice_acts_once_per_opportunity(svc, sandbox):
    ids = leads(svc, 12)
    drain(svc, copies=2)
    assert sandbox.effects["leads.reassign"] == 12
    assert {svc.store.get(i).status for i in ids} == {Status.verified}
    assert all(len(svc.store.executions(i)) == 1 for i in ids)


def test_a_commit_refused_in_a_batch_is_read_and_decided_again_without_acting_twice(svc, sandbox):
    ids = leads(svc, 6)
    real = svc.store.commit_many
    refused = []

    def refuse_one(commits):
        results = real(commits[1:])
        if not refused and any(c.executions and c.executions[0].status == "succeeded" for c in commits):
            refused.append(commits[0].opportunity.id)
            from shared.ports import ConcurrencyConflict
            return [ConcurrencyConflict("someone else moved it")] + results
        return real(commits[:1]) + results

    svc.store.commit_many = refuse_one
    drain(svc)
    assert refused and sandbox.effects["leads.reassign"] == 6
    assert {svc.store.get(i).status for i in ids} == {Status.verified}


def test_poison_and_misrouted_messages_in_a_batch_do_not_stop_the_others(svc, sandbox):
    [oid] = leads(svc, 1)
    batch = svc.bus.take("triage")
    results = run(svc, "triage", [(b"garbage", 1), (json.dumps({**batch[0].body, "type": "plan"}).encode(), 1),
                                           (json.dumps(batch[0].body).encode(), 1)])
    assert results == ["poison", "misrouted", "triaged"]
    assert svc.store.get(oid).status is Status.triaged


def test_a_batch_fills_missing_fields_from_the_system_of_record_and_acts_once_each(svc, sandbox):
    items = [finding(processArea="order-to-cash", deviationPattern="delivery-sla-at-risk", caseKey=f"SO-B{i}",
                     attributes={"orderId": f"SO-B{i}"}) for i in range(4)]
    ids = [r.opportunity.id for r in ingest(svc, validated(*items), "cid").results]
    drain(svc, copies=2)
    assert {svc.store.get(i).status for i in ids} == {Status.verified}
    assert sandbox.effects["o2c.open-case"] == 4


def test_a_breach_found_in_a_batch_is_compensated_once_each_in_that_batch(svc, sandbox):
    sandbox.configure(breach_actions={"leads.reassign"})
    ids = leads(svc, 3)
    drain(svc, copies=2)
    assert {svc.store.get(i).status for i in ids} == {Status.compensated}
    assert sandbox.effects["leads.restore-owner"] == 3
    assert svc.reference.incidents(10) == []  # undone: a review card for a person, not an incident
    assert sum(1 for n in svc.notifier.sent if n[0] == "review") == 3


def test_a_batch_of_plans_reads_the_autonomy_switch_once(svc, sandbox):
    leads(svc, 8)
    run(svc, "triage", [(json.dumps(m.body).encode(), 1) for m in svc.bus.take("triage")])
    reads, real = [], svc.coordination.autonomy

    def counted():
        reads.append(1)
        return real()

    svc.coordination.autonomy = counted
    results = run(svc, "plan", [(json.dumps(m.body).encode(), 1) for m in svc.bus.take("plan")])
    assert results == [Result.PLANNED] * 8 and len(reads) == 1


def test_a_message_for_an_opportunity_past_its_stage_resends_the_nudge_its_status_needs(svc, sandbox):
    [oid] = leads(svc, 1)
    [message] = svc.bus.take("triage")
    body = json.dumps(message.body).encode()
    assert run(svc, "triage", [(body, 1)]) == [Result.TRIAGED]
    [plan] = svc.bus.take("plan")
    assert run(svc, "triage", [(body, 2)]) == [Result.ALREADY_TRIAGED]
    [again] = svc.bus.messages  # the same deterministic id: the bus drops it if the first was not lost
    assert (again.message_id, again.body) == (plan.message_id, plan.body)
    assert svc.store.get(oid).status is Status.triaged


def calls_without_a_record(svc):
    """The opportunities whose flow is called while their execution is not on record (filled as calls happen)."""
    real, unrecorded = svc.flows.call, []

    def call(setting, payload, key, cid, timeout):
        if svc.store.execution(payload["opportunityId"], key) is None:
            unrecorded.append(payload["opportunityId"])
        return real(setting, payload, key, cid, timeout)

    svc.flows.call = call
    return unrecorded


def test_in_a_batch_every_execution_is_on_record_before_its_flow_is_called(svc, sandbox):
    ids = leads(svc, 5)
    for stage in ("triage", "plan"):
        run(svc, stage, [(json.dumps(m.body).encode(), 1) for m in svc.bus.take(stage)])
    unrecorded = calls_without_a_record(svc)
    results = run(svc, "execute", [(json.dumps(m.body).encode(), 1) for m in svc.bus.take("execute")])
    assert results == [Result.EXECUTED] * 5 and unrecorded == []
    assert sandbox.effects["leads.reassign"] == 5 and {svc.store.get(i).status for i in ids} == {Status.executed}


def to_execute(svc, n=1):
    """n leads triaged and planned; their execute messages left on the bus."""
    ids = leads(svc, n)
    for stage in ("triage", "plan"):
        run(svc, stage, [(json.dumps(m.body).encode(), 1) for m in svc.bus.take(stage)])
    return ids


def counting(svc):
    """Every flow call's (action, idempotency key) and every poll, as they are made."""
    real_call, real_poll, calls = svc.flows.call, svc.flows.poll, []

    def call(setting, payload, key, cid, timeout):
        calls.append((payload["action"]["id"], key))
        return real_call(setting, payload, key, cid, timeout)

    def poll(location, cid, timeout):
        calls.append(("poll", location))
        return real_poll(location, cid, timeout)

    svc.flows.call, svc.flows.poll = call, poll
    return calls


def test_a_second_copy_after_a_429_waits_for_the_scheduled_retry_instead_of_calling_again(svc, sandbox):
    [oid] = to_execute(svc)
    [m] = svc.bus.take("execute")
    sandbox.script("leads.reassign", [429])
    calls = counting(svc)
    body = json.dumps(m.body).encode()
    assert run(svc, "execute", [(body, 1), (body, 1)]) == [Result.RETRY, Result.RETRY]
    assert len(calls) == 1
    [x] = svc.store.executions(oid)
    [retry] = svc.bus.messages  # the copy's reschedule has the scheduled retry's id: dropped as a duplicate
    assert retry.body["attempt"] == 2 and retry.scheduled_at == x.nextAttemptAt > svc.clock.current
    assert run(svc, "execute", [(body, 2)]) == [Result.RETRY] and len(calls) == 1  # a redelivery, too
    drain(svc)  # the scheduled retry, at its time, calls
    assert [c[0] for c in calls if c[0] != "sor.read"] == ["leads.reassign"] * 2
    assert sandbox.effects["leads.reassign"] == 1
    assert svc.store.get(oid).status is Status.verified


def test_a_plain_message_for_a_waiting_execution_is_rescheduled_never_posted_again(svc, sandbox):
    [oid] = to_execute(svc)
    [m] = svc.bus.take("execute")
    sandbox.script("leads.reassign", [202])
    calls = counting(svc)
    body = json.dumps(m.body).encode()
    assert run(svc, "execute", [(body, 1)]) == [Result.WAIT]
    [poll] = svc.bus.messages
    assert poll.body["pollUrl"] and len(calls) == 1
    assert run(svc, "execute", [(body, 2)]) == [Result.WAIT]
    assert len(calls) == 1 and svc.bus.messages == [poll]
    drain(svc)
    assert [c[0] for c in calls if c[0] != "sor.read"] == ["leads.reassign", "poll"]
    assert sandbox.effects["leads.reassign"] == 1
    assert svc.store.get(oid).status is Status.verified


def test_a_flow_answer_whose_commit_is_refused_is_applied_again_not_asked_again(svc, sandbox):
    from shared.ports import ConcurrencyConflict

    [oid] = to_execute(svc)
    [m] = svc.bus.take("execute")
    calls = counting(svc)
    real, refusals = svc.store.commit_many, []

    def refuse(commits):
        if any(c.executions and c.executions[0].status == "succeeded" for c in commits) and len(refusals) < 2:
            refusals.append(1)
            return [ConcurrencyConflict("someone else moved it")] * len(commits)
        return real(commits)

    svc.store.commit_many = refuse
    assert run(svc, "execute", [(json.dumps(m.body).encode(), 1)]) == [Result.EXECUTED]
    assert len(refusals) == 2 and len(calls) == 1
    [x] = svc.store.executions(oid)
    assert x.status == "succeeded" and x.attempts == 1
    assert svc.store.get(oid).status is Status.executed and sandbox.effects["leads.reassign"] == 1


def test_a_compensation_begun_before_its_undo_got_a_new_version_is_resumed_not_begun_again(svc, sandbox):
    from shared.domain.catalog import Action, Catalog

    sandbox.configure(breach_actions={"leads.reassign"})
    sandbox.script("leads.restore-owner", [503])
    [oid] = to_execute(svc)
    run(svc, "execute", [(json.dumps(m.body).encode(), 1) for m in svc.bus.take("execute")])
    calls = counting(svc)
    assert run(svc, "verify", [(json.dumps(m.body).encode(), 1) for m in svc.bus.take("verify")]) == [Result.RETRY]
    [begun] = [x for x in svc.store.executions(oid) if x.kind == "compensation"]
    # A new version of the undo is activated before the retry.
    undo = svc.catalog.actions["leads.restore-owner"]
    newer = Action.model_validate({**undo.model_dump(mode="json"), "version": undo.version + 1})
    svc.catalog = Catalog([*svc.catalog.versions.values(), newer], svc.catalog.environment,
                          [(newer.id, newer.version)])
    assert svc.catalog.actions["leads.restore-owner"].version == undo.version + 1
    drain(svc)
    assert svc.store.get(oid).status is Status.compensated
    assert [x.id for x in svc.store.executions(oid) if x.kind == "compensation"] == [begun.id]
    assert {key for action, key in calls if action == "leads.restore-owner"} == {begun.idempotencyKey}
    assert sandbox.effects["leads.restore-owner"] == 1


def test_a_compensation_is_counted_once_and_only_when_its_commit_lands(svc, sandbox, monkeypatch):
    from shared import telemetry
    from shared.ports import ConcurrencyConflict

    counted = []
    monkeypatch.setattr(telemetry, "compensated", lambda action, version: counted.append((action, version)))
    sandbox.configure(breach_actions={"leads.reassign"})
    [oid] = to_execute(svc)
    run(svc, "execute", [(json.dumps(m.body).encode(), 1) for m in svc.bus.take("execute")])
    real, refusals = svc.store.commit_many, []

    def refuse_once(commits):
        if any(c.opportunity.status is Status.compensated for c in commits) and not refusals:
            refusals.append(1)
            return [ConcurrencyConflict("someone else moved it")] * len(commits)
        return real(commits)

    svc.store.commit_many = refuse_once
    assert run(svc, "verify", [(json.dumps(m.body).encode(), 1) for m in svc.bus.take("verify")]) == [
        Result.COMPENSATED]
    assert refusals and svc.store.get(oid).status is Status.compensated
    assert counted == [("leads.reassign", 1)]


def test_an_executing_opportunity_whose_execution_is_missing_records_it_before_the_call(svc, sandbox):
    from shared.services.lifecycle import advance

    [oid] = to_execute(svc)
    [m] = svc.bus.take("execute")
    advance(svc, svc.store.get(oid), [Status.executing], "executor", "moved on, execution lost", "cid")
    unrecorded = calls_without_a_record(svc)
    assert run(svc, "execute", [(json.dumps(m.body).encode(), 1)]) == [Result.EXECUTED]
    assert unrecorded == [] and sandbox.effects["leads.reassign"] == 1
    [x] = svc.store.executions(oid)
    assert x.status == "succeeded" and svc.store.get(oid).status is Status.executed
