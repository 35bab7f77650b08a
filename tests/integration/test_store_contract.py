"""One contract per store port, every backend that serves it: memory, Azure Tables (on Azurite, in one table and
sharded) and Dataverse (records and reference data only) behave the same."""
import json
from dataclasses import replace
from datetime import timedelta
from functools import partial

import pytest

from shared.adapters.memory.store import MemoryStore
from shared.adapters.tables import from_clients
from shared.domain.audit import AuditEntry
from shared.domain.execution import SUCCEEDED, new_execution
from shared.domain.opportunity import from_findings, merge
from shared.domain.status import Status
from shared.ports import Claim, ConcurrencyConflict, Cursor, Filter
from shared.runtime import REPO_CATALOG, load_catalog, load_policy
from tests.factories import NOW, finding, validated

CATALOG = load_catalog(REPO_CATALOG, "local")
POLICY = load_policy(REPO_CATALOG).scoring
MERGE = partial(merge, catalog=CATALOG, policy=POLICY, now=NOW)


def _port(request, port):
    """`port` of the backend the fixture's param names (memory and Dataverse serve theirs from one object)."""
    if request.param == "memory":
        return MemoryStore()
    if request.param == "dataverse":
        return request.getfixturevalue("dataverse_store")
    clients = request.getfixturevalue("shard_clients" if request.param == "tables-sharded" else "table_client")
    return getattr(from_clients(clients), port)


@pytest.fixture(params=["memory", "tables", "tables-sharded", "dataverse"])
def records(request):
    return _port(request, "records")


@pytest.fixture(params=["memory", "tables", "dataverse"])
def reference(request):
    return _port(request, "reference")


@pytest.fixture(params=["memory", "tables", "tables-sharded"])
def coordination(request):
    """The backends that serve the coordination port (Dataverse does not: it is paired with Azure Tables)."""
    return _port(request, "coordination")


@pytest.fixture
def dataverse_store():
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


def seeded(records):
    [result] = records.ingest(from_findings(validated(finding()), CATALOG, POLICY, NOW), MERGE)
    return records.get(result.opportunity.id)


def entry(opp, event, seq=0, at=NOW):
    return AuditEntry(opp.id, at, "executor", event, "because", "cid", {"in": 1}, {"out": 2}, {"action": 1}, seq)


def test_commit_changes_status_records_the_execution_and_appends_audit_together(records):
    opp = seeded(records)
    x = new_execution(opp.id, "ap.request-missing-fields", 1, {"invoiceId": "I"}, NOW, "cid", {"method": "d"})
    records.commit(opp.transition(Status.triaged, "triage", "ok", NOW), [x], [entry(opp, "triaged")])
    assert records.get(opp.id).status is Status.triaged
    [stored] = records.executions(opp.id)
    assert stored.id == x.id and stored.parameters == {"invoiceId": "I"} and stored.etag
    assert [(a.event, a.inputs, a.outputs) for a in records.audit(opp.id)] == [("triaged", {"in": 1}, {"out": 2})]


def test_commit_with_a_stale_opportunity_writes_nothing(records):
    opp = seeded(records)
    records.commit(opp.transition(Status.triaged, "triage", "ok", NOW))
    x = new_execution(opp.id, "a", 1, {}, NOW, "cid", {})
    with pytest.raises(ConcurrencyConflict):
        records.commit(opp.transition(Status.needs_data, "triage", "late", NOW), [x], [entry(opp, "late")])
    assert records.executions(opp.id) == [] and records.audit(opp.id) == []
    assert records.get(opp.id).status is Status.triaged


def test_an_execution_is_created_once_and_then_only_replaced_by_etag(records):
    opp = seeded(records)
    x = new_execution(opp.id, "a", 1, {}, NOW, "cid", {})
    opp = records.commit(opp, [x])
    twin = new_execution(opp.id, "a", 1, {}, NOW, "cid", {})  # a redelivery deciding the same thing
    with pytest.raises(ConcurrencyConflict):
        records.commit(records.get(opp.id), [twin])
    x.status, x.evidence = SUCCEEDED, {"recordIds": ["INV-1"]}
    records.commit(records.get(opp.id), [x])
    assert [(e.status, e.evidence) for e in records.executions(opp.id)] == [(SUCCEEDED, {"recordIds": ["INV-1"]})]


# Azure Tables holds 64 KiB of UTF-16 per string property: 48,000 characters, a fifth of them astral
# (two UTF-16 units each), are ~117 KiB there.
LONG = "é€😀xy" * 9_600


def test_text_longer_than_one_table_property_round_trips_and_shrinks_again(records):
    opp = seeded(records)
    x = new_execution(opp.id, "a", 1, {}, NOW, "cid", {})
    x.status, x.evidence = SUCCEEDED, {"recordIds": ["INV-1"], "before": {"invoice": {"note": LONG}}}
    long_history = [{"from": "new", "to": "triaged", "at": NOW.isoformat(), "actor": "t", "reason": LONG}]
    opp = records.commit(replace(opp, history=long_history), [x])
    assert records.get(opp.id).history == long_history
    [stored] = records.executions(opp.id)
    assert stored.evidence == x.evidence
    stored.evidence = {"recordIds": ["INV-1"]}  # replaced by a short value: no part of the long one lingers
    records.commit(records.get(opp.id), [stored])
    assert [e.evidence for e in records.executions(opp.id)] == [{"recordIds": ["INV-1"]}]
    assert [r["caseKey"] for r in records.scan(Filter(), ["caseKey", "status"])] == [opp.caseKey]


def test_operational_state_longer_than_one_table_property_round_trips(coordination):
    coordination.put_state("big", {"items": {str(i): LONG[:1000] for i in range(120)}})
    assert coordination.state("big") == {"items": {str(i): LONG[:1000] for i in range(120)}}


def test_commits_past_one_transactions_4_mib_land_whole_in_several(records):
    from shared.ports import Commit

    results = records.ingest(from_findings(validated(*[finding() for _ in range(40)]), CATALOG, POLICY, NOW), MERGE)
    opps = [records.get(r.opportunity.id) for r in results]
    assert len({o.group for o in opps}) == 1  # one partition: Tables would put them in one transaction
    # 40 × ~135 KB of UTF-8 evidence: ~5.4 MB, past the service's 4 MiB per transaction.
    evidence = {"before": {f"r{k}": {"text": "行" * 15_000} for k in range(3)}}
    commits = []
    for o in opps:
        x = new_execution(o.id, "a", 1, {}, NOW, "cid", {})
        x.status, x.evidence = SUCCEEDED, evidence
        commits.append(Commit(o.transition(Status.triaged, "triage", "ok", NOW), [x], [entry(o, "triaged")]))
    assert records.commit_many(commits) == [None] * 40
    assert all(records.get(o.id).status is Status.triaged for o in opps)
    assert all([x.evidence for x in records.executions(o.id)] == [evidence] for o in opps)


def test_an_ingest_past_one_transactions_4_mib_is_stored_whole(records):
    # Findings at their limits, in astral characters (4 bytes of UTF-8 each): 100 × ~52 KB in one partition.
    emoji = "😀"
    found = from_findings(validated(*[finding(caseKey=f"BIG-{i}", rootCause=emoji * 2_000,
                                              recommendedAction=emoji * 2_000,
                                              attributes={"invoiceId": f"BIG-{i}", "note": emoji * 9_000})
                                      for i in range(100)]), CATALOG, POLICY, NOW)
    assert [r.outcome for r in records.ingest(found, MERGE)] == ["created"] * 100
    back = records.get(found[-1].id)
    assert back.attributes["note"] == emoji * 9_000 and back.rootCause == emoji * 2_000


def test_audit_is_append_only_and_ordered(records):
    opp = seeded(records)
    for i, event in enumerate(["a", "b", "c"]):
        opp = records.commit(records.get(opp.id), audit=[entry(opp, event, at=NOW + timedelta(seconds=i))])
    assert [a.event for a in records.audit(opp.id)] == ["a", "b", "c"]


def test_executions_and_audit_rows_never_show_up_as_opportunities(records):
    opp = seeded(records)
    records.commit(opp, [new_execution(opp.id, "a", 1, {}, NOW, "cid", {})], [entry(opp, "x")])
    assert [o.id for o in records.ranked(Filter(), 10, None)] == [opp.id]
    assert len(list(records.scan(Filter(), ["status"]))) == 1
    assert [o.id for o in records.stale(["new"], NOW + timedelta(days=1))] == [opp.id]


def test_state_separates_open_work_from_finished_in_ranked_and_scan(records):
    opps = records.ingest(from_findings(validated(*[finding() for _ in range(3)]), CATALOG, POLICY, NOW), MERGE)
    waiting, dismissed, closed = (records.get(r.opportunity.id) for r in opps)
    records.commit(dismissed.transition(Status.dismissed, "olga", "not worth it", NOW))
    records.commit(closed.transition(Status.duplicate, "triage", "seen", NOW).transition(
        Status.closed, "sweep", "done", NOW))
    for state, expected in (("open", {waiting.id}), ("finished", {dismissed.id, closed.id}),
                            (None, {waiting.id, dismissed.id, closed.id})):
        where = Filter(state=state)
        assert {o.id for o in records.ranked(where, 10, None)} == expected, state
        assert {r["caseKey"] for r in records.scan(where, ["caseKey"])} == {
            o.caseKey for o in (waiting, dismissed, closed) if o.id in expected}, state
    # With a status, a keyset position and a group key the filter still fits one query (15 comparisons at most).
    group = Filter(processArea=waiting.processArea, deviationPattern=waiting.deviationPattern, state="finished")
    [first, second] = records.ranked(group, 2, None)
    assert [o.id for o in records.ranked(group, 5, Cursor(first.scores.priority, first.id))] == [second.id]
    assert [o.id for o in records.ranked(Filter(status="closed", state="finished"), 5, None)] == [closed.id]
    assert records.ranked(Filter(status="closed", state="open"), 5, None) == []


def test_commit_many_writes_the_good_commits_and_names_the_stale_one(records):
    from shared.ports import Commit
    opps = records.ingest(from_findings(validated(*[finding() for _ in range(5)]), CATALOG, POLICY, NOW), MERGE)
    current = [records.get(r.opportunity.id) for r in opps]
    stale = current[2]
    records.commit(records.get(stale.id).transition(Status.triaged, "other", "won the race", NOW))
    commits = [Commit(o.transition(Status.triaged, "triage", "batch", NOW),
                      [new_execution(o.id, "a", 1, {}, NOW, "cid", {})], [entry(o, "triaged")]) for o in current]
    results = records.commit_many(commits)
    assert [r is None for r in results] == [True, True, False, True, True]
    assert isinstance(results[2], ConcurrencyConflict)
    for i, o in enumerate(current):
        assert len(records.executions(o.id)) == (0 if i == 2 else 1)
        assert commits[i].opportunity.etag and (i == 2 or commits[i].executions[0].etag)
    assert records.get_many([o.id for o in current]).keys() == {o.id for o in current}
    x = commits[0].executions[0]
    assert records.execution(current[0].id, x.id).id == x.id and records.execution(current[0].id, "nope") is None


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


def test_approvals_are_committed_with_the_opportunity_and_decided_under_their_etag(records):
    from dataclasses import replace as copy

    from shared.domain.approvals import new_approval

    opp = seeded(records)
    approval, _ = new_approval(opp.id, opp.revision, "approve", "ap.post-gl-adjustment", 1, "AP.Approver", b"k" * 32,
                               NOW, timedelta(hours=1), "cid")
    opp = records.commit(opp, (), [entry(opp, "awaiting_approval")], [approval])
    found = records.approval(approval.id)
    assert found is not None and found.requiredRole == "AP.Approver" and found.etag == approval.etag
    assert [a.id for a in records.pending_approvals()] == [approval.id]
    decided = copy(found, decision="approved", decidedBy="ana", decidedAt=NOW)
    opp = records.commit(opp, (), [entry(opp, "approved", seq=1)], [decided])
    assert records.approval(approval.id).decision == "approved" and records.pending_approvals() == []
    with pytest.raises(ConcurrencyConflict):
        records.commit(opp, (), [], [copy(found, decision="rejected")])  # the ETag it was read with is gone
    assert [a.decision for a in records.approvals(opp.id)] == ["approved"]
    assert records.approval("nonsense") is None


def test_an_incident_recorded_again_replaces_itself_and_the_newest_comes_first(reference):
    from shared.ports import Incident

    reference.record_incident(Incident("i-1", NOW, "poison", "triage", "first"))
    reference.record_incident(Incident("i-2", NOW + timedelta(minutes=1), "failed", "execute", "second"))
    reference.record_incident(Incident("i-1", NOW + timedelta(minutes=2), "poison", "triage", "first, again"))
    assert [(i.id, i.detail) for i in reference.incidents(10)] == [("i-1", "first, again"), ("i-2", "second")]
    assert [i.id for i in reference.incidents(1)] == ["i-1"]


def test_outcomes_are_kept_once_per_observation_and_a_correction_replaces_the_value(reference):
    from shared.domain.outcomes import Outcome, outcome_id

    def obs(case, value, area="accounts-payable", metric="cycle_time_days"):
        return Outcome(outcome_id(area, case, metric, NOW), area, case, metric, value, NOW, "test")

    batch = [obs(f"INV-{i}", float(i)) for i in range(230)] + [obs("L-1", 1.0, "lead-management", "sla_met")]
    reference.add_outcomes(batch)
    reference.add_outcomes(batch[:5])                 # a redelivery
    reference.add_outcomes([obs("INV-3", 42.0)])      # a correction of the same observation
    kept = {o.id: o for o in reference.outcomes()}
    assert len(kept) == 231
    assert kept[obs("INV-3", 0).id].value == 42.0 and kept[obs("INV-3", 0).id].observedAt == NOW
    assert kept[batch[-1].id].metric == "sla_met" and kept[batch[-1].id].processArea == "lead-management"


def test_the_arm_drawn_at_triage_is_kept_with_the_opportunity(records):
    opp = seeded(records)
    arm = {"actionId": "ap.request-missing-fields", "version": 1, "at": NOW.isoformat()}
    records.commit(replace(opp.transition(Status.control, "triage", "held out", NOW), cohort="control", arm=arm))
    assert records.get(opp.id).arm == arm
    [row] = list(records.scan(Filter(), ["caseKey", "cohort", "arm"]))
    assert row["cohort"] == "control" and (row["arm"] == arm or json.loads(row["arm"]) == arm)


def test_decided_approvals_are_listed_with_their_feedback(records):
    from shared.domain.approvals import Approval

    opp = seeded(records)
    asked = Approval(f"{opp.id}-a1", opp.id, "approve", "ap.post-gl-adjustment", 1, "AP.Approver", "h", NOW,
                     NOW + timedelta(hours=1), "cid")
    records.commit(opp, approvals=[asked])
    assert records.decided_approvals(NOW - timedelta(days=1)) == []
    decided = replace(records.approval(asked.id), decision="approved", decidedBy="ana", decidedAt=NOW, helpful=False)
    records.commit(records.get(opp.id), approvals=[decided])
    [found] = records.decided_approvals(NOW - timedelta(days=1))
    assert found.id == asked.id and found.helpful is False and found.decidedBy == "ana"
    assert records.decided_approvals(NOW + timedelta(minutes=1)) == []


def test_prompt_versions_are_added_once_never_edited_and_activated_by_name(reference):
    doc = {"name": "plan", "version": 2, "system": "s" * 9000, "user": "{data}", "author": "max", "reason": "r"}
    reference.add_prompt_version(doc)
    with pytest.raises(ConcurrencyConflict):
        reference.add_prompt_version({**doc, "system": "changed"})
    reference.add_prompt_version({**doc, "name": "triage"})
    assert sorted((d["name"], d["version"], d["system"]) for d in reference.prompt_versions()) == [
        ("plan", 2, "s" * 9000), ("triage", 2, "s" * 9000)]
    reference.add_activation({"id": "~prompt~plan", "version": 2, "approvedBy": "ana"})
    reference.add_activation({"id": "~policy", "version": 2, "approvedBy": "ana"})
    with pytest.raises(ConcurrencyConflict):
        reference.add_activation({"id": "~prompt~plan", "version": 2, "approvedBy": "eve"})
    assert {(a["id"], a["version"]) for a in reference.activations()} >= {("~prompt~plan", 2), ("~policy", 2)}
