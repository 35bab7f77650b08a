"""The pure rules the agents follow: cohorts, contracts, planning, idempotency keys, verification."""
import pytest

from shared.domain import cohort, planning
from shared.domain.contracts import missing, violations
from shared.domain.execution import idempotency_key, new_execution
from shared.domain.verify import check
from shared.runtime import REPO_CATALOG, load_catalog
from tests.factories import NOW

CATALOG = load_catalog(REPO_CATALOG, "local")
GL = CATALOG.actions["ap.post-gl-adjustment"]
REASSIGN = CATALOG.actions["leads.reassign"]


def test_holdout_assignment_is_deterministic_and_close_to_the_configured_share():
    cohorts = [cohort.assign("exp-1", f"CASE-{i}", 10.0) for i in range(10_000)]
    share = cohorts.count(cohort.CONTROL) / len(cohorts) * 100
    assert 8.0 <= share <= 12.0
    assert cohorts == [cohort.assign("exp-1", f"CASE-{i}", 10.0) for i in range(10_000)]
    assert cohort.assign("exp-1", "CASE-1", 0.0) == cohort.TREATED


def test_a_new_salt_draws_cohorts_afresh():
    first = [cohort.assign("exp-1", f"C{i}", 50.0) for i in range(200)]
    second = [cohort.assign("exp-2", f"C{i}", 50.0) for i in range(200)]
    assert first != second


def test_contract_violations_point_at_the_parameter():
    problems = violations(GL, {"invoiceId": "I", "vendorId": "V", "amount": 5000, "glAccount": "1234"})
    assert [p.pointer for p in problems] == ["/parameters/amount"]
    assert violations(GL, {"invoiceId": "I", "vendorId": "V", "amount": 50, "glAccount": "1234"}) == []


def test_missing_names_the_required_fields_the_attributes_lack():
    assert missing(GL, {"invoiceId": "I", "amount": 3}) == ["vendorId", "glAccount"]


def test_low_risk_complete_plan_executes():
    d = planning.decide({"leadId": "L1", "region": "EMEA", "currentOwnerId": "x", "dealSize": 9000}, [REASSIGN], 0.7)
    assert d.outcome == planning.EXECUTE and d.plan.actionId == "leads.reassign"
    assert d.plan.parameters == {"leadId": "L1", "region": "EMEA", "currentOwnerId": "x", "dealSize": 9000}
    assert d.plan.confidence == pytest.approx(1.0)


def test_medium_risk_plan_waits_for_approval_by_the_actions_role():
    d = planning.decide({"invoiceId": "I", "vendorId": "V", "amount": 40, "glAccount": "6100"}, [GL], 0.7)
    assert d.outcome == planning.APPROVAL and d.plan.approvalRole == "AP.Approver"


def test_parameters_past_the_contract_go_to_review_never_to_action():
    d = planning.decide({"invoiceId": "I", "vendorId": "V", "amount": 1_000_000, "glAccount": "6100"}, [GL], 0.7)
    assert d.outcome == planning.REVIEW and d.plan is None
    assert d.problems[0].pointer == "/parameters/amount"


def test_confidence_below_threshold_goes_to_review():
    d = planning.decide({"leadId": "L1", "region": "EMEA"}, [REASSIGN], 0.95)
    assert d.outcome == planning.REVIEW and d.plan.confidence < 0.95


def test_no_candidate_is_a_review_not_a_guess():
    assert planning.decide({"x": 1}, [], 0.7).outcome == planning.REVIEW


def test_idempotency_key_is_stable_and_changes_with_any_input():
    base = idempotency_key("o1", "a", 1, {"x": 1, "y": 2})
    assert base == idempotency_key("o1", "a", 1, {"y": 2, "x": 1})
    assert len({base, idempotency_key("o2", "a", 1, {"x": 1, "y": 2}), idempotency_key("o1", "a", 2, {"x": 1, "y": 2}),
                idempotency_key("o1", "a", 1, {"x": 1, "y": 3})}) == 4
    e = new_execution("o1", "a", 1, {"x": 1, "y": 2}, NOW, "cid", {"method": "deterministic"})
    assert e.id == e.idempotencyKey == base and e.status == "pending" and not e.final


@pytest.mark.parametrize("policy,record,ok", [
    ({"field": "invoice.status", "equals": "awaiting_vendor"}, {"status": "awaiting_vendor"}, True),
    ({"field": "invoice.status", "equals": "awaiting_vendor"}, {"status": "blocked"}, False),
    ({"field": "lead.ownerId", "notEquals": None}, {"ownerId": "ana"}, True),
    ({"field": "lead.ownerId", "notEquals": None}, {"ownerId": None}, False),
    ({"field": "case.status", "in": ["open", "pending"]}, {"status": "open"}, True),
    ({"field": "order.shippingMethod", "equals": "expedited"}, None, False),
    ({}, None, True),
])
def test_verify_policy_checks_the_record(policy, record, ok):
    assert check(policy, record)[0] is ok


def test_a_repo_version_needs_activation_for_high_risk_and_for_raised_risk_caps_or_rates_only():
    from shared.domain.catalog import Action, Catalog
    from shared.domain.change_control import activation_needed
    from shared.runtime import REPO_CATALOG, load_catalog

    base = load_catalog(REPO_CATALOG, "local").actions["leads.reassign"]

    def v2(**changes):
        return Action.model_validate({**base.model_dump(mode="json"), "version": 2, **changes})

    assert activation_needed(v2(description="clearer words"), base) == []
    assert activation_needed(v2(dailyCap=base.dailyCap - 1), base) == []
    assert activation_needed(v2(riskTier="medium"), base) == ["risk tier low → medium"]
    assert "high-risk action" in activation_needed(v2(riskTier="high"), base)
    faster = v2(rateLimit={"perMinute": 2_000})
    catalog = Catalog([base, faster], "local")
    assert catalog.actions["leads.reassign"].version == 1 and ("leads.reassign", 2) in catalog.pending
    assert Catalog([base, faster], "local", [("leads.reassign", 2)]).actions["leads.reassign"].version == 2


def test_evidence_past_the_limit_keeps_the_record_ids_and_the_records_that_fit():
    import random

    from shared.domain.flowcall import DONE, MAX_EVIDENCE_CHARS, MAX_RECORD_IDS, FlowResponse, classify

    small = {"id": "INV-1", "status": "posted"}
    huge = {"id": "ATT-1", "content": "x" * MAX_EVIDENCE_CHARS}
    body = {"status": "succeeded", "evidence": {"recordIds": [f"R-{i}" for i in range(500)],
                                                "before": {"invoice": small, "attachment": huge},
                                                "after": {"invoice": {**small, "status": "paid"}}}}
    outcome = classify(FlowResponse(200, body), 1, 3, 1.0, 60.0, random.Random(1))
    assert outcome.kind == DONE and outcome.status == "succeeded"
    ev = outcome.evidence
    assert ev["truncated"] is True and ev["chars"] > MAX_EVIDENCE_CHARS
    assert ev["recordIds"] == [f"R-{i}" for i in range(MAX_RECORD_IDS)]
    assert ev["before"] == {"invoice": small} and ev["after"] == {"invoice": {**small, "status": "paid"}}
    body["evidence"]["before"].pop("attachment")
    body["evidence"]["recordIds"] = ["INV-1"]
    kept = classify(FlowResponse(200, body), 1, 3, 1.0, 60.0, random.Random(1)).evidence
    assert "truncated" not in kept and kept["before"] == {"invoice": small}


def test_bounded_evidence_fits_its_limit_however_many_records_and_ids_come():
    import json

    from shared.domain.flowcall import MAX_EVIDENCE_CHARS, bounded_evidence

    evidence = {"recordIds": ["R" * 5_000] * 100, "after": {"lead": {"ownerId": "ana"}},
                "before": {f"line{i}": {"text": "行" * 15_000} for i in range(40)}}
    kept = bounded_evidence(evidence)
    assert len(json.dumps(kept, ensure_ascii=False)) <= MAX_EVIDENCE_CHARS
    # The small record the watchdog reads survives; big ones go first.
    assert kept["after"] == {"lead": {"ownerId": "ana"}} and kept["truncated"] is True
    assert 0 < len(kept["recordIds"]) < 100 and len(kept["before"]) < 40
