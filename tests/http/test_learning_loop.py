"""The loop learns, end to end (devhost/learning_sim.py): three actions with known true effects go through ingest,
the agents, outcomes and one sweep on the local host over real Azurite. The harmful one is frozen in that sweep,
the null one stops ramping, the helpful one's calibration interval covers the true ratio, and the backlog's order
follows what was measured, not what the miners predicted."""
import pytest

from devhost import learning_sim
from tests.conftest import hosted


@pytest.fixture(scope="module")
def simulated(azurite, tmp_path_factory):
    folder = learning_sim.catalog(tmp_path_factory.mktemp("catalog"))
    with hosted(azurite, CATALOG_DIR=str(folder)) as server:
        yield learning_sim.run(server, n=150, seed=21)


def test_the_sweep_learned_without_a_failed_step(simulated):
    assert simulated["sweepFailed"] == [] and simulated["cases"] == 450


def test_the_harmful_action_is_frozen_within_one_sweep_and_the_others_are_not(simulated):
    harm = simulated["actions"]["o2c.open-case"]
    assert harm["verdict"] == "harmful" and harm["measured"]["ci"]["low"] > 0
    assert simulated["frozen"] == ["o2c.open-case"]


def test_the_null_action_stops_ramping_while_the_helpful_one_widens(simulated):
    null, helps = simulated["actions"]["leads.escalate"], simulated["actions"]["leads.reassign"]
    assert null["verdict"] == "null" and null["measured"]["ci"]["low"] < 0 < null["measured"]["ci"]["high"]
    assert null["rampShare"] == 50.0
    assert helps["rampShare"] == 100.0


def test_the_helpful_actions_calibration_interval_covers_the_true_ratio(simulated):
    helps = simulated["actions"]["leads.reassign"]
    assert helps["verdict"] == "helpful"
    assert helps["ratio"]["low"] <= helps["trueRatio"] <= helps["ratio"]["high"]
    assert 0.0 < helps["factor"] < 1.0


def test_the_backlog_order_follows_what_was_measured(simulated):
    a = simulated["actions"]
    before = [a[x]["priorityBefore"] for x in a]
    assert max(before) / min(before) < 1.1  # the miners predicted the same for all three
    helps, null, harm = (a[x]["priorityAfter"] for x in ("leads.reassign", "leads.escalate", "o2c.open-case"))
    assert helps > 3 * null and null > harm == 0.0
    assert simulated["orderAfter"] == ["leads.reassign", "leads.escalate", "o2c.open-case"]
    assert "× 0.6" in a["leads.reassign"]["rationaleAfter"] and "measured −1.7 d vs −3.0 d expected" in \
        a["leads.reassign"]["rationaleAfter"]


def test_the_weekly_review_flags_the_harmful_and_the_null_versions(simulated):
    assert simulated["insightsFlags"] == [("leads.escalate", "null"), ("o2c.open-case", "harmful")]
