"""Blast-radius controls: a daily cap holds the next case back; a ramp widens only after successes, and only over
a measured effect that is neither harmful nor null."""
import random
from datetime import timedelta

import pytest

from shared.domain.outcomes import Outcome
from shared.domain.status import Status
from shared.services import autonomy, measure, policy_events, ramp, sweep
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


def learning(svc, **knobs):
    svc.policy = svc.policy.model_copy(update={"learning": svc.policy.learning.model_copy(update=knobs)})


def test_a_ramp_widens_only_after_the_configured_verified_executions(svc, sandbox):
    action = replace_action(svc, "leads.reassign", ramp=[5, 100])
    svc.policy = svc.policy.model_copy(update={"rampPromoteAfter": 3})
    learning(svc, rampNeedsMeasurement=False)  # no outcomes here: widening on executions alone
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
    learning(svc, rampNeedsMeasurement=False)
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


@pytest.mark.parametrize("effect,verdict,share", [(+3.0, "harmful", 50), (0.0, "null", 50), (-3.0, "helpful", 100)])
def test_a_ramp_widens_only_over_a_measured_effect_that_is_neither_harmful_nor_null(svc, sandbox, effect, verdict,
                                                                                    share):
    """Cycle time ~ N(9, 1) days, `effect` days more on every case drawn into treatment, 30% held out."""
    action = replace_action(svc, "leads.reassign", ramp=[50, 100], holdoutPercent=30)
    svc.policy = svc.policy.model_copy(update={"rampPromoteAfter": 3})
    learning(svc, nullAfterCases=30)
    sweep.run(svc, "s0")
    ids = leads(svc, "MR", 150)
    drive(svc, limit=2000)
    assert sum(svc.store.get(o).status is Status.verified for o in ids) >= 3  # enough to widen on executions
    rng, after = random.Random(21), svc.clock.current + timedelta(days=2)
    observed = [Outcome(f"mr-{i}", "lead-management", f"MR-{i}", "cycle_time_days",
                        rng.gauss(9.0, 1.0) + (effect if svc.store.get(o).cohort == "treated" else 0.0), after)
                for i, o in enumerate(ids)]
    measure.record_outcomes(svc, observed, "outcomes")
    svc.clock.current = after
    sweep.run(svc, "s1")
    [judged] = [v for v in sweep_verdicts(svc) if v["actionId"] == "leads.reassign"]
    assert judged["verdict"] == verdict, judged["why"]
    assert ramp.share(svc, action) == share
    assert ("leads.reassign" in autonomy.current(svc, fresh=True).frozenActions) is (verdict == "harmful")
    svc.clock.current += timedelta(minutes=5)
    sweep.run(svc, "s2")  # a held ramp is audited once per stage, not every sweep
    [event] = [e for e in policy_events.recent(svc) if e["kind"] == "ramp" and e["actionId"] == "leads.reassign"]
    assert event["share"] == share and event["verified"] >= 3 and judged["why"].split(":")[0] in event["evidence"]
    assert event["by"] == ("sweep" if verdict == "helpful" else "learning")
    assert ("widened 50% → 100%" if verdict == "helpful" else "held at 50%") in event["reason"]


def test_a_ramp_widened_on_executions_alone_says_so_in_its_policy_event(svc, sandbox):
    action = replace_action(svc, "leads.reassign", ramp=[5, 100])
    svc.policy = svc.policy.model_copy(update={"rampPromoteAfter": 1})
    learning(svc, rampNeedsMeasurement=False)
    sweep.run(svc, "s0")
    leads(svc, "EV", 40)
    drive(svc)
    sweep.run(svc, "s1")
    assert ramp.share(svc, action) == 100
    [event] = [e for e in policy_events.recent(svc) if e["kind"] == "ramp"]
    assert event["evidence"] == "no measured effect on cycle_time_days yet" and event["share"] == 100


def sweep_verdicts(svc):
    from shared.services.learning import stored

    return stored(svc)["verdicts"]
