"""NaN and Infinity compare false (or true) with every limit: no door takes them, and an amount threshold that
meets a value it cannot compare asks for the most approvers it can."""
import json

import pytest
from pydantic import ValidationError

from shared.api import mcp_tools
from shared.domain import planning
from shared.domain.catalog import Action
from shared.domain.errors import InvalidInput, MalformedBody
from shared.ingest.generic import decode_json
from shared.runtime import REPO_CATALOG, load_catalog

CATALOG = load_catalog(REPO_CATALOG, "local")
GL = CATALOG.actions["ap.post-gl-adjustment"]  # amount: an approval above 500, two approvers above 750
REASSIGN = CATALOG.actions["leads.reassign"]  # low risk; dealSize: an approval above 100,000, no second


@pytest.mark.parametrize("raw, where", [(b'{"amount": NaN}', "/amount"), (b'[1, {"a": [Infinity]}]', "/1/a/0"),
                                        (b'-Infinity', "")])
def test_the_body_decoder_refuses_nan_and_infinity_naming_where(raw, where):
    with pytest.raises(MalformedBody) as refused:
        decode_json(raw)
    assert [e.pointer for e in refused.value.errors] == [where]
    assert "is not a JSON number" in refused.value.errors[0].detail


@pytest.mark.parametrize("value", ["9000", float("nan"), True, float("inf"), 10 ** 400, ["900"]],
                         ids=["text from a form", "nan", "bool", "inf", "int past float", "list"])
def test_a_threshold_value_that_is_not_a_finite_number_asks_the_most_that_threshold_can(value):
    need, why = planning.threshold_need(GL, {"amount": value})
    assert need == 2 and why.startswith("amount is ") and "not a finite number: two approvers" in why
    need, why = planning.threshold_need(REASSIGN, {"dealSize": value})
    assert need == 1 and why.startswith("dealSize is ") and why.endswith("an approval")


def test_an_absent_threshold_field_asks_nothing_and_a_number_is_compared():
    assert planning.threshold_need(GL, {}) == (0, "")
    assert planning.threshold_need(GL, {"amount": None}) == (0, "")
    assert planning.threshold_need(GL, {"amount": 600})[0] == 1


def test_a_low_risk_plan_with_a_nan_amount_waits_for_an_approver_instead_of_running():
    plan = planning.Plan(REASSIGN.id, REASSIGN.version, {"leadId": "L", "region": "EMEA", "dealSize": float("nan")},
                         1.0, "low", None)
    decided = planning.judge(plan, REASSIGN, "fits", 0.7)
    assert decided.outcome == planning.APPROVAL and decided.plan and decided.plan.approvers == 1
    assert "dealSize is nan, not a finite number" in decided.reason


@pytest.mark.parametrize("sent", [{"amount": float("nan")}, '{"amount": NaN}', {"deep": {"amount": float("-inf")}}],
                         ids=["object", "json text", "nested"])
def test_an_mcp_object_argument_holding_nan_is_refused_naming_where(sent):
    with pytest.raises(InvalidInput) as refused:
        mcp_tools._object({"parameters": sent}, "parameters")
    [error] = refused.value.errors
    assert error.pointer in ("/arguments/parameters/amount", "/arguments/parameters/deep/amount")
    assert "finite number" in error.detail


def test_an_mcp_tool_context_holding_nan_is_a_400():
    answer = json.loads(mcp_tools.run('{"arguments": {"top": NaN}}', mcp_tools._backlog))
    assert answer["error"]["status"] == 400 and "NaN" in answer["error"]["detail"]


def _with(**changes):
    return {**GL.model_dump(mode="json"), "version": 2, **changes}


@pytest.mark.parametrize("thresholds, why", [
    ([{"field": "glAccount", "approvalAbove": 1}], "type number or integer, not 'string'"),
    ([{"field": "total", "approvalAbove": 1}], "does not declare"),
], ids=["a text field", "an undeclared field"])
def test_a_threshold_on_a_field_the_contract_does_not_declare_a_number_is_refused_at_load(thresholds, why):
    with pytest.raises(ValidationError, match=why):
        Action.model_validate(_with(approvalThresholds=thresholds))
    contract = {**GL.dataContract, "x-approvalThresholds": thresholds}
    with pytest.raises(ValidationError, match=why):
        Action.model_validate(_with(dataContract=contract))


def test_a_threshold_on_a_nullable_integer_field_is_taken():
    props = {**GL.dataContract["properties"], "lines": {"type": ["integer", "null"]}}
    action = Action.model_validate(_with(dataContract={**GL.dataContract, "properties": props},
                                         approvalThresholds=[{"field": "lines", "approvalAbove": 10}]))
    assert [t.field for t in action.thresholds()] == ["lines"]
