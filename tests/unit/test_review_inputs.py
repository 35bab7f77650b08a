"""How a person's inputs are read back (shared/domain/review.py): the fields that identify the record stay the
finding's, a form carrying every candidate's fields counts only the chosen one's, and supplied data is read as
the contract's types and checked against it."""
import pytest

from shared.domain import review
from shared.domain.catalog import Action
from shared.runtime import REPO_CATALOG, load_catalog

CATALOG = load_catalog(REPO_CATALOG, "local")
GL = CATALOG.actions["ap.post-gl-adjustment"]
FINDING = {"invoiceId": "INV-1", "vendorId": "V-1", "amount": 120.0, "glAccount": "ABC"}
NO_PII: frozenset[str] = frozenset()


def variant(base, **changes):
    return Action.model_validate({**base.model_dump(mode="json"), **changes})


HOLD = variant(GL, id="ap.hold-invoice", compensation=None, approvalThresholds=[], rateLimit=None,
               verify={"field": "hold.state", "equals": "held"}, parameterMap={"holdReason": "vendorId"},
               dataContract={"type": "object", "additionalProperties": False, "required": ["invoiceId"],
                             "properties": {"invoiceId": {"type": "string"}, "holdReason": {"type": "string"},
                                            "holdDays": {"type": "integer", "minimum": 1}}})


def test_the_fields_that_identify_the_record_are_ids_the_entity_declared_personal_the_case_key_and_verified():
    assert review.locked(GL, FINDING, "CASE-1") == ("invoiceId", "vendorId")  # entityField; ...Id
    case = variant(GL, rateLimit=None, parameterMap={"docNumber": "caseRef"}, verify={"field": "case.state"},
                   approvalThresholds=[], compensation=None,
                   dataContract={"type": "object", "x-identifying": ["plant"], "x-pii": ["contactEmail"],
                                 "properties": {
                       "docNumber": {"type": "string"}, "caseId": {"type": "string"}, "orderId": {"type": "string"},
                       "partnerId": {"type": "string"}, "note": {"type": "string"}, "plant": {"type": "string"},
                       "contactEmail": {"type": "string"}, "ID": {"type": "string"}, "paid": {"type": "string"}}})
    # docNumber: taken from the attribute holding the case key; caseId/orderId: the record the watchdog reads;
    # partnerId: an "...Id" whether the finding gave it or not; plant: declared; contactEmail: whom it writes to.
    # "ID" and "paid" are not "...Id" names, nor is a plain field identifying.
    assert review.locked(case, {"caseRef": "CASE-7", "note": "x"}, "CASE-7") == (
        "docNumber", "caseId", "orderId", "partnerId", "plant", "contactEmail")


def test_x_identifying_must_name_the_contracts_properties():
    contract = {"type": "object", "properties": {"plant": {"type": "string"}}}
    assert variant(GL, approvalThresholds=[], dataContract={**contract, "x-identifying": ["plant"]})
    for bad in (["nope"], "plant", [1]):
        with pytest.raises(ValueError, match="x-identifying"):
            variant(GL, approvalThresholds=[], dataContract={**contract, "x-identifying": bad})


@pytest.mark.parametrize("field, value", [("invoiceId", "INV-OTHER"), ("vendorId", "V-9")])
def test_a_changed_identifying_field_is_refused_by_name_and_one_sent_as_shown_is_not(field, value):
    changed, errors = review.overrides(GL, FINDING, {field: value, "glAccount": "6100"}, NO_PII, case_key="C")
    assert [(e.pointer, e.detail) for e in errors] == [(f"/parameters/{field}", review.LOCKED)]
    changed, errors = review.overrides(GL, FINDING, {field: FINDING[field], "glAccount": "6100"}, NO_PII)
    assert errors == [] and changed == {"glAccount": "6100"}


def test_the_chosen_candidates_namespaced_fields_count_and_anothers_as_shown_are_ignored():
    sent = {"ap.post-gl-adjustment.glAccount": "6100", "ap.post-gl-adjustment.amount": "120.0",
            "ap.hold-invoice.holdReason": "anything", "holdReason": "V-1"}
    mine, keys, errors = review.for_action(GL, [GL, HOLD], FINDING, sent, NO_PII)
    assert errors == [] and mine == {"glAccount": "6100", "amount": "120.0"}
    assert keys["glAccount"] == "ap.post-gl-adjustment.glAccount"
    _, _, errors = review.for_action(GL, [GL, HOLD], FINDING, {"holdReason": "changed"}, NO_PII)
    assert [e.pointer for e in errors] == ["/parameters/holdReason"]
    mine, _, _ = review.for_action(GL, [GL, HOLD], FINDING, {"glAccount": "6100",
                                                              "ap.post-gl-adjustment.glAccount": "ABC"}, NO_PII)
    assert mine == {"glAccount": "6100"}  # sent twice: the changed value counts, not the card's copy


def test_supplied_data_is_read_as_the_contracts_types_and_checked():
    given, errors = review.read_data([GL], FINDING, {"amount": "300", "glAccount": "6100"})
    assert errors == [] and given == {"amount": 300, "glAccount": "6100"} and isinstance(given["amount"], int)
    given, errors = review.read_data([HOLD], {}, {"holdDays": "3"})
    assert given == {"holdDays": 3} and errors == []
    for data, pointer in (({"amount": "lots"}, "/data/amount"), ({"amount": "nan"}, "/data/amount"),
                          ({"amount": "5000"}, "/data/amount"), ({"glAccount": "61"}, "/data/glAccount"),
                          ({"holdDays": "0"}, "/data/holdDays"), ({"salary": "1"}, "/data/salary"),
                          ({"invoiceId": "INV-OTHER"}, "/data/invoiceId")):
        _, errors = review.read_data([GL, HOLD], FINDING, data, "C")
        assert [e.pointer for e in errors] == [pointer], data
    given, errors = review.read_data([GL], {}, {"invoiceId": "INV-NEW"})  # the finding gave none: supplied
    assert errors == [] and given == {"invoiceId": "INV-NEW"}


def test_a_non_finite_amount_is_refused_on_run():
    _, errors = review.overrides(GL, FINDING, {"amount": float("nan")}, NO_PII)
    assert [e.pointer for e in errors] == ["/parameters/amount"]
