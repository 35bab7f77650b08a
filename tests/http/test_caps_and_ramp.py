"""Blast-radius controls: a daily cap holds the next case back; a ramp widens only after successes."""
from datetime import timedelta

from shared.domain.status import Status
from shared.services import ramp, sweep
from tests.factories import replace_action
from tests.http.test_pipeline import drive, start


def leads(svc, prefix, n):
    return [start(svc, caseKey=f"{prefix}-{i}", attributes={"leadId": f"{prefix}-{i}", "region": "EMEA"})
            for i in range(n)]


def test_when_the_daily_cap_is_reached_the_next_case_does_not_execute_until_a_slot_frees(svc, sandbox):
    replace_action(svc, "leads.reassign", dailyCap=3)
    began = svc.clock.current
    ids = leads(svc, "CAP", 4)
    drive(svc)
    late = [o for o in ids if any(a.event == "rate.limited" for a in svc.store.audit(o))]
    assert len(late) == 1  # three ran today, the fourth waited
    [x] = svc.store.executions(late[0])
    assert x.updatedAt - began >= timedelta(days=1) and x.attempts == 1
    assert sandbox.effects["leads.reassign"] == 4


def test_a_ramp_widens_only_after_the_configured_verified_executions(svc, sandbox):
    action = replace_action(svc, "leads.reassign", ramp=[5, 100])
    svc.policy = svc.policy.model_copy(update={"rampPromoteAfter": 3})
    sweep.run(svc, "s0")  # the first stage starts counting
    sweep.run(svc, "s0b")
    assert ramp.share(svc, action) == 5  # no verified executions yet: no widening
    ids = leads(svc, "RMP", 60)
    drive(svc)
    expected = {ids[i] for i in range(60) if ramp.in_share(svc.policy.experimentSalt, "leads.reassign", f"RMP-{i}", 5)}
    alone = {o for o in ids if svc.store.get(o).status is Status.verified}
    asked = {o for o in ids if svc.store.get(o).status is Status.awaiting_approval}
    assert alone == expected and len(alone) >= 3 and len(asked) == 60 - len(alone)  # ~5% alone, rest asked
    sweep.run(svc, "s1")
    assert ramp.share(svc, action) == 100  # enough verified, no breach: widened
    more = leads(svc, "RMP2", 5)
    drive(svc)
    assert {svc.store.get(o).status for o in more} == {Status.verified}


def test_a_breach_restarts_the_count_so_the_ramp_does_not_widen(svc, sandbox):
    action = replace_action(svc, "leads.reassign", ramp=[100, 100])
    svc.policy = svc.policy.model_copy(update={"rampPromoteAfter": 2})
    sweep.run(svc, "s0")
    sandbox.configure(breach_actions={"leads.reassign"})
    leads(svc, "BR", 3)
    drive(svc)
    svc.clock.current += timedelta(minutes=5)
    sweep.run(svc, "s1")
    assert ramp.stage_of(svc, action)["stage"] == 0


def test_with_over_cap_person_the_next_case_goes_to_a_person_instead_of_queueing(svc, sandbox):
    replace_action(svc, "leads.reassign", dailyCap=3)
    svc.policy = svc.policy.model_copy(update={"overCap": "person"})
    leads(svc, "OC", 3)
    drive(svc)
    assert sandbox.effects["leads.reassign"] == 3
    [late] = leads(svc, "OC-late", 1)
    drive(svc)
    assert svc.store.get(late).status is Status.awaiting_approval
    assert "daily cap of 3 is reached" in svc.store.audit(late)[-1].reason
    assert sandbox.effects["leads.reassign"] == 3
