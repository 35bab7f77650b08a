"""The Azure Tables records port against a real Azurite: transactions, dedupe, concurrency, ranking, shards."""
import threading
from datetime import timedelta
from functools import partial

import pytest

from shared.adapters.tables.shards import LayoutMismatch
from shared.adapters.tables import from_clients
from shared.domain.opportunity import from_finding, merge
from shared.domain.status import Status
from shared.ports import ConcurrencyConflict, Cursor, Filter, Incident
from shared.runtime import REPO_CATALOG, load_catalog, load_policy
from tests.factories import NOW, finding, validated

CATALOG = load_catalog(REPO_CATALOG, "local")
POLICY = load_policy(REPO_CATALOG).scoring
MERGE = partial(merge, catalog=CATALOG, policy=POLICY, now=NOW)


def opps(*items):
    return [from_finding(f, CATALOG, POLICY, NOW) for f in validated(*items)]


@pytest.fixture
def store(table_client):
    return from_clients(table_client).records


def test_a_250_finding_batch_over_two_partitions_is_stored_whole(store, table_client):
    batch = opps(*[finding() for _ in range(200)],
                 *[finding(processArea="order-to-cash", deviationPattern="delivery-sla-at-risk") for _ in range(50)])
    results = store.ingest(batch, MERGE)
    assert [r.outcome for r in results] == ["created"] * 250
    assert sum(1 for _ in table_client.query_entities("rowType eq 'opp'", select=["RowKey"])) == 250
    back = store.get(batch[0].id)
    assert back.scores == batch[0].scores and back.attributes == batch[0].attributes
    assert back.explained() == batch[0].explained()
    fresh = from_clients(table_client, remember=0).records.get(batch[0].id)  # read from the service, not memory
    assert fresh.rationale == batch[0].explained() and "Priority =" in fresh.rationale
    assert back.detectedAt == batch[0].detectedAt and back.etag


def test_redelivery_is_a_duplicate_and_a_new_event_updates_in_place(store):
    first = finding(caseKey="INV-1")
    store.ingest(opps(first), MERGE)
    again = store.ingest(opps(first), MERGE)
    assert again[0].outcome == "duplicate" and again[0].opportunity.revision == 1
    mixed = store.ingest(opps(first, finding(caseKey="INV-1"), finding(caseKey="INV-2")), MERGE)
    assert [r.outcome for r in mixed] == ["duplicate", "updated", "created"]
    assert store.get(mixed[1].opportunity.id).occurrences == 2


def test_concurrent_ingest_of_the_same_new_events_counts_each_event_once(store):
    batch = [finding(caseKey=f"RACE-{i}") for i in range(30)]
    extra = [finding(caseKey=f"RACE-{i}") for i in range(30)]  # a second event on each case
    errors = []

    def send(items):
        try:
            store.ingest(opps(*items), MERGE)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(b,)) for b in (batch, extra, batch, extra)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for o in opps(*batch):
        stored = store.get(o.id)
        assert stored.occurrences == 2 and len(stored.sourceEventIds) == 2


def test_save_with_a_stale_etag_is_a_conflict(store):
    [created] = store.ingest(opps(finding()), MERGE)
    a = store.get(created.opportunity.id)
    b = store.get(created.opportunity.id)
    store.save(a.transition(Status.triaged, "t", "r", NOW))
    with pytest.raises(ConcurrencyConflict):
        store.save(b.transition(Status.needs_data, "t", "r", NOW))
    assert store.get(a.id).status is Status.triaged


def test_ranked_keyset_pages_are_ordered_and_disjoint(store):
    store.ingest(opps(*[finding(kpiImpact=float(i % 7) * 10 + 5) for i in range(40)]), MERGE)
    first = store.ranked(Filter(), 15, None)
    second = store.ranked(Filter(), 15, Cursor(first[-1].scores.priority, first[-1].id))
    keys = [(-o.scores.priority, o.id) for o in first + second]
    assert keys == sorted(keys) and len(set(keys)) == 30


def test_ranked_filters_by_status_and_group(store):
    store.ingest(opps(finding(), finding(processArea="lead-management", deviationPattern="lead-unassigned")), MERGE)
    leads = store.ranked(Filter(processArea="Lead-Management", deviationPattern="LEAD-UNASSIGNED"), 10, None)
    assert [o.processArea for o in leads] == ["lead-management"]
    assert store.ranked(Filter(status="triaged"), 10, None) == []


def test_stale_finds_opportunities_left_in_a_status(store):
    [r] = store.ingest(opps(finding()), MERGE)
    assert store.stale(["new"], NOW - timedelta(seconds=1)) == []
    assert [o.id for o in store.stale(["new"], NOW + timedelta(seconds=1))] == [r.opportunity.id]


def test_sharded_store_spreads_partitions_and_keeps_each_whole_in_one_table(shard_clients):
    store = from_clients(shard_clients).records
    areas = [("accounts-payable", f"pattern-{i}") for i in range(12)]
    batch = opps(*[finding(processArea=a, deviationPattern=p) for a, p in areas for _ in range(5)])
    assert {r.outcome for r in store.ingest(batch, MERGE)} == {"created"}
    homes: dict[str, set[int]] = {}
    for i, client in enumerate(shard_clients):
        for e in client.query_entities("rowType eq 'opp'", select=["PartitionKey"]):
            homes.setdefault(e["PartitionKey"], set()).add(i)
    assert len(homes) == 12 and all(len(tables) == 1 for tables in homes.values())
    assert len({next(iter(t)) for t in homes.values()}) > 1  # more than one shard in use
    fresh = from_clients(shard_clients, remember=0).records
    assert len(fresh.ranked(Filter(), 100, None)) == 60
    assert fresh.get(batch[-1].id).id == batch[-1].id


def test_opening_sharded_tables_with_another_shard_count_is_refused(shard_clients):
    from_clients(shard_clients).records.ping()
    with pytest.raises(LayoutMismatch, match="TABLE_SHARDS=3"):
        from_clients(shard_clients[:2]).coordination.ping()  # whichever port is used first checks the layout


def test_the_three_ports_create_and_check_their_tables_once_between_them(shard_clients, monkeypatch):
    from shared.adapters.tables import shards as tables_shards

    prepared = []
    real = tables_shards.prepare
    monkeypatch.setattr(tables_shards, "prepare", lambda *tables: prepared.append(tables) or real(*tables))
    records, reference, coordination = from_clients(shard_clients)
    coordination.put_state("heartbeat", {"at": 1})
    reference.record_incident(Incident("i-1", NOW, "poison", "triage", "x"))
    records.ping()
    assert len(prepared) == 1 and coordination.state("heartbeat") == {"at": 1}


def test_a_projection_that_names_a_spilled_property_gets_it_whole(table_client):
    from shared.adapters.tables import batch as tables_batch, query as tables_query

    long = "😀ab" * 20_000  # 60,000 characters over several properties
    tables_batch.submit(table_client, [tables_batch.Operation("upsert", {
        "PartitionKey": "p", "RowKey": "r", "rowType": "x", "short": "s", "text": long})])
    [projected] = tables_query.query(table_client, "PartitionKey eq 'p'", ["text", "short"])
    assert projected["text"] == long and projected["short"] == "s" and "spilled" not in projected
    [narrow] = tables_query.query(table_client, "PartitionKey eq 'p'", ["short"])
    assert narrow["short"] == "s" and "text" not in narrow
    [whole] = tables_query.query(table_client, "PartitionKey eq 'p'")
    assert whole["text"] == long and not any(k.startswith("text_") for k in whole)


def test_a_null_marker_as_azure_returns_an_absent_selected_property_is_dropped():
    from shared.adapters.tables import spill as tables_spill

    entity = {"PartitionKey": "p", "RowKey": "r", "short": "s", "spilled": None}
    assert tables_spill.joined(entity, lambda: {}) == {"PartitionKey": "p", "RowKey": "r", "short": "s"}
