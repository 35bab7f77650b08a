"""The flows' JSON Schemas (infra/flows/) are the models the app validates with, and real traffic fits them."""
import json

import jsonschema
import pytest

from shared.domain.flow_contracts import CONTRACTS, FOLDER, schema
from tests.http.test_pipeline import drive, start


def _file(name):
    return json.loads((FOLDER / f"{name}.schema.json").read_text())


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_each_schema_file_is_generated_from_its_model(name):
    assert _file(name) == schema(CONTRACTS[name]), "run: python -m shared.domain.flow_contracts"
    assert "$ref" not in json.dumps(_file(name))  # Power Automate's trigger schema does not follow $ref


def test_what_the_executor_sends_and_the_sandbox_answers_fit_the_child_flow_schemas(svc, sandbox):
    sent, answered = [], []
    real = svc.flows.call

    def recording(setting, payload, key, cid, timeout):
        sent.append(payload)
        response = real(setting, payload, key, cid, timeout)
        if response.status == 200:
            answered.append(response.body)
        return response

    svc.flows.call = recording
    start(svc)
    drive(svc)
    assert sent and answered
    for payload in sent:
        jsonschema.validate(payload, _file("child-flow-request"))
    for body in answered:
        jsonschema.validate(body, _file("child-flow-response"))


def test_an_answer_outside_the_contract_fails_the_execution_instead_of_guessing():
    import random

    from shared.domain.flowcall import GIVE_UP, FlowResponse, classify

    o = classify(FlowResponse(200, {"status": "done", "evidence": []}), 1, 5, 1, 10, random.Random(1))
    assert o.kind == GIVE_UP and o.status == "failed" and "status" in o.message


def test_the_approval_flow_request_and_answer_fit_their_schemas():
    from shared.adapters.notifiers import FlowNotifier

    posted = []
    notifier = FlowNotifier("http://flow.invalid/x", "https://closedloop.example")
    notifier.post = posted.append
    notifier.notify("approve", "o" * 32, "approve?", {"approvalId": "a-1", "token": "t", "plan": {"parameters": {"x": 1}},
                                                      "cards": {"submit": {"type": "AdaptiveCard"}}})
    jsonschema.validate(posted[0], _file("approval-flow-request"))
    jsonschema.validate({"token": "t", "decision": "approve", "helpful": "yes",
                         "approver": {"id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "roles": ["AP.Approver"]}}, _file("approval-answer"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"token": "t", "decision": "maybe"}, _file("approval-answer"))
    # The responder's id is the Entra object id: an e-mail would be a second identity for one person.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"token": "t", "decision": "approve", "approver": {"id": "ana@contoso.com"}},
                            _file("approval-answer"))
