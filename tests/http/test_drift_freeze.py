"""Fault injection in the sandbox flows: a failure rate jumping from 2% to 30% freezes the action in one sweep,
at a busy action's volume and at a small team's (10 executions); a person's unfreeze holds against old evidence."""
from datetime import timedelta

from shared.domain.identity import Principal
from shared.domain.status import Status
from shared.services import autonomy, sweep
from tests.http.test_pipeline import drive, start

ADMIN = Principal("ops-oid", "ops.lead@contoso.com", frozenset({"Autonomy.Admin"}), "easy-auth")


def run_leads(svc, n, prefix):
    ids = [start(svc, caseKey=f"{prefix}-{i}", attributes={"leadId": f"{prefix}-{i}", "region": "EMEA"})
           for i in range(n)]
    drive(svc)
    return ids


def test_a_spike_in_failures_freezes_the_action_within_one_sweep_and_escalates_once(svc, sandbox):
    day = svc.clock.current
    sandbox.configure(reject_rate=0.02, seed=5)
    for hour in range(12):  # yesterday: a 2% failure rate, spread over the day
        svc.clock.current = day - timedelta(hours=20) + timedelta(hours=hour)
        run_leads(svc, 12, f"LB{hour}")
    svc.clock.current = day
    assert sweep.run(svc, "s0")["drift"] == 0
    sandbox.configure(reject_rate=0.30, seed=5)
    recent = run_leads(svc, 40, "LR")
    failed = sum(svc.store.get(o).status is Status.failed for o in recent)
    assert failed >= 8  # the injected spike really happened
    svc.clock.current += timedelta(minutes=1)
    assert sweep.run(svc, "s1")["drift"] >= 1
    frozen = autonomy.current(svc, fresh=True)
    assert "leads.reassign" in frozen.frozenActions and frozen.mode_for("leads.reassign") == "approval"
    assert "failure_rate" in frozen.reason
    escalations = [n for n in svc.notifier.sent if n[0] == "escalate" and "drift" in n[2]]
    assert len(escalations) == 1
    sweep.run(svc, "s2")  # still drifting: no second freeze, no second card
    assert len([n for n in svc.notifier.sent if n[0] == "escalate" and "drift" in n[2]]) == 1
    after = run_leads(svc, 1, "LF")[0]
    assert svc.store.get(after).status is Status.awaiting_approval  # frozen: a person decides now


def test_a_stable_2_percent_failure_rate_never_freezes_over_50_sweeps(svc, sandbox):
    sandbox.configure(reject_rate=0.02, seed=9)
    start_at = svc.clock.current
    for hour in range(10):  # a baseline day before the sweeps begin
        svc.clock.current = start_at + timedelta(hours=hour)
        run_leads(svc, 12, f"SB{hour}")
    for n in range(50):
        svc.clock.current = start_at + timedelta(hours=10, minutes=30 * n)
        run_leads(svc, 20, f"SS{n}")
        assert sweep.run(svc, f"sweep-{n}")["drift"] == 0, f"false alarm at sweep {n}"
    assert autonomy.current(svc, fresh=True).frozenActions == []


def one_by_one(svc, n, prefix, gap=timedelta(minutes=2)):
    """n cases, each run to its end before the next, `gap` apart (the order drift reads them in)."""
    ids = []
    for i in range(n):
        svc.clock.current += gap
        ids += run_leads(svc, 1, f"{prefix}{i}")
    return ids


def quiet_day_then_3_failures_in_10(svc, sandbox):
    day = svc.clock.current
    sandbox.configure(reject_rate=0.0, seed=3)
    for hour in range(8):  # a small team's day: 6 cases an hour, none failing
        svc.clock.current = day - timedelta(hours=12) + timedelta(hours=hour)
        run_leads(svc, 6, f"QB{hour}")
    svc.clock.current = day
    assert sweep.run(svc, "quiet")["drift"] == 0
    sandbox.configure(reject_rate=1.0)
    failed = one_by_one(svc, 3, "QF")  # the worst order for the test: the failures first, then 7 that work
    sandbox.configure(reject_rate=0.0)
    ok = one_by_one(svc, 7, "QO")
    assert [svc.store.get(o).status for o in failed + ok] == [Status.failed] * 3 + [Status.verified] * 7
    svc.clock.current += timedelta(minutes=1)


def test_a_low_volume_action_failing_3_of_its_last_10_after_a_quiet_day_is_frozen_by_one_sweep(svc, sandbox):
    quiet_day_then_3_failures_in_10(svc, sandbox)
    assert sweep.run(svc, "s1")["drift"] == 1
    frozen = autonomy.current(svc, fresh=True)
    assert frozen.frozenActions == ["leads.reassign"] and frozen.changedBy == "drift-watch"
    assert "failure_rate 2.0% → 30.0% over its last 10 executions (baseline of 48;" in frozen.reason


def test_a_persons_unfreeze_is_not_undone_by_the_next_sweep_and_fresh_failures_freeze_again(svc, sandbox):
    quiet_day_then_3_failures_in_10(svc, sandbox)
    sweep.run(svc, "s1")
    svc.clock.current += timedelta(minutes=2)
    autonomy.change(svc, {"freezeActions": [], "reason": "checked the flow: a CRM outage, over now"}, ADMIN)
    for n in range(3):  # the same data, sweep after sweep
        svc.clock.current += timedelta(minutes=5)
        assert sweep.run(svc, f"after-{n}")["drift"] == 0
    assert autonomy.current(svc, fresh=True).frozenActions == []
    assert svc.store.get(run_leads(svc, 1, "QA")[0]).status is Status.verified  # acting alone again
    sandbox.configure(reject_rate=1.0)
    one_by_one(svc, 3, "QR")  # new evidence after the unfreeze counts
    sandbox.configure(reject_rate=0.0)
    one_by_one(svc, 5, "QS")
    assert sweep.run(svc, "again")["drift"] == 1
    assert autonomy.current(svc, fresh=True).frozenActions == ["leads.reassign"]


def test_lifting_a_global_freeze_lifts_drifts_freeze_and_the_old_evidence_stays_judged(svc, sandbox):
    quiet_day_then_3_failures_in_10(svc, sandbox)
    sweep.run(svc, "s1")
    autonomy.change(svc, {"freeze": True, "reason": "incident review"}, ADMIN)
    svc.clock.current += timedelta(minutes=5)
    sweep.run(svc, "s2")
    autonomy.change(svc, {"freeze": False, "reason": "all clear"}, ADMIN)  # lifts every freeze, drift's too
    svc.clock.current += timedelta(minutes=5)
    assert sweep.run(svc, "s3")["drift"] == 0
    after = autonomy.current(svc, fresh=True)
    assert after.frozen is False and after.frozenActions == []


def test_a_persons_freeze_and_unfreeze_between_drifts_read_and_its_freeze_both_stand(svc, sandbox):
    quiet_day_then_3_failures_in_10(svc, sandbox)
    autonomy.change(svc, {"freezeActions": ["leads.escalate"], "reason": "new flow"}, ADMIN)
    save, raced = svc.coordination.save_autonomy, []

    def racing(doc, etag):
        if doc["changedBy"] == "drift-watch" and not raced:  # drift read the record, a person changes it first
            raced.append(doc)
            autonomy.change(svc, {"freezeActions": ["ap.request-missing-fields"], "reason": "escalate is fine; "
                                  "AP is not"}, ADMIN)
        return save(doc, etag)

    svc.coordination.save_autonomy = racing
    assert sweep.run(svc, "s1")["drift"] == 1
    svc.coordination.save_autonomy = save
    assert raced and autonomy.current(svc, fresh=True).frozenActions == ["ap.request-missing-fields",
                                                                         "leads.reassign"]
    # The unfreeze that landed meanwhile is remembered as a lift: escalate's earlier executions no longer count.
    assert "leads.escalate" in svc.coordination.state("drift")["lifted"]
