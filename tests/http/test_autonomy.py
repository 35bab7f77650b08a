"""Autonomy modes and the freeze decide whether a plan runs alone, waits for a person, or stops."""
import pytest

from shared.domain.errors import Forbidden, InvalidInput, Unauthorized
from shared.domain.identity import Principal
from shared.domain.status import Status
from shared.services import autonomy
from tests.http.test_pipeline import drive, start

ADMIN = Principal("ops-oid", "ops.lead@contoso.com", frozenset({"Autonomy.Admin"}), "easy-auth")


def set_(svc, **body):
    return autonomy.change(svc, {"reason": "test", **body}, ADMIN)


def test_freeze_sends_even_low_risk_plans_to_a_person_and_unfreeze_lets_them_run(svc, sandbox):
    set_(svc, freeze=True)
    frozen = start(svc, caseKey="LD-F1", attributes={"leadId": "LD-F1", "region": "EMEA"})
    drive(svc)
    assert svc.store.get(frozen).status is Status.awaiting_approval
    assert sandbox.effects.get("leads.reassign", 0) == 0
    set_(svc, freeze=False)
    free = start(svc, caseKey="LD-F2", attributes={"leadId": "LD-F2", "region": "EMEA"})
    drive(svc)
    assert svc.store.get(free).status in (Status.verified, Status.compensated)


def test_off_for_one_action_sends_its_plans_to_review_and_leaves_others_alone(svc, sandbox):
    set_(svc, actions={"leads.reassign": "off"})
    stopped = start(svc, caseKey="LD-O1", attributes={"leadId": "LD-O1", "region": "EMEA"})
    other = start(svc, processArea="accounts-payable", deviationPattern="invoice-missing-po", caseKey="INV-O1",
                  attributes={"invoiceId": "INV-O1", "vendorId": "V-1", "missingFields": ["poNumber"]})
    drive(svc)
    assert svc.store.get(stopped).status is Status.needs_review
    assert svc.store.get(other).status is Status.verified


def test_global_approval_mode_asks_for_every_plan(svc, sandbox):
    set_(svc, mode="approval")
    oid = start(svc, caseKey="LD-G1", attributes={"leadId": "LD-G1", "region": "EMEA"})
    drive(svc)
    assert svc.store.get(oid).status is Status.awaiting_approval
    assert autonomy.current(svc).mode_for("leads.reassign") == "approval"


def test_changing_autonomy_needs_the_role_and_a_reason(svc):
    with pytest.raises(Unauthorized):
        autonomy.change(svc, {"freeze": True, "reason": "x"}, None)
    with pytest.raises(Forbidden):
        autonomy.change(svc, {"freeze": True, "reason": "x"},
                        Principal("b", "b", frozenset({"Sales.Manager"}), "easy-auth"))
    with pytest.raises(InvalidInput) as bad:
        autonomy.change(svc, {"mode": "yolo", "actions": {"nope": "off"}}, ADMIN)
    assert {e.pointer for e in bad.value.errors} == {"/mode", "/actions/nope", "/reason"}
    assert autonomy.current(svc, fresh=True).frozen is False
