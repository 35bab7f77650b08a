"""Escalations a person can answer (retry, undo, accept, hand over, close), and cases that end."""
import json
from datetime import timedelta

import pytest

from shared.domain.approvals import ESCALATE, Choice
from shared.domain.cards import md
from shared.domain.errors import Conflict, Forbidden, InvalidInput
from shared.domain.identity import Principal
from shared.domain.status import Status
from shared.services import approvals, notices, pipeline, sweep
from shared.services.lifecycle import audit
from tests.http.test_approvals import PRICE, awaiting
from tests.http.test_pipeline import drive, start
from tests.unit.test_cards import events

OWNER = Principal("olga-oid", "olga@contoso.com", frozenset({"Backlog.Owner"}), "easy-auth")
FAILED = {"status": 200, "body": {"status": "failed", "message": "the CRM refused the change",
                                  "evidence": {"recordIds": [], "before": {}, "after": {}}}}


def escalations(svc, oid):
    return [d for k, o, _, d in svc.notifier.sent if o == oid and d.get("approvalId", "").split("-")[1:2]
            and d["approvalId"].split("-")[1].startswith("x")]


def shown(card):
    """Every text a person reads on the card, one line each."""
    lines = []
    for block in card["body"]:
        lines.append(block.get("text", ""))
        lines += [f"{f['title']}: {f['value']}" for f in block.get("facts", ())]
    return "\n".join(lines)


def answer(svc, notice, decision, who=OWNER, **choice):
    return approvals.decide(svc, notice["approvalId"], notice["token"], decision, who, None, None, "cid",
                            choice=Choice(**choice))


def failed_case(svc, sandbox, case="LD-F1"):
    sandbox.script("leads.reassign", [FAILED])
    oid = start(svc, caseKey=case, attributes={"leadId": case, "region": "AMER"})
    drive(svc)
    assert svc.store.get(oid).status is Status.failed
    [notice] = escalations(svc, oid)
    return oid, notice


def verified_case(svc, case="LD-V1"):
    """A verified case with an escalation on it (as a recurrence would bring one)."""
    oid = start(svc, caseKey=case, attributes={"leadId": case, "region": "AMER"})
    drive(svc)
    opp = svc.store.get(oid)
    assert opp.status is Status.verified
    note, asked = notices.answerable(svc, "review", opp, f"{case}: came back", {}, svc.store.executions(oid), "cid")
    svc.store.commit(opp, (), [audit(svc, opp, "test", "recurrence.escalated", "back", "cid")], [asked])
    return oid, note.details


def test_a_failed_flow_escalation_offers_retry_first_and_its_record_is_committed_with_the_failure(svc, sandbox):
    oid, notice = failed_case(svc, sandbox)
    [record] = [a for a in svc.store.approvals(oid) if a.kind == ESCALATE]
    assert record.id == notice["approvalId"] and record.requiredRole == svc.policy.reviewRole
    assert record.context["options"] == ["retry", "accept", "handover", "close"]
    assert record.context["recommended"] == "retry" and "own idempotency key" in record.context["why"]
    assert notice["plan"]["actionId"] == "leads.reassign"


def test_the_escalation_card_shows_the_plan_masked_parameters_and_the_recommended_step(svc, sandbox):
    _, notice = failed_case(svc, sandbox, "LD-F2")
    submit, links = notice["cards"]["submit"], notice["cards"]["links"]
    text = shown(submit)
    assert f"Plan: {md('leads.reassign')} v1" in text and md("LD-F2") in text and "Recommended: Retry" in text
    assert "the CRM refused the change" in text and "Risk tier" in text
    assert [a["data"]["decision"] for a in submit["actions"]] == ["retry", "accept", "handover", "close"]
    assert {i["id"] for i in submit["body"] if i["type"].startswith("Input.")} == {"owner", "reason", "helpful"}
    assert [a["title"] for a in links["actions"]] == ["Retry", "Accept as is", "Hand over", "Close"]
    assert all(f"/approvals/{notice['approvalId']}/confirm?decision=" in a["url"] for a in links["actions"])
    [row] = [b for b in links["body"] if b["type"] == "ActionSet"]
    assert [a["title"] for a in row["actions"]] == ["Open", "Helpful", "Not helpful"]
    for card in (submit, links):
        assert events(card) == [] and len(str(card).encode()) < 28 * 1024


def test_parameters_named_as_pii_are_masked_on_the_escalation_card(svc, sandbox):
    oid, _ = failed_case(svc, sandbox, "LD-F3")
    opp = svc.store.get(oid)
    svc.catalog.pii_fields = frozenset({*svc.catalog.pii_fields, "leadId"})
    note, _ = notices.answerable(svc, "escalate", opp, "again", {}, svc.store.executions(oid), "cid")
    masked = note.details["plan"]["parameters"]["leadId"]
    assert masked != "LD-F3" and f"leadId: {md(masked)}" in shown(note.details["cards"]["submit"])
    assert f"leadId: {md('LD-F3')}" not in shown(note.details["cards"]["links"])


def test_retry_runs_the_flow_once_more_under_a_new_key_and_a_second_answer_is_a_conflict(svc, sandbox):
    oid, notice = failed_case(svc, sandbox, "LD-F4")
    before = sandbox.effects.get("leads.reassign", 0)
    assert answer(svc, notice, "retry").decision == "retried"
    drive(svc, deliveries=2)
    opp = svc.store.get(oid)
    assert opp.status is Status.verified and opp.plan["attempt"] == 1 and opp.plan["retriedBy"] == "olga-oid"
    assert sandbox.effects["leads.reassign"] == before + 1
    keys = {x.idempotencyKey for x in svc.store.executions(oid) if x.kind == "action"}
    assert len(keys) == 2
    with pytest.raises(Conflict):
        answer(svc, notice, "retry")
    assert any(a.event == "executing" and "retry requested by olga-oid" in a.reason for a in svc.store.audit(oid))


def test_undo_of_a_verified_case_runs_its_compensation_once(svc, sandbox):
    oid, notice = verified_case(svc)
    assert "undo" in notice["options"]
    assert answer(svc, notice, "undo").decision == "undo requested"
    drive(svc, deliveries=2)
    assert svc.store.get(oid).status is Status.compensated
    assert sandbox.effects["leads.restore-owner"] == 1
    [comp] = [x for x in svc.store.executions(oid) if x.kind == "compensation"]
    assert comp.planner["requestedBy"] == "olga-oid"
    with pytest.raises(Conflict):
        answer(svc, notice, "undo")


def test_accept_and_close_move_a_case_to_closed_with_the_persons_reason(svc, sandbox):
    oid, notice = failed_case(svc, sandbox, "LD-F5")
    assert answer(svc, notice, "accept", reason="fixed by hand").decision == "accepted"
    opp = svc.store.get(oid)
    said = opp.history[-1]["reason"]  # the name is an e-mail address here: history keeps it scrubbed
    assert opp.status is Status.closed and said.startswith("accepted as is by ") and said.endswith(": fixed by hand")
    assert opp.history[-1]["actor"] == "olga-oid"
    oid, notice = failed_case(svc, sandbox, "LD-F6")
    with pytest.raises(InvalidInput) as refused:
        answer(svc, notice, "close")
    assert [e.pointer for e in refused.value.errors] == ["/reason"]
    assert answer(svc, notice, "close", reason="call ana@contoso.com").decision == "closed"
    opp = svc.store.get(oid)
    assert opp.status is Status.closed and "ana@contoso.com" not in opp.history[-1]["reason"]


def test_handover_needs_an_owner_sets_it_and_leaves_the_status(svc, sandbox):
    oid, notice = failed_case(svc, sandbox, "LD-F7")
    with pytest.raises(InvalidInput) as refused:
        answer(svc, notice, "handover")
    assert [e.pointer for e in refused.value.errors] == ["/owner"]
    assert answer(svc, notice, "handover", owner="bob@contoso.com").decision == "handed over"
    opp = svc.store.get(oid)
    assert opp.owner == "bob@contoso.com" and opp.status is Status.failed
    assert any(a.event == "handed.over" and a.actor == "olga-oid" for a in svc.store.audit(oid))


def test_an_answer_that_no_longer_fits_the_case_is_a_conflict(svc, sandbox):
    oid, notice = failed_case(svc, sandbox, "LD-F8")
    opp = svc.store.get(oid)
    svc.store.commit(opp.transition(Status.closed, "test", "closed elsewhere", svc.clock.now()))
    with pytest.raises(Conflict):
        answer(svc, notice, "retry")


def test_the_sweep_closes_verified_cases_after_the_observation_window_and_not_before(svc, sandbox):
    oid = start(svc, caseKey="LD-S1", attributes={"leadId": "LD-S1", "region": "AMER"})
    drive(svc)
    assert svc.store.get(oid).status is Status.verified
    svc.clock.current += timedelta(days=svc.policy.observationDays) - timedelta(minutes=1)
    assert sweep.run(svc, "s1")["closed"] == 0 and svc.store.get(oid).status is Status.verified
    svc.clock.current += timedelta(minutes=2)
    assert sweep.run(svc, "s2")["closed"] == 1
    opp = svc.store.get(oid)
    assert opp.status is Status.closed and opp.plan["closedFrom"] == "verified"
    assert opp.history[-1]["actor"] == "sweep" and "observation window of 14 days passed" in opp.history[-1]["reason"]
    assert sweep.run(svc, "s3")["closed"] == 0  # idempotent


def test_an_unanswered_request_escalation_can_be_answered(svc, sandbox):
    oid, request = awaiting(svc, caseKey="INV-U1", attributes={**PRICE["attributes"], "invoiceId": "INV-U1"})
    svc.clock.current += timedelta(hours=svc.policy.approvalSlaHours, minutes=1)
    assert sweep.run(svc, "s1")["escalated"] == 1
    [notice] = escalations(svc, oid)
    assert notice["request"] == request["approvalId"] and notice["options"] == ["handover", "close"]
    assert notice["recommended"] == "handover"
    answer(svc, notice, "close", reason="not worth it")
    assert svc.store.get(oid).status is Status.dismissed


def test_a_closed_verified_case_still_counts_for_recurrence_and_impact():
    from datetime import UTC, datetime

    from shared.domain import impact
    from shared.domain.impact import Assignment

    at = datetime(2026, 1, 1, tzinfo=UTC)
    closed = Assignment("a", "p", "c", "treated", "x", 1, at, "closed", ("x", 1), 0, 1, "verified")
    compensated = Assignment("a", "p", "d", "treated", "x", 1, at, "closed", ("x", 1), 0, 0, "compensated")
    [row] = impact.recurrence([closed, compensated])
    assert row["verified"] == 1 and row["recurred"] == 1


def test_a_deviation_back_on_a_case_closed_after_verification_is_a_recurrence_with_an_answerable_card():
    from tests.factories import memory_services
    from tests.unit.test_recurrence import ACTED, _acted, _again

    svc = memory_services()
    oid = _acted(svc, "INV-C1")
    svc.clock.current += timedelta(days=svc.policy.observationDays, hours=1)
    assert sweep.run(svc, "s1")["closed"] == 1 and svc.store.get(oid).status is Status.closed
    _, entry = _again(svc, "INV-C1", ACTED + timedelta(days=3))
    assert entry["outcome"] == "recurrence"
    [(_, _, _, details)] = [n for n in svc.notifier.sent if n[1] == oid]
    assert details["options"] == ["handover"]  # a closed case moves no more: someone must own the cause
    assert [a.kind for a in svc.store.approvals(oid)] == [ESCALATE]


def test_a_case_closed_after_a_failed_flow_or_a_rejection_does_not_count_as_acted_on():
    from datetime import UTC, datetime

    from shared.domain.impact import Assignment

    at = datetime(2026, 1, 1, tzinfo=UTC)

    def ended(closed_from):
        return Assignment("a", "p", "c", "treated", "x", 1, at, "closed", None, 0, 0, closed_from)

    assert ended("verified").acted and ended("compensated").acted
    assert not ended("failed").acted and not ended("rejected").acted and not ended(None).acted


def test_an_escalation_nobody_answers_is_not_escalated_again(svc, sandbox):
    from shared.services import backlog

    oid, notice = failed_case(svc, sandbox, case="LD-F9")
    backlog.patch(svc, oid, {"notes": "looking into it"}, OWNER, "cid")  # the case moves on; its escalation waits
    svc.clock.current += timedelta(hours=svc.policy.approvalSlaHours * 3, minutes=1)
    assert sweep.run(svc, "s1")["escalated"] == 0
    assert sweep.run(svc, "s2")["escalated"] == 0
    assert [n["approvalId"] for n in escalations(svc, oid)] == [notice["approvalId"]]


def test_an_undo_whose_nudge_was_lost_is_sent_again_by_the_sweep_and_the_case_is_not_closed_under_it(svc, sandbox):
    from shared.services.closing import close_observed

    oid, notice = verified_case(svc, "LD-U1")
    answer(svc, notice, "undo")
    svc.bus.messages.clear()  # the verify nudge of the request is lost
    svc.clock.current += timedelta(days=svc.policy.observationDays, hours=1)
    assert close_observed(svc, "c") == 0 and svc.store.get(oid).status is Status.verified
    done = sweep.run(svc, "s1")
    assert done["resent"] == 1 and done["closed"] == 0
    drive(svc)
    assert svc.store.get(oid).status is Status.compensated and sandbox.effects["leads.restore-owner"] == 1
    assert sweep.run(svc, "s2")["resent"] == 0


def test_while_an_undo_runs_no_card_undoes_accepts_or_closes_the_case_and_the_undo_runs_once(svc, sandbox):
    from dataclasses import replace

    from shared.domain import escalation as rules

    oid, first = verified_case(svc, "LD-U2")
    opp = svc.store.get(oid)
    svc.store.commit(replace(opp, revision=opp.revision + 1))  # a second escalation on the case, as a recurrence
    opp = svc.store.get(oid)
    note, asked = notices.answerable(svc, "review", opp, "again", {}, svc.store.executions(oid), "cid")
    svc.store.commit(opp, (), [audit(svc, opp, "test", "recurrence.escalated", "back", "cid")], [asked])
    second = note.details
    sandbox.script("leads.restore-owner", [202])  # the undo's flow accepts and is polled later
    answer(svc, first, "undo")
    m = svc.bus.messages.pop(0)
    pipeline.handle(svc, m.body["type"], json.dumps(m.body).encode(), 1)
    opp = svc.store.get(oid)
    assert rules.options(opp, svc.store.executions(oid), svc.catalog) == ["handover"]
    for decision in ("undo", "accept", "close"):
        with pytest.raises(Conflict) as refused:
            answer(svc, second, decision, reason="x")
        assert "undo olga-oid asked for is running" in str(refused.value)
    drive(svc)
    comps = [x for x in svc.store.executions(oid) if x.kind == "compensation"]
    assert svc.store.get(oid).status is Status.compensated and len(comps) == 1
    assert sum(1 for r in sandbox.requests if r[0] == "leads.restore-owner") == 2  # the call and its poll: one key


def test_a_persons_undo_is_keyed_by_what_it_undoes_never_by_when_it_was_asked(svc, sandbox):
    from shared.services.watchdog import compensation_of

    oid, _ = verified_case(svc, "LD-U3")
    [x] = [e for e in svc.store.executions(oid) if e.kind == "action"]
    undo = svc.catalog.actions["leads.restore-owner"]
    early = compensation_of(undo, x, asked={"by": "a", "at": "2026-01-01T00:00:00+00:00"})
    later = compensation_of(undo, x, asked={"by": "b", "at": "2026-02-01T00:00:00+00:00"})
    assert early.id == later.id != compensation_of(undo, x).id  # not the breach compensation's key either


def test_retry_is_refused_and_not_offered_while_autonomy_is_off_for_the_action(svc, sandbox):
    from shared.domain import escalation as rules
    from shared.services import autonomy

    oid, notice = failed_case(svc, sandbox, "LD-R1")
    before = sandbox.effects.get("leads.reassign", 0)
    autonomy.change(svc, {"actions": {"leads.reassign": "off"}, "reason": "incident"}, None, actor="test")
    with pytest.raises(Conflict) as refused:
        answer(svc, notice, "retry")
    assert "autonomy is off for leads.reassign" in str(refused.value)
    drive(svc)
    opp = svc.store.get(oid)
    assert opp.status is Status.failed and sandbox.effects.get("leads.reassign", 0) == before
    assert "retry" not in rules.options(opp, svc.store.executions(oid), svc.catalog, "off")
    assert answer(svc, notice, "accept").decision == "accepted"  # the card's other answers still fit


def test_retrying_an_action_an_approver_allowed_needs_the_approvers_role_and_is_their_approval(svc, sandbox):
    from tests.http.test_approvals import decide

    oid, request = awaiting(svc, caseKey="INV-R2", attributes={**PRICE["attributes"], "invoiceId": "INV-R2"})
    sandbox.script("ap.post-gl-adjustment", [FAILED])
    decide(svc, request)
    drive(svc)
    [notice] = escalations(svc, oid)
    assert "retry" in notice["options"]
    with pytest.raises(Forbidden) as refused:
        answer(svc, notice, "retry")  # a backlog owner, not an AP approver
    assert "AP.Approver" in str(refused.value) and svc.store.get(oid).status is Status.failed
    both = Principal("ana-oid", "ana@contoso.com", frozenset({"Backlog.Owner", "AP.Approver"}), "easy-auth")
    assert answer(svc, notice, "retry", who=both).decision == "retried"
    drive(svc)
    opp = svc.store.get(oid)
    assert opp.status is Status.verified and opp.plan["retryApprovedBy"] == "ana-oid"
    assert any("approved by ana-oid (medium risk)" in a.reason for a in svc.store.audit(oid))


def test_a_handover_opens_a_fresh_escalation_the_new_owner_can_answer(svc, sandbox):
    oid, notice = failed_case(svc, sandbox, "LD-H9")
    answer(svc, notice, "handover", owner="bob")
    [pending] = [a for a in svc.store.pending_approvals() if a.opportunityId == oid]
    assert pending.kind == ESCALATE and pending.context["options"] == notice["options"]
    assert pending.context["handedOver"] == notice["approvalId"]
    [_, fresh] = escalations(svc, oid)
    assert fresh["approvalId"] == pending.id and fresh["handedTo"] == "bob"
    [subject] = [s for _, o, s, d in svc.notifier.sent if d.get("approvalId") == pending.id]
    assert subject.startswith("LD-H9: handed to bob by ")
    assert answer(svc, fresh, "close", reason="done by hand").decision == "closed"
    assert svc.store.get(oid).status is Status.closed


def test_a_card_made_while_autonomy_is_off_for_the_action_offers_no_retry(svc, sandbox):
    from shared.services import autonomy

    oid, notice = failed_case(svc, sandbox, "LD-R9")
    assert "retry" in notice["options"]
    autonomy.change(svc, {"actions": {"leads.reassign": "off"}, "reason": "incident"}, None, actor="test")
    answer(svc, notice, "handover", owner="olga@contoso.com")  # the hand-over's fresh card is made now
    fresh = escalations(svc, oid)[-1]
    assert fresh["approvalId"] != notice["approvalId"] and "retry" not in fresh["options"]
