"""The in-process bus keeps the Service Bus semantics the stages rely on."""
import threading
import time
from datetime import datetime, timedelta, timezone

from shared.adapters.local_bus import LocalBus
from shared.ports import Message


def msg(mid, queue="q", **body):
    return Message(queue, {"correlationId": "c", **body}, mid)


def run(bus, handler, queue="q", batch_size=1):
    """Subscribe a one-message handler (the bus hands over lists)."""
    def each(envs):
        for env in envs:
            handler(env)
    bus.subscribe(queue, each, batch_size)
    bus.start()
    return bus


def test_duplicate_message_id_is_dropped_within_the_window():
    got = []
    bus = run(LocalBus(), lambda env: got.append(env.message_id))
    bus.send([msg("a"), msg("a"), msg("b")])
    bus.send([msg("a")])
    assert bus.wait_idle(5)
    bus.stop()
    assert sorted(got) == ["a", "b"] and bus.dropped_duplicates == 2


def test_failing_handler_is_redelivered_then_dead_lettered_at_max_deliveries():
    counts = []
    def fail(env):
        counts.append(env.delivery_count)
        raise RuntimeError("boom")
    bus = run(LocalBus(max_deliveries=3, workers_per_queue=1), fail)
    bus.send([msg("x")])
    assert bus.wait_idle(5)
    bus.stop()
    assert counts == [1, 2, 3]
    assert [d.envelope.message_id for d in bus.dead_letters] == ["x"]
    assert "boom" in bus.dead_letters[0].description


def test_scheduled_message_waits_until_due():
    seen = threading.Event()
    delivered = []
    bus = run(LocalBus(), lambda env: (delivered.append(time.monotonic()), seen.set()))
    sent = time.monotonic()
    bus.send([Message("q", {"correlationId": "c"}, "later", datetime.now(timezone.utc) + timedelta(seconds=0.4))])
    assert seen.wait(5)
    bus.stop()
    # Measured from before the send, so a stalled test thread cannot make an early delivery look on time.
    assert delivered[0] - sent >= 0.38


def test_handler_failure_once_then_success_delivers_twice_and_settles():
    calls = []
    def flaky(env):
        calls.append(env.delivery_count)
        if env.delivery_count == 1:
            raise RuntimeError("transient")
    bus = run(LocalBus(), flaky)
    bus.send([msg("m")])
    assert bus.wait_idle(5)
    bus.stop()
    assert calls == [1, 2] and bus.dead_letters == []


def test_batches_hold_up_to_the_batch_size_and_a_failure_redelivers_the_whole_batch():
    sizes, failed = [], []
    def handler(envs):
        sizes.append(len(envs))
        if not failed:
            failed.append(True)
            raise RuntimeError("batch failed")
    bus = LocalBus(workers_per_queue=1)
    bus.send([msg(f"m{i}") for i in range(25)])
    bus.subscribe("q", handler, batch_size=10)
    bus.start()
    assert bus.wait_idle(5)
    bus.stop()
    assert max(sizes) == 10 and sum(sizes) == 25 + sizes[0]  # the failed batch came back whole


def test_dead_letter_counts_become_one_incident_per_count_in_the_sweep():
    from shared.services import sweep
    from tests.factories import memory_services

    def fail(env):
        raise RuntimeError("handler keeps failing")
    bus = run(LocalBus(max_deliveries=2, workers_per_queue=1), fail, queue="triage")
    bus.send([msg("m-1", queue="triage")])
    assert bus.wait_idle(5)
    bus.stop()
    assert bus.dead_letter_counts(["triage", "plan"]) == {"triage": 1, "plan": 0}
    svc = memory_services()
    svc.bus = bus
    assert sweep.run(svc, "s1")["deadLettered"] == 1
    sweep.run(svc, "s2")
    assert [i.id for i in svc.reference.incidents(10) if i.kind == "dead_letter"] == ["dlq-triage-1"]
    assert any(n[0] == "escalate" and "dead-lettered" in n[2] for n in svc.notifier.sent)
