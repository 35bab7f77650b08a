"""The planner shows the model a case's root-cause signal names as candidate context, never their values."""
import dataclasses
import json

from shared.domain.opportunity import from_finding
from shared.ports import Completion
from shared.services import llm_planner
from tests.factories import NOW, finding, memory_services, validated


class RecordingLlm:
    model = "recording"

    def __init__(self):
        self.asked = []

    def complete(self, messages, schema):
        self.asked.append(messages)
        return Completion("refused", detail="recording only")


def test_the_model_sees_signal_names_and_never_their_values():
    llm = RecordingLlm()
    svc = dataclasses.replace(memory_services(), llm=llm)
    llm_planner.reset()
    o = from_finding(validated(finding(rootCause=[{"name": "vendor", "value": "V-SECRET-300", "share": 0.34},
                                                  {"name": "plant", "value": "1010"}]))[0],
                     svc.catalog, svc.policy.scoring, NOW)
    candidates = svc.catalog.candidates(o.processArea, o.deviationPattern)
    llm_planner.template(svc, o, candidates, "cid")
    [messages] = llm.asked
    user = messages[-1]["content"]
    data = json.loads(user[user.index("{"):user.rindex("}") + 1])
    assert data["rootCauseSignals"] == ["plant", "vendor"]
    assert "V-SECRET-300" not in user and "1010" not in user and "0.34" not in user
