"""One contract, every store: the in-memory store and Azure Tables (on Azurite) behave the same."""
import json
from dataclasses import replace
from datetime import timedelta
from functools import partial

import pytest

from shared.adapters.memory.store import MemoryStore
from shared.adapters.tables.store import TablesStore
from shared.domain.audit import AuditEntry
from shared.domain.execution import SUCCEEDED, new_execution
from shared.domain.opportunity import from_findings, merge
from shared.domain.status import Status
from shared.ports import Claim, ConcurrencyConflict, Filter
from shared.runtime import REPO_CATALOG, load_catalog, load_policy
from tests.factories import NOW, finding, validated

CATALOG = load_catalog(REPO_CATALOG, "local")
POLICY = load_policy(REPO_CATALOG).scoring
MERGE = partial(merge, catalog=CATALOG, policy=POLICY, now=NOW)


@pytest.fixture(params=["memory", "tables", "tables-sharded", "dataverse"])
def store(request):
    if request.param == "memory":
        return MemoryStore()
    if request.param == "tables-sharded":
        return TablesStore(request.getfixturevalue("shard_clients"))
    if request.param == "dataverse":
        return request.getfixturevalue("dataverse_store")
    return TablesStore(request.getfixturevalue("table_client"))


@pytest.fixture(params=["memory", "tables", "tables-sharded"])
def coordination(request):
    """The backends that serve the coordination port (Dataverse does not: it is paired with Azure Tables)."""
    if request.param == "memory":
        return MemoryStore()
    if request.param == "tables-sharded":
        return TablesStore(request.getfixturevalue("shard_clients"))
    return TablesStore(request.getfixturevalue("table_client"))


@pytest.fixture
def dataverse_store(table_client):
    """Records and reference data in a fake Dataverse, provisioned as in production."""
    from devhost.dataverse_fake import FakeDataverse
    from shared.adapters.dataverse.client import DataverseClient
    from shared.adapters.dataverse.provision import provision
    from shared.adapters.dataverse.schema import Names
    from shared.adapters.dataverse.store import DataverseStore

    with FakeDataverse() as server:
        client = DataverseClient(server.url, lambda: "test-token", solution="closedloop")
        provision(client, Names("cl"))
        yield DataverseStore(client, Names("cl"))


def seeded(store):
    [result] = store.ingest(from_findings(validated(finding()), CATALOG, POLICY, NOW), MERGE)
    return store.get(result.opportunity.id)


def entry(opp, event, seq=0, at=NOW):
    return AuditEntry(opp.id, at, "executor", event, "because", "cid", {"in": 1}, {"out": 2}, {"action": 1}, seq)


def test_commit_changes_status_records_the_execution_and_appends_audit_together(store):
    opp = seeded(store)
    x = new_execution(opp.id, "ap.request-missing-fields", 1, {"invoiceId": "I"}, NOW, "cid", {"method": "d"})
    store.commit(opp.transition(Status.triaged, "triage", "ok", NOW), [x], [entry(opp, "triaged")])
    assert store.get(opp.id).status is Status.triaged
    [stored] = store.executions(opp.id)
    assert stored.id == x.id and stored.parameters == {"invoiceId": "I"} and stored.etag
    assert [(a.event, a.inputs, a.outputs) for a in store.audit(opp.id)] == [("triaged", {"in": 1}, {"out": 2})]


def test_commit_with_a_stale_opportunity_writes_nothing(store):
    opp = seeded(store)
    store.commit(opp.transition(Status.triaged, "triage", "ok", NOW))
    x = new_execution(opp.id, "a", 1, {}, NOW, "cid", {})
    with pytest.raises(ConcurrencyConflict):
        store.commit(opp.transition(Status.needs_data, "triage", "late", NOW), [x], [entry(opp, "late")])
    assert store.executions(opp.id) == [] and store.audit(opp.id) == []
    assert store.get(opp.id).status is Status.triaged


def test_an_execution_is_created_once_and_then_only_replaced_by_etag(store):
    opp = seeded(store)
    x = new_execution(opp.id, "a", 1, {}, NOW, "cid", {})
    opp = store.commit(opp, [x])
    twin = new_execution(opp.id, "a", 1, {}, NOW, "cid", {})  # a redelivery deciding the same thing
    with pytest.raises(ConcurrencyConflict):
        store.commit(store.get(opp.id), [twin])
    x.status, x.evidence = SUCCEEDED, {"recordIds": ["INV-1"]}
    store.commit(store.get(opp.id), [x])
    assert [(e.status, e.evidence) for e in store.executions(opp.id)] == [(SUCCEEDED, {"recordIds": ["INV-1"]})]


# Azure Tables holds 64 KiB of UTF-16 per string property: 48,000 characters, a fifth of them astral
# (two UTF-16 units each), are ~117 KiB there.
LONG = "é€😀xy" * 9_600


def test_text_longer_than_one_table_property_round_trips_and_shrinks_again(store):
    opp = seeded(store)
    x = new_execution(opp.id, "a", 1, {}, NOW, "cid", {})
    x.status, x.evidence = SUCCEEDED, {"recordIds": ["INV-1"], "before": {"invoice": {"note": LONG}}}
    long_history = [{"from": "new", "to": "triaged", "at": NOW.isoformat(), "actor": "t", "reason": LONG}]
    opp = store.commit(replace(opp, history=long_history), [x])
    assert store.get(opp.id).history == long_history
    [stored] = store.executions(opp.id)
    assert stored.evidence == x.evidence
    stored.evidence = {"recordIds": ["INV-1"]}  # replaced by a short value: no part of the long one lingers
    store.commit(store.get(opp.id), [stored])
    assert [e.evidence for e in store.executions(opp.id)] == [{"recordIds": ["INV-1"]}]
    assert [r["caseKey"] for r in store.scan(Filter(), ["caseKey", "status"])] == [opp.caseKey]


def test_operational_state_longer_than_one_table_property_round_trips(coordination):
    coordination.put_state("big", {"items": {str(i): LONG[:1000] for i in range(120)}})
    assert coordination.state("big") == {"items": {str(i): LONG[:1000] for i in range(120)}}


def test_commits_past_one_transactions_4_mib_land_whole_in_several(store):
    from shared.ports import Commit

    results = store.ingest(from_findings(validated(*[finding() for _ in range(40)]), CATALOG, POLICY, NOW), MERGE)
    opps = [store.get(r.opportunity.id) for r in results]
    assert len({o.group for o in opps}) == 1  # one partition: Tables would put them in one transaction
    # 40 × ~135 KB of UTF-8 evidence: ~5.4 MB, past the service's 4 MiB per transaction.
    evidence = {"before": {f"r{k}": {"text": "行" * 15_000} for k in range(3)}}
    commits = []
    for o in opps:
        x = new_execution(o.id, "a", 1, {}, NOW, "cid", {})
        x.status, x.evidence = SUCCEEDED, evidence
        commits.append(Commit(o.transition(Status.triaged, "triage", "ok", NOW), [x], [entry(o, "triaged")]))
    assert store.commit_many(commits) == [None] * 40
    assert all(store.get(o.id).status is Status.triaged for o in opps)
    assert all([x.evidence for x in store.executions(o.id)] == [evidence] for o in opps)


def test_an_ingest_past_one_transactions_4_mib_is_stored_whole(store):
    # Findings at their limits, in astral characters (4 bytes of UTF-8 each): 100 × ~52 KB in one partition.
    emoji = "😀"
    found = from_findings(validated(*[finding(caseKey=f"BIG-{i}", rootCause=emoji * 2_000,
                                              recommendedAction=emoji * 2_000,
                                              attributes={"invoiceId": f"BIG-{i}", "note": emoji * 9_000})
                                      for i in range(100)]), CATALOG, POLICY, NOW)
    assert [r.outcome for r in store.ingest(found, MERGE)] == ["created"] * 100
    back = store.get(found[-1].id)
    assert back.attributes["note"] == emoji * 9_000 and back.rootCause == emoji * 2_000


def test_audit_is_append_only_and_ordered(store):
    opp = seeded(store)
    for i, event in enumerate(["a", "b", "c"]):
        opp = store.commit(store.get(opp.id), audit=[entry(opp, event, at=NOW + timedelta(seconds=i))])
    assert [a.event for a in store.audit(opp.id)] == ["a", "b", "c"]


def test_executions_and_audit_rows_never_show_up_as_opportunities(store):
    opp = seeded(store)
    store.commit(opp, [new_execution(opp.id, "a", 1, {}, NOW, "cid", {})], [entry(opp, "x")])
    assert [o.id for o in store.ranked(Filter(), 10, None)] == [opp.id]
    assert len(list(store.scan(Filter(), ["status"]))) == 1
    assert [o.id for o in store.stale(["new"], NOW + timedelta(days=1))] == [opp.id]


def test_commit_many_writes_the_good_commits_and_names_the_stale_one(store):
    from shared.ports import Commit
    opps = store.ingest(from_findings(validated(*[finding() for _ in range(5)]), CATALOG, POLICY, NOW), MERGE)
    current = [store.get(r.opportunity.id) for r in opps]
    stale = current[2]
    store.commit(store.get(stale.id).transition(Status.triaged, "other", "won the race", NOW))
    commits = [Commit(o.transition(Status.triaged, "triage", "batch", NOW),
                      [new_execution(o.id, "a", 1, {}, NOW, "cid", {})], [entry(o, "triaged")]) for o in current]
    results = store.commit_many(commits)
    assert [r is None for r in results] == [True, True, False, True, True]
    assert isinstance(results[2], ConcurrencyConflict)
    for i, o in enumerate(current):
        assert len(store.executions(o.id)) == (0 if i == 2 else 1)
        assert commits[i].opportunity.etag and (i == 2 or commits[i].executions[0].etag)
    assert store.get_many([o.id for o in current]).keys() == {o.id for o in current}
    x = commits[0].executions[0]
    assert store.execution(current[0].id, x.id).id == x.id and store.execution(current[0].id, "nope") is None


def test_first_claim_holds_a_key_and_a_later_claimant_sees_the_holder(coordination):
    first = coordination.claim_many([Claim("s1", "k1", "opp-a"), Claim("s1", "k2", "opp-a"), Claim("s2", "k3", "opp-b")])
    assert {k: c.holder for k, c in first.items()} == {"k1": "opp-a", "k2": "opp-a", "k3": "opp-b"}
    again = coordination.claim_many([Claim("s1", "k0", "opp-c"), Claim("s1", "k1", "opp-c"), Claim("s1", "k2", "opp-a")])
    assert {k: c.holder for k, c in again.items()} == {"k0": "opp-c", "k1": "opp-a", "k2": "opp-a"}
    assert again["k1"].etag


def test_take_over_needs_the_claim_unchanged_since_it_was_read(coordination):
    held = coordination.claim_many([Claim("s", "k", "opp-a")])["k"]
    assert coordination.take_over(held, "opp-b") is True
    assert coordination.take_over(held, "opp-c") is False  # its ETag is gone: opp-b moved first
    assert coordination.claim_many([Claim("s", "k", "opp-d")])["k"].holder == "opp-b"


def test_approvals_are_committed_with_the_opportunity_and_decided_under_their_etag(store):
    from dataclasses import replace as copy

    from shared.domain.approvals import new_approval

    opp = seeded(store)
    approval, _ = new_approval(opp.id, opp.revision, "approve", "ap.post-gl-adjustment", 1, "AP.Approver", b"k" * 32,
                               NOW, timedelta(hours=1), "cid")
    opp = store.commit(opp, (), [entry(opp, "awaiting_approval")], [approval])
    found = store.approval(approval.id)
    assert found is not None and found.requiredRole == "AP.Approver" and found.etag == approval.etag
    assert [a.id for a in store.pending_approvals()] == [approval.id]
    decided = copy(found, decision="approved", decidedBy="ana", decidedAt=NOW)
    opp = store.commit(opp, (), [entry(opp, "approved", seq=1)], [decided])
    assert store.approval(approval.id).decision == "approved" and store.pending_approvals() == []
    with pytest.raises(ConcurrencyConflict):
        store.commit(opp, (), [], [copy(found, decision="rejected")])  # the ETag it was read with is gone
    assert [a.decision for a in store.approvals(opp.id)] == ["approved"]
    assert store.approval("nonsense") is None


def test_an_incident_recorded_again_replaces_itself_and_the_newest_comes_first(store):
    from shared.ports import Incident

    store.record_incident(Incident("i-1", NOW, "poison", "triage", "first"))
    store.record_incident(Incident("i-2", NOW + timedelta(minutes=1), "failed", "execute", "second"))
    store.record_incident(Incident("i-1", NOW + timedelta(minutes=2), "poison", "triage", "first, again"))
    assert [(i.id, i.detail) for i in store.incidents(10)] == [("i-1", "first, again"), ("i-2", "second")]
    assert [i.id for i in store.incidents(1)] == ["i-1"]


def test_outcomes_are_kept_once_per_observation_and_a_correction_replaces_the_value(store):
    from shared.domain.outcomes import Outcome, outcome_id

    def obs(case, value, area="accounts-payable", metric="cycle_time_days"):
        return Outcome(outcome_id(area, case, metric, NOW), area, case, metric, value, NOW, "test")

    batch = [obs(f"INV-{i}", float(i)) for i in range(230)] + [obs("L-1", 1.0, "lead-management", "sla_met")]
    store.add_outcomes(batch)
    store.add_outcomes(batch[:5])                 # a redelivery
    store.add_outcomes([obs("INV-3", 42.0)])      # a correction of the same observation
    kept = {o.id: o for o in store.outcomes()}
    assert len(kept) == 231
    assert kept[obs("INV-3", 0).id].value == 42.0 and kept[obs("INV-3", 0).id].observedAt == NOW
    assert kept[batch[-1].id].metric == "sla_met" and kept[batch[-1].id].processArea == "lead-management"


def test_the_arm_drawn_at_triage_is_kept_with_the_opportunity(store):
    opp = seeded(store)
    arm = {"actionId": "ap.request-missing-fields", "version": 1, "at": NOW.isoformat()}
    store.commit(replace(opp.transition(Status.control, "triage", "held out", NOW), cohort="control", arm=arm))
    assert store.get(opp.id).arm == arm
    [row] = list(store.scan(Filter(), ["caseKey", "cohort", "arm"]))
    assert row["cohort"] == "control" and (row["arm"] == arm or json.loads(row["arm"]) == arm)


def test_decided_approvals_are_listed_with_their_feedback(store):
    from shared.domain.approvals import Approval

    opp = seeded(store)
    asked = Approval(f"{opp.id}-a1", opp.id, "approve", "ap.post-gl-adjustment", 1, "AP.Approver", "h", NOW,
                     NOW + timedelta(hours=1), "cid")
    store.commit(opp, approvals=[asked])
    assert store.decided_approvals(NOW - timedelta(days=1)) == []
    decided = replace(store.approval(asked.id), decision="approved", decidedBy="ana", decidedAt=NOW, helpful=False)
    store.commit(store.get(opp.id), approvals=[decided])
    [found] = store.decided_approvals(NOW - timedelta(days=1))
    assert found.id == asked.id and found.helpful is False and found.decidedBy == "ana"
    assert store.decided_approvals(NOW + timedelta(minutes=1)) == []


def test_prompt_versions_are_added_once_never_edited_and_activated_by_name(store):
    doc = {"name": "plan", "version": 2, "system": "s" * 9000, "user": "{data}", "author": "max", "reason": "r"}
    store.add_prompt_version(doc)
    with pytest.raises(ConcurrencyConflict):
        store.add_prompt_version({**doc, "system": "changed"})
    store.add_prompt_version({**doc, "name": "triage"})
    assert sorted((d["name"], d["version"], d["system"]) for d in store.prompt_versions()) == [
        ("plan", 2, "s" * 9000), ("triage", 2, "s" * 9000)]
    store.add_activation({"id": "~prompt~plan", "version": 2, "approvedBy": "ana"})
    store.add_activation({"id": "~policy", "version": 2, "approvedBy": "ana"})
    with pytest.raises(ConcurrencyConflict):
        store.add_activation({"id": "~prompt~plan", "version": 2, "approvedBy": "eve"})
    assert {(a["id"], a["version"]) for a in store.activations()} >= {("~prompt~plan", 2), ("~policy", 2)}
