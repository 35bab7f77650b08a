"""The sweep finds a person's lost undo from the pending-undo record, not by reading every verified or failed case."""
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.domain.status import Status
from shared.services import escalations, sweep
from shared.services.closing import close_observed
from tests.http.test_pipeline import drive
from tests.unit.test_escalation import answer, failed_case, verified_case


class Counting:
    """The store, recording the statuses each `stale` query asked for."""

    def __init__(self, store):
        self._store, self.asked = store, []

    def stale(self, statuses, updated_before):
        self.asked.append(set(statuses))
        return self._store.stale(statuses, updated_before)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_the_sweep_reads_no_verified_or_failed_case_to_find_an_undo_whose_nudge_was_lost(svc, sandbox):
    verified_case(svc, "LD-S1")
    failed_case(svc, sandbox, "LD-S2")
    oid, notice = verified_case(svc, "LD-S3")
    answer(svc, notice, "undo")
    svc.bus.messages.clear()  # the request's verify nudge is lost
    svc.clock.current += timedelta(seconds=svc.policy.reconcileAfterSeconds + 1)
    svc.store = counting = Counting(svc.store)
    assert sweep.reconcile(svc, "s1") == 1
    assert counting.asked and all(not q & {"verified", "failed"} for q in counting.asked)
    [m] = svc.bus.messages
    assert (m.body["type"], m.body["opportunityId"]) == ("verify", oid)


def test_an_undo_whose_request_never_committed_is_dropped_by_the_sweep_and_nothing_runs(svc, sandbox, monkeypatch):
    oid, notice = verified_case(svc, "LD-S4")

    def crash(*args, **kwargs):
        raise RuntimeError("the process died before the commit")

    monkeypatch.setattr(svc.store, "commit", crash)
    with pytest.raises(RuntimeError):
        answer(svc, notice, "undo")
    monkeypatch.undo()
    assert oid in escalations.pending_undos(svc)  # the intent was written first
    svc.clock.current += timedelta(seconds=svc.policy.reconcileAfterSeconds + 1)
    assert sweep.run(svc, "s1")["resent"] == 0
    assert escalations.pending_undos(svc) == {} and not svc.bus.messages
    assert svc.store.get(oid).status is Status.verified and "undo" not in svc.store.get(oid).plan
    assert sandbox.effects.get("leads.restore-owner", 0) == 0


def test_an_undo_that_settled_leaves_the_pending_record_at_the_next_sweep(svc, sandbox):
    oid, notice = verified_case(svc, "LD-S5")
    answer(svc, notice, "undo")
    drive(svc)
    assert svc.store.get(oid).status is Status.compensated
    svc.clock.current += timedelta(seconds=svc.policy.reconcileAfterSeconds + 1)
    assert sweep.run(svc, "s1")["resent"] == 0
    assert escalations.pending_undos(svc) == {}
    assert sandbox.effects["leads.restore-owner"] == 1


def test_an_undo_asked_for_before_the_pending_record_existed_is_found_when_its_window_passed(svc, sandbox):
    oid, _ = verified_case(svc, "LD-S6")
    opp = svc.store.get(oid)
    asked = {"by": "olga-oid", "at": opp.updatedAt.isoformat()}
    svc.store.commit(replace(opp, plan={**opp.plan, "undo": asked}, revision=opp.revision + 1))  # no entry, nudge lost
    svc.clock.current += timedelta(days=svc.policy.observationDays, hours=1)
    assert close_observed(svc, "c") == 0 and oid in escalations.pending_undos(svc)
    assert sweep.run(svc, "s1")["resent"] == 1
    drive(svc)
    assert svc.store.get(oid).status is Status.compensated and sandbox.effects["leads.restore-owner"] == 1
