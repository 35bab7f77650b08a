"""Versioned operational state on every coordination backend (memory, Azure Tables on Azurite, in one table and
sharded): written only under its ETag, listed by prefix; and subscription offsets advanced by concurrent requests
never go down."""
import dataclasses
import threading

import pytest

from shared.adapters.memory.store import MemoryStore
from shared.adapters.tables import from_clients
from shared.domain.offsets import Delivery
from shared.ports import ConcurrencyConflict
from shared.services import sources
from tests.factories import NOW, memory_services


@pytest.fixture(params=["memory", "tables", "tables-sharded"])
def coordination(request):
    if request.param == "memory":
        return MemoryStore()
    clients = request.getfixturevalue("shard_clients" if request.param == "tables-sharded" else "table_client")
    return from_clients(clients).coordination


def test_a_state_is_created_once_and_then_replaced_only_under_its_etag(coordination):
    assert coordination.state_versioned("offsets.a") == (None, None)
    first = coordination.save_state("offsets.a", {"highestOffset": 1}, None)
    with pytest.raises(ConcurrencyConflict):
        coordination.save_state("offsets.a", {"highestOffset": 0}, None)  # a second create
    second = coordination.save_state("offsets.a", {"highestOffset": 2}, first)
    with pytest.raises(ConcurrencyConflict):
        coordination.save_state("offsets.a", {"highestOffset": 1}, first)  # written from a stale read
    assert coordination.state_versioned("offsets.a") == ({"highestOffset": 2}, second)
    assert coordination.state("offsets.a") == {"highestOffset": 2}


def test_states_are_listed_by_prefix_and_nothing_else(coordination):
    coordination.save_state("offsets.b", {"n": 2}, None)
    coordination.save_state("offsets.a", {"n": 1}, None)
    coordination.put_state("offsetsX", {"n": 3})
    coordination.put_state("sweep", {"n": 4})
    assert coordination.states("offsets.") == {"offsets.a": {"n": 1}, "offsets.b": {"n": 2}}
    with pytest.raises(ValueError):
        coordination.states("x' or true or 'a")  # never spliced into a query


def test_concurrent_requests_never_lower_a_subscriptions_offset(coordination):
    svc = dataclasses.replace(memory_services(), coordination=coordination)
    seen: list[int] = []
    done = threading.Event()

    def sender(k: int) -> None:
        # Eight senders of ten offsets each (1..80), racing: at most eight ranges are missing at once, inside the
        # twenty a record keeps (offsets.MAX_MISSING), so every offset is recognised when it lands.
        for n in range(10 * k + 1, 10 * k + 11):
            sources.record(svc, "celonis", [Delivery("sub-1", n, NOW)], f"cid-{n}")

    def watcher() -> None:
        while not done.is_set():
            doc, _ = coordination.state_versioned(sources._name("celonis", "sub-1"))
            if doc:
                seen.append(doc["highestOffset"])

    sources.record(svc, "celonis", [Delivery("sub-1", 0, NOW)], "cid-0")  # opens the record: 1..80 are all new
    threads = [threading.Thread(target=sender, args=(k,)) for k in range(8)]
    watching = threading.Thread(target=watcher)
    watching.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watching.join()
    [item] = sources.view(svc)["items"]
    # Each offset landed once: as the next, past a gap, or filling one; none was taken for a redelivery.
    assert (item["highestOffset"], item["events"], item["redelivered"], item["missing"]) == (80, 81, 0, [])
    assert seen == sorted(seen)  # every read saw the offset stay or rise
