"""Fault injection in the sandbox: a failure rate jumping from 2% to 30% freezes the action in one sweep."""
from datetime import timedelta

from shared.domain.status import Status
from shared.services import autonomy, sweep
from tests.http.test_pipeline import drive, start


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
