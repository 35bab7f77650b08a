"""A review is a decision: a reviewer runs a candidate (through the planner's checks), supplies data, hands over or
dismisses; every refusal names its field and changes nothing."""
import json

import pytest

from shared.domain.errors import Conflict, Forbidden, InvalidInput
from shared.domain.status import Status
from shared.services import approvals
from shared.services.ingest import ingest
from tests.factories import finding, memory_services, person, replace_action, validated
from tests.factories import run_stages as _run

OWNER = person("rita@contoso.com", "Backlog.Owner")
OWNER_APPROVER = person("olga@contoso.com", "Backlog.Owner", "AP.Approver")


def review_case(svc, gl="ABC", amount=120.0):
    """A price variance whose GL account breaks the contract: the planner hands it to a reviewer."""
    f = finding(deviationPattern="price-variance",
                attributes={"invoiceId": "INV-R1", "vendorId": "V-1", "amount": amount, "glAccount": gl})
    [r] = ingest(svc, validated(f), "cid").results
    _run(svc, "triage", "plan")
    oid = r.opportunity.id
    assert svc.store.get(oid).status is Status.needs_review
    [(_, _, _, notice)] = [n for n in svc.notifier.sent if n[1] == oid and n[0] == "review"]
    return oid, notice


def test_the_planner_opens_a_review_record_with_the_candidates_prefilled_and_sends_its_card():
    svc = memory_services()
    _, notice = review_case(svc)
    record = svc.store.approval(notice["approvalId"])
    assert record.kind == "review" and record.requiredRole == "Backlog.Owner" and record.decision is None
    [c] = record.context["candidates"]
    assert c["id"] == "ap.post-gl-adjustment" and c["parameters"]["glAccount"] == "ABC"
    assert record.context["problems"][0]["pointer"].startswith("/parameters")
    assert set(notice["links"]) >= {"run", "provide", "handover", "dismiss", "helpful:yes"}
    assert notice["cards"]["submit"]["actions"][0]["data"] == {"approvalId": record.id, "decision": "run"}


def test_reviewer_who_holds_the_approval_role_runs_an_edited_plan_at_once():
    svc = memory_services()
    oid, notice = review_case(svc)
    decided = approvals.decide(svc, notice["approvalId"], notice["token"], "run", OWNER_APPROVER, None, None, "c2",
                               choice=_choice("ap.post-gl-adjustment", glAccount="6100"))
    opp = svc.store.get(oid)
    assert decided.decision == "run" and opp.status is Status.approved
    assert opp.plan["parameters"]["glAccount"] == "6100" and opp.plan["method"] == "person"
    assert opp.plan["decidedBy"] == "olga@contoso.com" and opp.plan["confidence"] == 1.0
    entry = svc.store.audit(oid)[-1]
    assert entry.actor == "olga@contoso.com" and entry.inputs["edited"] == ["glAccount"]
    assert [m.body["type"] for m in svc.bus.messages] == ["execute"]


def test_reviewer_without_the_role_sends_a_second_card_to_the_approver():
    svc = memory_services()
    oid, notice = review_case(svc)
    approvals.decide(svc, notice["approvalId"], notice["token"], "run", OWNER, None, None, "c2",
                     choice=_choice("ap.post-gl-adjustment", glAccount="6100"))
    assert svc.store.get(oid).status is Status.awaiting_approval
    [(_, _, _, ask)] = [n for n in svc.notifier.sent if n[0] == "approve"]
    record = svc.store.approval(ask["approvalId"])
    assert record.requiredRole == "AP.Approver" and record.context == {"approvers": 1, "stage": 1}
    assert svc.bus.messages == []


@pytest.mark.parametrize("parameters, pointer", [({"glAccount": "61"}, "/parameters/glAccount"),
                                                 ({"nope": "1"}, "/parameters/nope")])
def test_a_bad_or_unknown_parameter_is_named_and_nothing_changes(parameters, pointer):
    svc = memory_services()
    oid, notice = review_case(svc)
    before = svc.store.get(oid)
    with pytest.raises(InvalidInput) as err:
        approvals.decide(svc, notice["approvalId"], notice["token"], "run", OWNER_APPROVER, None, None, "c2",
                         choice=_choice("ap.post-gl-adjustment", **parameters))
    assert [e.pointer for e in err.value.errors] == [pointer]
    assert svc.store.get(oid).revision == before.revision and svc.store.approval(notice["approvalId"]).decision is None


def test_an_action_that_is_not_a_candidate_is_refused_by_name():
    svc = memory_services()
    _, notice = review_case(svc)
    with pytest.raises(InvalidInput) as err:
        approvals.decide(svc, notice["approvalId"], notice["token"], "run", OWNER_APPROVER, None, None, "c2",
                         choice=_choice("leads.reassign"))
    assert [e.pointer for e in err.value.errors] == ["/actionId"]


def test_autonomy_off_refuses_a_reviewers_run_and_nothing_runs():
    svc = memory_services()
    oid, notice = review_case(svc)
    svc.coordination.save_autonomy({"mode": "off", "reason": "test"}, None)
    from shared.services import autonomy
    autonomy.current(svc, fresh=True)
    with pytest.raises(Conflict, match="autonomy is off"):
        approvals.decide(svc, notice["approvalId"], notice["token"], "run", OWNER_APPROVER, None, None, "c2",
                         choice=_choice("ap.post-gl-adjustment", glAccount="6100"))
    assert svc.store.get(oid).status is Status.needs_review and svc.bus.messages == []


def test_amounts_above_the_second_threshold_need_a_second_approver_after_the_reviewer():
    svc = memory_services()
    replace_action(svc, "ap.post-gl-adjustment",
                   approvalThresholds=[{"field": "amount", "approvalAbove": 100, "secondApproverAbove": 500}])
    oid, notice = review_case(svc, amount=800.0)
    approvals.decide(svc, notice["approvalId"], notice["token"], "run", OWNER_APPROVER, None, None, "c2",
                     choice=_choice("ap.post-gl-adjustment", glAccount="6100"))
    assert svc.store.get(oid).status is Status.awaiting_approval
    [ask] = [n[3] for n in svc.notifier.sent if n[0] == "approve"]
    assert svc.store.approval(ask["approvalId"]).context == {"approvers": 2, "stage": 2,
                                                             "approvedBy": ["olga@contoso.com"],
                                                             "approverNames": ["olga@contoso.com"]}
    with pytest.raises(Forbidden):  # the reviewer approved as she chose: she cannot be the second person
        approvals.decide(svc, ask["approvalId"], ask["token"], "approve", OWNER_APPROVER, None, None, "c3")
    approvals.decide(svc, ask["approvalId"], ask["token"], "approve", person("ana@contoso.com", "AP.Approver"),
                     None, None, "c3")
    assert svc.store.get(oid).status is Status.approved


def test_dismiss_needs_a_reason_and_keeps_it_scrubbed():
    svc = memory_services()
    oid, notice = review_case(svc)
    with pytest.raises(InvalidInput) as err:
        approvals.decide(svc, notice["approvalId"], notice["token"], "dismiss", OWNER, None, None, "c2",
                         choice=_choice(None))
    assert [e.pointer for e in err.value.errors] == ["/reason"]
    decided = approvals.decide(svc, notice["approvalId"], notice["token"], "dismiss", OWNER, None, None, "c2",
                               choice=_choice(None, reason="duplicate; ask ana@contoso.com"))
    opp = svc.store.get(oid)
    assert decided.decision == "dismissed" and opp.status is Status.dismissed
    assert "ana@contoso.com" not in opp.history[-1]["reason"]


def test_handover_needs_an_owner_and_opens_a_fresh_review_for_the_new_owner_in_the_same_commit():
    svc = memory_services()
    oid, notice = review_case(svc)
    with pytest.raises(InvalidInput) as err:
        approvals.decide(svc, notice["approvalId"], notice["token"], "handover", OWNER, None, None, "c2",
                         choice=_choice(None))
    assert [e.pointer for e in err.value.errors] == ["/owner"]
    decided = approvals.decide(svc, notice["approvalId"], notice["token"], "handover", OWNER, None, None, "c2",
                               choice=_choice(None, owner="bob@contoso.com"))
    opp = svc.store.get(oid)
    assert decided.decision == "handed over" and opp.owner == "bob@contoso.com"
    assert opp.status is Status.needs_review
    [fresh] = [a for a in svc.store.pending_approvals() if a.opportunityId == oid]
    assert fresh.kind == "review" and fresh.id != notice["approvalId"] and f"-r{opp.revision}-" in fresh.id
    assert [c["id"] for c in fresh.context["candidates"]] == ["ap.post-gl-adjustment"]
    assert fresh.context["handedOver"] == {"to": "bob@contoso.com", "by": "rita@contoso.com"}
    assert svc.store.audit(oid)[-1].outputs["approvalId"] == fresh.id  # recorded with the owner change
    [(kind, _, subject, card)] = [n for n in svc.notifier.sent if n[3].get("approvalId") == fresh.id]
    assert kind == "review" and subject.endswith("handed to bob@contoso.com by rita@contoso.com")
    assert "Handed to" in json.dumps(card["cards"]["submit"])
    approvals.decide(svc, card["approvalId"], card["token"], "dismiss", person("bob@contoso.com", "Backlog.Owner"),
                     None, None, "c3", choice=_choice(None, reason="not ours"))
    assert svc.store.get(oid).status is Status.dismissed


def test_a_reviewer_cannot_point_the_action_at_another_record():
    svc = memory_services()
    oid, notice = review_case(svc)
    with pytest.raises(InvalidInput) as err:
        approvals.decide(svc, notice["approvalId"], notice["token"], "run", OWNER_APPROVER, None, None, "c2",
                         choice=_choice("ap.post-gl-adjustment", glAccount="6100", invoiceId="INV-OTHER"))
    assert [(e.pointer, e.detail) for e in err.value.errors] == [
        ("/parameters/invoiceId", "identifies the record; it cannot be changed on review")]
    assert svc.store.get(oid).status is Status.needs_review and svc.bus.messages == []
    card = notice["cards"]["submit"]
    assert "parameters.ap.post-gl-adjustment.invoiceId" not in json.dumps(card)  # shown as a fact, not an input
    assert {"title": "invoiceId", "value": "INV-R1"} in [f for b in card["body"] if b["type"] == "FactSet"
                                                         for f in b["facts"]]


def _second_candidate(svc):
    """ap.hold-invoice: another candidate for price variances, with a contract of its own."""
    from shared.domain.catalog import Action, Catalog
    d = svc.catalog.actions["ap.post-gl-adjustment"].model_dump(mode="json")
    d.update(id="ap.hold-invoice", compensation=None, approvalThresholds=[], parameterMap={"holdReason": "vendorId"},
             dataContract={"type": "object", "additionalProperties": False, "required": ["invoiceId", "holdUntil"],
                           "properties": {"invoiceId": {"type": "string"}, "holdReason": {"type": "string"},
                                          "holdUntil": {"type": "string"}}})
    svc.catalog = Catalog([*svc.catalog.versions.values(), Action.model_validate(d)], svc.catalog.environment)


def _card_inputs(card):
    return {b["id"][len("parameters."):]: b.get("value", "") for b in card["body"]
            if b["type"] == "Input.Text" and b["id"].startswith("parameters.")}


def test_run_from_a_card_with_two_candidates_takes_the_chosen_ones_fields():
    svc = memory_services()
    _second_candidate(svc)
    oid, notice = review_case(svc)
    sent = _card_inputs(notice["cards"]["submit"])
    assert "ap.hold-invoice.holdReason" in sent and "ap.post-gl-adjustment.glAccount" in sent
    sent["ap.post-gl-adjustment.glAccount"] = "6100"
    approvals.decide(svc, notice["approvalId"], notice["token"], "run", OWNER_APPROVER, None, None, "c2",
                     choice=_choice("ap.post-gl-adjustment", **sent))
    opp = svc.store.get(oid)
    assert opp.status is Status.approved and opp.plan["parameters"]["glAccount"] == "6100"
    assert "holdReason" not in opp.plan["parameters"]


def test_a_changed_field_the_chosen_action_does_not_have_is_refused_by_name():
    svc = memory_services()
    _second_candidate(svc)
    oid, notice = review_case(svc)
    with pytest.raises(InvalidInput) as err:  # plain names, as a JSON client sends them
        approvals.decide(svc, notice["approvalId"], notice["token"], "run", OWNER_APPROVER, None, None, "c2",
                         choice=_choice("ap.post-gl-adjustment", glAccount="6100", holdReason="V-1",
                                        holdUntil="2027-01-01"))
    assert [e.pointer for e in err.value.errors] == ["/parameters/holdUntil"]
    approvals.decide(svc, notice["approvalId"], notice["token"], "run", OWNER_APPROVER, None, None, "c2",
                     choice=_choice("ap.post-gl-adjustment", glAccount="6100", holdReason="V-1"))
    assert svc.store.get(oid).status is Status.approved


def test_provided_form_text_is_stored_as_the_contracts_type_and_the_case_plans_again():
    svc = memory_services()
    oid, notice = review_case(svc)
    with pytest.raises(InvalidInput) as err:
        approvals.decide(svc, notice["approvalId"], notice["token"], "provide", OWNER,
                         {"glAccount": "6100", "amount": "lots"}, None, "c2")
    assert [e.pointer for e in err.value.errors] == ["/data/amount"]
    svc.bus.messages.clear()
    approvals.decide(svc, notice["approvalId"], notice["token"], "provide", OWNER,
                     {"glAccount": "6100", "amount": "300"}, None, "c2")
    assert svc.store.get(oid).attributes["amount"] == 300
    _run(svc, "triage", "plan")
    assert svc.store.get(oid).status is Status.awaiting_approval  # a valid plan now: asks its approver


def test_provide_takes_only_candidate_contract_fields_and_sends_the_case_back_to_triage():
    svc = memory_services()
    oid, notice = review_case(svc)
    with pytest.raises(InvalidInput) as err:
        approvals.decide(svc, notice["approvalId"], notice["token"], "provide", OWNER, {"salary": 1}, None, "c2")
    assert [e.pointer for e in err.value.errors] == ["/data/salary"]
    approvals.decide(svc, notice["approvalId"], notice["token"], "provide", OWNER, {"glAccount": "6100"}, None, "c2")
    opp = svc.store.get(oid)
    assert opp.status is Status.new and opp.attributes["glAccount"] == "6100"
    assert [m.body["type"] for m in svc.bus.messages] == ["triage"]


def _choice(action_id, owner=None, reason=None, **parameters):
    from shared.domain.approvals import Choice
    return Choice(action_id, parameters or None, owner, reason)


def test_without_a_signing_key_in_production_the_case_still_waits_for_review_with_the_escalation_note():
    svc = memory_services(CLOSEDLOOP_ENV="dev")
    assert svc.settings.approvals_off
    f = finding(deviationPattern="price-variance",
                attributes={"invoiceId": "INV-R9", "vendorId": "V-1", "amount": 120.0, "glAccount": "ABC"})
    [r] = ingest(svc, validated(f), "cid").results
    _run(svc, "triage", "plan")
    assert svc.store.get(r.opportunity.id).status is Status.needs_review
    assert svc.store.approvals(r.opportunity.id) == []
    [(kind, _, _, details)] = [n for n in svc.notifier.sent if n[1] == r.opportunity.id]
    assert kind == "review" and "approvalId" not in details and details["cards"]["links"]["version"] == "1.5"


def test_provide_from_the_submit_card_takes_the_fields_the_reviewer_changed():
    svc = memory_services()
    oid, notice = review_case(svc)
    approvals.decide(svc, notice["approvalId"], notice["token"], "provide", OWNER, None, None, "c2",
                     choice=_choice(None, **{"ap.post-gl-adjustment.glAccount": "6300",
                                             "ap.post-gl-adjustment.amount": "120.0"}))
    opp = svc.store.get(oid)
    assert opp.status is Status.new and opp.attributes["glAccount"] == "6300"
    assert svc.store.audit(oid)[-1].inputs["fields"] == ["glAccount"]
