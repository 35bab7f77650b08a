"""A review's identifying fields (shared/services/review.py): run keeps them as the finding has them, provide may
supply one the finding lacks, and a plan using a supplied one needs someone else's approval."""
import pytest

from shared.domain.errors import Forbidden, InvalidInput
from shared.domain.identity import Principal
from shared.domain.status import Status
from shared.services import approvals
from shared.services.ingest import ingest
from tests.factories import finding, memory_services, person, replace_action, validated
from tests.unit.test_review import _choice, _run

OLGA = Principal("olga-oid", "olga@contoso.com", frozenset({"Backlog.Owner", "AP.Approver"}), "easy-auth")
ANA = person("ana@contoso.com", "AP.Approver")
GL = "ap.post-gl-adjustment"


def review_without_invoice(svc):
    """A price variance whose miner knew no invoice id (optional here, so triage does not ask for it) and a broken
    GL account: a reviewer gets it."""
    contract = svc.catalog.actions[GL].dataContract
    replace_action(svc, GL, dataContract={**contract, "required": ["vendorId", "amount", "glAccount"]})
    f = finding(deviationPattern="price-variance", caseKey="CASE-P1",
                attributes={"vendorId": "V-1", "amount": 120.0, "glAccount": "ABC"})
    [r] = ingest(svc, validated(f), "cid").results
    _run(svc, "triage", "plan")
    oid = r.opportunity.id
    assert svc.store.get(oid).status is Status.needs_review
    [notice] = [n[3] for n in svc.notifier.sent if n[1] == oid and n[0] == "review"]
    return oid, notice


def test_run_refuses_an_identifying_field_the_finding_lacks_with_the_provide_hint():
    svc = memory_services()
    oid, notice = review_without_invoice(svc)
    with pytest.raises(InvalidInput) as err:
        approvals.decide(svc, notice["approvalId"], notice["token"], "run", OLGA, None, None, "c2",
                         choice=_choice(GL, glAccount="6100", invoiceId="INV-2"))
    assert [(e.pointer, e.detail) for e in err.value.errors] == [
            ("/parameters/invoiceId", "identifies the record; supply it with provide")]
    assert svc.store.get(oid).status is Status.needs_review and svc.bus.messages == []


def test_provide_cannot_change_an_identifying_field_the_finding_has():
    svc = memory_services()
    oid, notice = review_without_invoice(svc)
    with pytest.raises(InvalidInput) as err:
        approvals.decide(svc, notice["approvalId"], notice["token"], "provide", OLGA,
                         {"vendorId": "V-OTHER", "invoiceId": "INV-2"}, None, "c2")
    assert [(e.pointer, e.detail) for e in err.value.errors] == [
        ("/data/vendorId", "identifies the record; it cannot be changed on review")]
    assert svc.store.get(oid).attributes["vendorId"] == "V-1" and svc.store.get(oid).supplied == {}


def test_a_reviewer_who_supplied_the_invoice_id_cannot_approve_her_own_run_of_it():
    svc = memory_services()
    oid, notice = review_without_invoice(svc)
    approvals.decide(svc, notice["approvalId"], notice["token"], "provide", OLGA, {"invoiceId": "INV-2"}, None, "c2")
    opp = svc.store.get(oid)
    assert opp.supplied == {"invoiceId": "olga-oid"} and svc.store.audit(oid)[-1].inputs["supplied"] == [
        "invoiceId"]
    _run(svc, "triage", "plan")  # the GL account still breaks the contract: back to a reviewer
    [again] = [n[3] for n in svc.notifier.sent if n[1] == oid and n[0] == "review"][1:]
    approvals.decide(svc, again["approvalId"], again["token"], "run", OLGA, None, None, "c3",
                     choice=_choice(GL, glAccount="6100"))  # she holds AP.Approver: alone, this would run at once
    assert svc.store.get(oid).status is Status.awaiting_approval and svc.bus.messages == []
    [ask] = [n[3] for n in svc.notifier.sent if n[1] == oid and n[0] == "approve"]
    assert svc.store.approval(ask["approvalId"]).context == {"approvers": 1, "stage": 1}
    assert "invoiceId supplied by olga-oid" in svc.store.audit(oid)[-1].reason
    with pytest.raises(Forbidden, match="supplied invoiceId; another person approves"):
        approvals.decide(svc, ask["approvalId"], ask["token"], "approve", OLGA, None, None, "c4")
    approvals.decide(svc, ask["approvalId"], ask["token"], "approve", ANA, None, None, "c4")
    opp = svc.store.get(oid)
    assert opp.status is Status.approved and opp.plan["parameters"]["invoiceId"] == "INV-2"
    assert [m.body["type"] for m in svc.bus.messages] == ["execute"]


def test_the_opportunity_detail_shows_who_supplied_an_identifying_field():
    from shared.services.views import opportunity_view

    svc = memory_services()
    oid, notice = review_without_invoice(svc)
    approvals.decide(svc, notice["approvalId"], notice["token"], "provide", OLGA, {"invoiceId": "INV-2"}, None, "c2")
    opp = svc.store.get(oid)
    assert opportunity_view(opp)["supplied"] == {"invoiceId": "olga-oid"}
    assert "supplied" not in opportunity_view(opp, detail=False)


def test_supplied_survives_the_table_entity_round_trip_and_is_absent_when_unset():
    from dataclasses import replace

    from shared.adapters.entities import from_entity, to_entity

    svc = memory_services()
    oid, _ = review_without_invoice(svc)
    opp = svc.store.get(oid)
    assert "supplied" not in to_entity(opp)
    marked = replace(opp, supplied={"invoiceId": "olga-oid"})
    assert from_entity(to_entity(marked)).supplied == {"invoiceId": "olga-oid"}
