"""Rate limits in the pipeline: over the limit, work waits for its slot (a scheduled message) and runs."""
from datetime import timedelta

from shared.domain.status import Status
from tests.factories import replace_action
from tests.http.test_pipeline import drive, start


def test_one_change_per_lead_per_day_makes_the_second_wait_a_day_then_run(svc, sandbox):
    replace_action(svc, "leads.reassign", rateLimit={"perEntityPerDay": 1, "entityField": "leadId"})
    began = svc.clock.current
    first = start(svc, caseKey="LD-A1", attributes={"leadId": "LD-77", "region": "EMEA"})
    second = start(svc, deviationPattern="lead-stale", caseKey="LD-A2", attributes={"leadId": "LD-77", "region": "EMEA"})
    drive(svc)
    assert {svc.store.get(o).status for o in (first, second)} <= {Status.verified, Status.compensated}
    waited = [o for o in (first, second) if any(a.event == "rate.limited" for a in svc.store.audit(o))]
    assert len(waited) == 1
    [x] = svc.store.executions(waited[0])
    assert x.attempts == 1 and x.updatedAt - began >= timedelta(days=1)  # one flow call, a day later
    assert sandbox.effects["leads.reassign"] == 2


def test_a_connector_limit_spreads_calls_so_no_minute_holds_more_than_the_limit(svc, sandbox):
    replace_action(svc, "leads.reassign", rateLimit={"perMinute": 2})
    ids = [start(svc, caseKey=f"LD-C{i}", attributes={"leadId": f"LD-C{i}", "region": "AMER"}) for i in range(5)]
    drive(svc)
    assert sandbox.effects["leads.reassign"] == 5
    calls = sorted(x.updatedAt for o in ids for x in svc.store.executions(o) if x.kind == "action")
    assert all(calls[i + 2] - calls[i] >= timedelta(minutes=1) for i in range(len(calls) - 2))
    assert sum(any(a.event == "rate.limited" for a in svc.store.audit(o)) for o in ids) >= 3
