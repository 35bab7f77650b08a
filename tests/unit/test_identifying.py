"""Which contract fields identify the record (shared/domain/identifying.py), and how review reads them: never
changed from the finding's value, supplied only where the finding has none (by provide or enrichment)."""
import pytest

from shared.domain import identifying, review
from shared.runtime import REPO_CATALOG, load_catalog

CATALOG = load_catalog(REPO_CATALOG, "local")
PII = CATALOG.pii_fields


def action(action_id):
    return CATALOG.actions[action_id]


@pytest.mark.parametrize("action_id, finding, field, value", [
    ("o2c.close-case", {"orderId": "SO-1", "caseId": "CASE-1"}, "caseId", "CASE-OF-ANOTHER-ORDER"),
    ("o2c.credit-expedited-shipping", {"orderId": "O1", "customerId": "C-1", "shippingCost": 20}, "customerId",
     "C-other"),
    ("leads.escalate", {"leadId": "L1", "ownerId": "U-1", "managerEmail": "m@corp.example"}, "ownerId", "someone"),
    ("leads.escalate", {"leadId": "L1", "ownerId": "U-1", "managerEmail": "m@corp.example"}, "managerEmail",
     "x@evil.example"),
    ("ap.request-missing-fields", {"invoiceId": "I1", "vendorId": "V1", "missingFields": ["po"],
                                   "vendorEmail": "v@vendor.example"}, "vendorEmail", "attacker@evil.example"),
])
def test_run_refuses_changing_a_field_that_identifies_the_record_or_whom_it_writes_to(action_id, finding, field,
                                                                                       value):
    a = action(action_id)
    changed, errors = review.overrides(a, finding, {field: value}, PII, case_key="K")
    assert changed == {} and [(e.pointer, e.detail) for e in errors] == [(f"/parameters/{field}", review.LOCKED)]
    shown = review.shown_parameters(a, finding, PII)[field]  # a masked e-mail sent back as shown: no change
    assert review.overrides(a, finding, {field: shown}, PII, case_key="K") == ({}, [])


@pytest.mark.parametrize("action_id, finding, field", [
    ("o2c.close-case", {"orderId": "SO-1"}, "caseId"),
    ("o2c.credit-expedited-shipping", {"orderId": "O1", "shippingCost": 20}, "customerId"),
    ("leads.escalate", {"leadId": "L1"}, "ownerId"),
])
def test_run_refuses_an_identifying_field_the_finding_lacks_and_says_to_supply_it_with_provide(action_id, finding,
                                                                                                 field):
    _, errors = review.overrides(action(action_id), finding, {field: "ANOTHER"}, PII, case_key="K")
    assert [(e.pointer, e.detail) for e in errors] == [(f"/parameters/{field}", review.MISSING)]


def test_run_without_a_required_identifying_field_the_finding_lacks_asks_for_provide():
    gl = action("ap.post-gl-adjustment")
    _, errors = review.overrides(gl, {"vendorId": "V", "amount": 100, "glAccount": "6100"}, {}, PII, case_key="K")
    assert [(e.pointer, e.detail) for e in errors] == [("/parameters/invoiceId", review.MISSING)]


def test_provide_may_supply_a_missing_identifying_field_but_not_change_one_the_finding_has():
    gl = action("ap.post-gl-adjustment")
    finding = {"vendorId": "V", "amount": 100, "glAccount": "1234"}
    given, errors = review.read_data([gl], finding, {"invoiceId": "INV-2"}, "INV-1")
    assert errors == [] and given == {"invoiceId": "INV-2"}
    assert review.newly_identified([gl], finding, given, "INV-1") == ["invoiceId"]
    _, errors = review.read_data([gl], finding, {"vendorId": "V-OTHER"}, "INV-1")
    assert [(e.pointer, e.detail) for e in errors] == [("/data/vendorId", review.LOCKED)]


def test_a_masked_identifying_value_sent_back_as_shown_is_no_change_and_a_changed_one_is_refused():
    ask = action("ap.request-missing-fields")
    finding = {"invoiceId": "I1", "vendorId": "V1", "vendorEmail": "ap@vendor.example"}
    shown = review.shown_parameters(ask, finding, PII)["vendorEmail"]
    assert shown != "ap@vendor.example"
    given, errors = review.read_data([ask], finding, {"vendorEmail": shown, "missingFields": "po"}, "I1",
                                     pii_fields=PII)
    assert errors == [] and given == {"missingFields": ["po"]}
    _, errors = review.read_data([ask], finding, {"vendorEmail": "x@evil.example"}, "I1", pii_fields=PII)
    assert [e.pointer for e in errors] == ["/data/vendorEmail"]


def test_a_plan_using_a_supplied_identifying_value_names_who_supplied_it():
    gl = action("ap.post-gl-adjustment")
    attributes = {"invoiceId": "INV-2", "vendorId": "V", "amount": 100, "glAccount": "1234"}
    params = {"invoiceId": "INV-2", "vendorId": "V", "amount": 100, "glAccount": "1234"}
    by = identifying.suppliers(gl, params, attributes, {"invoiceId": "olga-oid", "note": "x"})
    assert by == {"invoiceId": "olga-oid"}
    assert identifying.because(by) == "invoiceId supplied by olga-oid: another person approves"
    assert identifying.suppliers(gl, params, attributes, {}) == {}
