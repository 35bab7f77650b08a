"""Dataverse specifics against the fake Web API over a real socket: request budget, throttling, conflicts,
paging, batching, provisioning, and the whole app on the local host with STORE=dataverse."""
import json
from functools import partial

import pytest
import requests

from devhost.dataverse_fake import FakeDataverse
from shared.adapters.dataverse.client import DataverseClient
from shared.adapters.dataverse.provision import main as provision_main
from shared.adapters.dataverse.provision import plan, provision
from shared.adapters.dataverse.schema import Names
from shared.adapters.dataverse.store import DataverseStore
from shared.domain.opportunity import from_findings, merge
from shared.domain.outcomes import Outcome, outcome_id
from shared.domain.status import Status
from shared.ports import ConcurrencyConflict, Filter
from shared.runtime import REPO_CATALOG, load_catalog, load_policy
from tests.conftest import hosted, settle
from tests.factories import NOW, finding, validated

CATALOG = load_catalog(REPO_CATALOG, "local")
POLICY = load_policy(REPO_CATALOG).scoring
MERGE = partial(merge, catalog=CATALOG, policy=POLICY, now=NOW)
NAMES = Names("cl")


@pytest.fixture
def server():
    with FakeDataverse() as dv:
        provision(DataverseClient(dv.url, lambda: "test-token", solution="closedloop"), NAMES)
        dv.requests = 0
        yield dv


@pytest.fixture
def store(server):
    return DataverseStore(DataverseClient(server.url, lambda: "test-token"), NAMES)


def opportunities(n, **overrides):
    return from_findings(validated(*(finding(**overrides) for _ in range(n))), CATALOG, POLICY, NOW)


def test_ingesting_1000_findings_takes_at_most_five_requests(server, store):
    results = store.ingest(opportunities(1000), MERGE)
    assert len({r.opportunity.id for r in results}) == 1000
    assert server.requests <= 5
    assert len(server.rows["cl_opportunities"]) == 1000


def test_throttled_requests_wait_out_retry_after_and_lose_or_double_nothing(server, store):
    from shared.domain.audit import AuditEntry

    server.throttle_every, server.retry_after = 3, "0"
    results = store.ingest(opportunities(300), MERGE)
    opp = store.get(results[0].opportunity.id)
    for i in range(6):  # each commit is a $batch; every third request is refused with 429 and sent again
        entry = AuditEntry(opp.id, NOW, "test", f"e{i}", "why", "cid", {}, {}, {}, i)
        opp = store.commit(opp, audit=[entry])
    assert server.throttled > 0 and store.client.throttled == server.throttled
    assert len(server.rows["cl_opportunities"]) == 300
    assert len(list(store.scan(Filter(), ["status"]))) == 300
    assert [a.event for a in store.audit(opp.id)] == [f"e{i}" for i in range(6)]


def test_a_write_over_a_concurrent_change_is_a_conflict_not_a_lost_update(server, store):
    [r] = store.ingest(opportunities(1), MERGE)
    mine = store.get(r.opportunity.id)
    other = DataverseStore(DataverseClient(server.url, lambda: "test-token"), NAMES)
    other.commit(other.get(mine.id).transition(Status.triaged, "other", "first", NOW))
    with pytest.raises(ConcurrencyConflict):
        store.commit(mine.transition(Status.control, "me", "second", NOW))
    assert store.get(mine.id).status is Status.triaged


def test_queries_follow_next_links_page_by_page(server, store):
    server.page_size_cap = 50
    store.ingest(opportunities(120), MERGE)
    before = server.requests
    assert len(list(store.scan(Filter(), ["caseKey"]))) == 120
    assert server.requests - before == 3  # 50 + 50 + 20


def test_more_than_1000_operations_go_in_several_batches(server, store):
    found = [Outcome(outcome_id("ap", f"C{i}", "cycle_time_days", NOW), "ap", f"C{i}", "cycle_time_days", 1.0, NOW)
             for i in range(2500)]
    before = server.requests
    store.add_outcomes(found)
    assert server.requests - before == 3 and len(list(store.outcomes())) == 2500


def test_provisioning_twice_changes_nothing_and_puts_everything_in_the_solution():
    with FakeDataverse() as dv:
        client = DataverseClient(dv.url, lambda: "test-token", solution="closedloop")
        first = provision(client, NAMES)
        assert len(first) == len(plan(NAMES)) and provision(client, NAMES) == []
        kinds = {c.split(":")[0] for c in dv.solution["closedloop"]}
        assert kinds == {"choice", "table", "column", "key", "relationship"}
        assert dv.tables["cl_opportunity"]["keys"] == ["cl_key"] and dv.tables["cl_audit"]["attributes"]["cl_opportunity"] == "Lookup"


def test_a_dry_run_prints_the_requests_and_sends_nothing(capsys):
    assert provision_main(["--url", "https://contoso.crm.dynamics.com", "--prefix", "xy", "--dry-run", "--offline"]) == 0
    out = capsys.readouterr().out
    assert "POST EntityDefinitions  # table xy_opportunity" in out and "POST RelationshipDefinitions" in out
    assert '"KeyAttributes": [' in out and "xy_key" in out


def test_an_unprovisioned_table_or_column_is_refused(server):
    wrong = DataverseStore(DataverseClient(server.url, lambda: "test-token"), Names("zz"))
    with pytest.raises(Exception):
        wrong.ingest(opportunities(1), MERGE)


def test_the_app_runs_the_loop_with_its_records_in_dataverse(azurite):
    with FakeDataverse() as dv:
        provision(DataverseClient(dv.url, lambda: "test-token", solution="closedloop"), NAMES)
        with hosted(azurite, STORE="dataverse", DATAVERSE_URL=dv.url, DATAVERSE_TOKEN="test-token") as server:
            lead = [finding(processArea="lead-management", deviationPattern="lead-unassigned", caseKey=f"DV-{i}",
                            attributes={"leadId": f"DV-{i}", "region": "EMEA"}) for i in range(20)]
            assert requests.post(f"{server.base_url}/findings", json=lead).status_code == 202
            settle(server)
            items = requests.get(f"{server.base_url}/opportunities", params={"top": 50}).json()["items"]
            assert {i["status"] for i in items} <= {"verified", "control"} and len(items) == 20
            verified = next(i for i in items if i["status"] == "verified")
            detail = requests.get(f"{server.base_url}/opportunities/{verified['id']}").json()
            assert detail["executions"][0]["status"] == "succeeded" and len(detail["audit"]) >= 4
        assert len(dv.rows["cl_opportunities"]) == 20 and dv.rows["cl_executions"] and dv.rows["cl_audits"]
        row = next(iter(dv.rows["cl_executions"].values()))
        assert row["cl_opportunity@odata.bind"].startswith("/cl_opportunities(cl_key=")


def test_a_process_never_has_more_than_its_share_of_the_52_concurrent_requests(server, store):
    import threading
    import time

    from shared.adapters.dataverse.client import MAX_CONCURRENT

    live, peak, lock = [0], [0], threading.Lock()
    real = server.handle

    def slow(*args, **kwargs):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.05)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                live[0] -= 1

    server.handle = slow
    threads = [threading.Thread(target=store.get, args=(f"{i:032x}",)) for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 < peak[0] <= MAX_CONCURRENT


def test_key_values_dataverse_cannot_address_are_escaped_one_to_one():
    from shared.adapters.dataverse.store import dv_key

    keys = ["a:b", "a!3ab", "a!b", "x/y#z", "2026-11-26T07:00:00.000000Z~ab12", "plain~key.1"]
    escaped = [dv_key(k) for k in keys]
    assert len(set(escaped)) == len(keys)
    assert all(not set(e) & set('/#<>*%&:\\?+') for e in escaped)
    assert dv_key("plain~key.1") == "plain~key.1"  # keys without them (all opportunity ids) are unchanged
