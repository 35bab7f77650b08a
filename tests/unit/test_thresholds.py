"""Amount thresholds: an approval whatever the tier above the first, two different people above the second;
raising or removing one is a loosening that waits for a second person."""
import pytest

from shared.domain import planning
from shared.domain.catalog import Action
from shared.domain.change_control import activation_needed, loosenings
from shared.runtime import REPO_CATALOG, load_catalog

CATALOG = load_catalog(REPO_CATALOG, "local")
GL = CATALOG.actions["ap.post-gl-adjustment"]
REASSIGN = CATALOG.actions["leads.reassign"]
GL_CASE = {"invoiceId": "INV-1", "vendorId": "V-1", "glAccount": "6100"}
LEAD = {"leadId": "LD-1", "region": "EMEA"}


def version(base, origin="api", **changes):
    return Action.model_validate({**base.model_dump(mode="json"), "version": base.version + 1, "origin": origin,
                                  **changes})


def test_the_shipped_catalog_declares_thresholds_in_both_forms():
    assert [t.model_dump() for t in GL.approvalThresholds] == [
        {"field": "amount", "approvalAbove": 500, "secondApproverAbove": 750}]
    assert REASSIGN.riskTier.value == "low" and REASSIGN.approvalThresholds == []
    assert [(t.field, t.approvalAbove) for t in REASSIGN.thresholds()] == [("dealSize", 100000)]


def test_every_shipped_action_says_its_effort_prerequisites_and_failure_modes():
    for action in CATALOG.versions.values():
        assert action.effortHours and action.prerequisites and action.failureModes, action.id


def test_low_risk_action_above_approval_threshold_asks_for_approval():
    below = planning.decide({**LEAD, "dealSize": 90000}, [REASSIGN], 0.7)
    above = planning.decide({**LEAD, "dealSize": 150000}, [REASSIGN], 0.7)
    assert below.outcome == planning.EXECUTE and below.plan and below.plan.approvers == 0
    assert "approvers" not in below.plan.to_dict()  # plans without an amount approval stay as they were
    assert above.outcome == planning.APPROVAL and above.plan and above.plan.to_dict()["approvers"] == 1
    assert "dealSize 150,000.00 is above 100,000.00" in above.reason and "low risk" in above.reason


@pytest.mark.parametrize("amount, approvers", [(120.0, 0), (500.0, 0), (600.0, 1), (750.01, 2), (999.0, 2)])
def test_amounts_set_how_many_people_approve_a_medium_risk_action(amount, approvers):
    d = planning.decide({**GL_CASE, "amount": amount}, [GL], 0.7)
    assert d.outcome == planning.APPROVAL and d.plan and d.plan.approvers == approvers
    assert ("two approvers" in d.reason) == (approvers == 2)


def test_a_value_that_is_not_a_finite_number_asks_the_most_approvers_the_threshold_can():
    # Fails closed: text from a form, a boolean or NaN cannot be compared (tests/unit/test_non_finite_numbers.py).
    assert planning.threshold_need(GL, {"amount": "9999"}) == (2, "amount is text, not a finite number: two approvers")
    assert planning.threshold_need(GL, {"amount": True})[0] == 2
    assert planning.threshold_need(REASSIGN, {"dealSize": float("nan")})[0] == 1


def test_autonomy_approval_mode_still_asks_without_an_amount_approval():
    d = planning.govern(planning.decide({**LEAD, "dealSize": 10}, [REASSIGN], 0.7), "approval")
    assert d.outcome == planning.APPROVAL and d.plan and d.plan.approvers == 0


def test_open_approval_takes_the_stage_from_the_plan_and_a_role_for_amounts():
    from shared.services import approvals
    from shared.services.ingest import ingest
    from tests.factories import finding, memory_services, validated

    svc = memory_services()
    [r] = ingest(svc, validated(finding(processArea="lead-management", deviationPattern="lead-stale",
                                        caseKey="LD-T1", attributes={**LEAD, "dealSize": 150000})), "cid").results
    d = planning.decide({**LEAD, "dealSize": 150000}, [REASSIGN], 0.7)
    assert d.plan is not None
    asked, notice = approvals.open_approval(svc, r.opportunity, d.plan.to_dict(), "low", d.reason, "cid")
    assert asked.context == {"approvers": 1, "stage": 1}
    # leads.reassign names no approval role: an amount approval needs the policy's reviewRole, not anyone signed in
    assert asked.requiredRole == svc.policy.reviewRole == notice["requiredRole"]
    plain = planning.govern(planning.decide({**LEAD, "dealSize": 10}, [REASSIGN], 0.7), "approval")
    assert plain.plan is not None
    other, _ = approvals.open_approval(svc, r.opportunity, plain.plan.to_dict(), "low", plain.reason, "cid")
    assert other.context == {} and other.requiredRole is None


THRESHOLD = [{"field": "amount", "approvalAbove": 500, "secondApproverAbove": 750}]
LOOSER = {
    "approval threshold raised": ([{"field": "amount", "approvalAbove": 900, "secondApproverAbove": 750}],
                                  "approval threshold on amount 500 → 900"),
    "second approver raised": ([{"field": "amount", "approvalAbove": 500, "secondApproverAbove": 5000}],
                               "second-approver threshold on amount 750 → 5000"),
    "second approver removed": ([{"field": "amount", "approvalAbove": 500}],
                                "second-approver threshold on amount 750 → none"),
    "all removed": ([], "approval threshold on amount 500 → none"),
}
TIGHTER = {
    "approval threshold lowered": [{"field": "amount", "approvalAbove": 100, "secondApproverAbove": 750}],
    "second approver lowered": [{"field": "amount", "approvalAbove": 500, "secondApproverAbove": 600}],
    "another threshold added": [*THRESHOLD, {"field": "amount", "approvalAbove": 300}],
    "a lower one in the contract too": THRESHOLD,  # with the contract's, below
}


@pytest.mark.parametrize("thresholds, why", LOOSER.values(), ids=LOOSER.keys())
def test_raising_or_removing_a_threshold_over_the_api_waits_for_a_second_person(thresholds, why):
    new = version(GL, approvalThresholds=thresholds)
    reasons = activation_needed(new, GL)
    assert any(why in r for r in reasons), reasons


def test_a_threshold_moved_to_another_field_waits_for_a_second_person():
    # A threshold names a number field of the contract (catalog.Action): the new field is declared with it.
    contract = {**GL.dataContract, "properties": {**GL.dataContract["properties"], "total": {"type": "number"}}}
    moved = version(GL, dataContract=contract,
                    approvalThresholds=[{"field": "total", "approvalAbove": 500, "secondApproverAbove": 750}])
    assert any("on amount 500 → none" in r for r in activation_needed(moved, GL))


@pytest.mark.parametrize("thresholds", TIGHTER.values(), ids=TIGHTER.keys())
def test_lowering_or_adding_a_threshold_over_the_api_goes_live_alone(thresholds):
    contract = {**GL.dataContract, "x-approvalThresholds": [{"field": "amount", "approvalAbove": 50}]}
    assert activation_needed(version(GL, approvalThresholds=thresholds), GL) == []
    assert loosenings(GL, version(GL, approvalThresholds=thresholds, dataContract=contract)) == []


def test_a_data_contract_threshold_raised_or_removed_is_a_loosening_too():
    raised = {**REASSIGN.dataContract, "x-approvalThresholds": [{"field": "dealSize", "approvalAbove": 250000}]}
    removed = {k: v for k, v in REASSIGN.dataContract.items() if k != "x-approvalThresholds"}
    assert loosenings(REASSIGN, version(REASSIGN, dataContract=raised)) == [
        "approval threshold on dealSize 100000 → 250000"]
    assert loosenings(REASSIGN, version(REASSIGN, dataContract=removed)) == [
        "approval threshold on dealSize 100000 → none"]
    # the same threshold moved from the contract onto the action changes nothing
    moved = version(REASSIGN, dataContract=removed, approvalThresholds=[{"field": "dealSize", "approvalAbove": 100000}])
    assert loosenings(REASSIGN, moved) == []


def test_a_repo_version_that_raises_a_threshold_waits_like_a_raised_cap_and_one_that_lowers_it_does_not():
    raised = version(GL, origin="repo", approvalThresholds=LOOSER["second approver raised"][0])
    lowered = version(GL, origin="repo", approvalThresholds=TIGHTER["second approver lowered"])
    assert activation_needed(raised, GL) == ["second-approver threshold on amount 750 → 5000"]
    assert activation_needed(lowered, GL) == []
