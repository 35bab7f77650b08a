"""The batched stages (what the queue triggers run) keep the pipeline's promises."""
import json

from shared.domain.status import Status
from shared.services.batch import handle_batch
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
        handle_batch(svc, stage, [(json.dumps(m.body).encode(), n + 1) for m in batch for n in range(copies)])
    raise AssertionError("did not settle")


def test_a_batch_carrying_every_message_twice_acts_once_per_opportunity(svc, sandbox):
    ids = leads(svc, 12)
    drain(svc, copies=2)
    assert sandbox.effects["leads.reassign"] == 12
    assert {svc.store.get(i).status for i in ids} == {Status.verified}
    assert all(len(svc.store.executions(i)) == 1 for i in ids)


def test_a_commit_refused_in_a_batch_is_run_again_alone_without_acting_twice(svc, sandbox):
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
    results = handle_batch(svc, "triage", [(b"garbage", 1), (json.dumps({**batch[0].body, "type": "plan"}).encode(), 1),
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
