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


def test_an_agents_freeze_adds_to_the_record_as_written_so_a_persons_change_meanwhile_stands(svc):
    set_(svc, freezeActions=["leads.escalate"])  # Y, frozen by a person
    save, raced = svc.coordination.save_autonomy, []

    def racing(doc, etag):
        if not raced:  # a person unfreezes Y and freezes Z between the agent's read and its write
            raced.append(doc)
            set_(svc, freezeActions=["ap.request-missing-fields"])
        return save(doc, etag)

    svc.coordination.save_autonomy = racing
    done = autonomy.change(svc, {"freezeAdd": ["leads.reassign"], "reason": "drift: x"}, None, actor="drift-watch")
    svc.coordination.save_autonomy = save
    assert raced and done.frozenActions == ["ap.request-missing-fields", "leads.reassign"]
    assert autonomy.current(svc, fresh=True).frozenActions == ["ap.request-missing-fields", "leads.reassign"]
    again = autonomy.change(svc, {"freezeAdd": ["leads.reassign"], "reason": "drift: x"}, None, actor="learning")
    assert again.etag == done.etag and again.changedBy == "drift-watch"  # frozen already: nothing written


def test_freeze_add_is_an_agents_and_names_catalog_actions(svc):
    with pytest.raises(InvalidInput) as person:
        set_(svc, freezeAdd=["leads.reassign"])
    assert [e.pointer for e in person.value.errors] == ["/freezeAdd"]
    with pytest.raises(InvalidInput) as bad:
        autonomy.change(svc, {"freezeAdd": ["nope", ["leads.reassign"]], "reason": "r"}, None, actor="learning")
    assert [e.pointer for e in bad.value.errors] == ["/freezeAdd"]
