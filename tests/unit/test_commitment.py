"""The weekly commitment's pure rules: ISO weeks, one item per group or case, and what became of it."""
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.catalog import Action
from shared.domain.commitment import current_week, merged, outcome, parse_week, tally, week_end
from shared.services.views import action_facts, effort
from tests.factories import NOW


@pytest.mark.parametrize("text, week", [("2026-W49", "2026-W49"), (" 2020-W53 ", "2020-W53"), ("2026-W01", "2026-W01")])
def test_an_iso_week_is_read_and_normalised(text, week):
    assert parse_week(text) == week


@pytest.mark.parametrize("text", ["2026-W54", "2026-W00", "2026-W5", "2026W49", "49", "", "2021-W53"])
def test_anything_else_is_not_a_week(text):
    with pytest.raises(ValueError):
        parse_week(text)


def test_the_current_week_is_the_iso_week_in_utc_and_ends_monday():
    sunday_night = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)
    assert current_week(sunday_night) == "2026-W49"
    assert current_week(sunday_night + timedelta(hours=1)) == "2026-W50"
    assert week_end("2026-W49") == datetime(2026, 12, 7, tzinfo=UTC)


def test_committing_an_item_again_replaces_it_in_place():
    first = [{"kind": "group", "processArea": "AP", "deviationPattern": "late", "owner": "ana"},
             {"kind": "opportunity", "opportunityId": "x", "owner": "ana"}]
    again = merged(first, [{"kind": "group", "processArea": "ap", "deviationPattern": "LATE", "owner": "bob"},
                           {"kind": "opportunity", "opportunityId": "y", "owner": "bob"}])
    assert [(i.get("opportunityId"), i["owner"]) for i in again] == [(None, "bob"), ("x", "ana"), ("y", "bob")]


@pytest.mark.parametrize("status, hours, expected", [
    ("verified", 0, "done"), ("closed", 0, "done"), ("compensated", 0, "done"), ("dismissed", 0, "done"),
    ("failed", 0, "stuck"), ("needs_review", 0, "stuck"), ("needs_data", 0, "stuck"), ("rejected", 0, "stuck"),
    ("awaiting_approval", 25, "stuck"), ("awaiting_approval", 23, "inFlight"), ("executing", 100, "inFlight"),
    ("planned", 0, "inFlight"), ("new", 0, "inFlight")])
def test_what_became_of_a_committed_case(status, hours, expected):
    assert outcome(status, NOW - timedelta(hours=hours), NOW, sla_hours=24) == expected


def test_a_groups_outcomes_are_counted_each():
    assert tally(["done", "stuck", "done"]) == {"done": 2, "inFlight": 0, "stuck": 1}


def test_effort_is_the_persons_estimate_else_the_catalog_actions():
    from shared.domain.opportunity import from_findings
    from shared.runtime import REPO_CATALOG, load_catalog, load_policy
    from tests.factories import finding, validated
    [opp] = from_findings(validated(finding()), load_catalog(REPO_CATALOG, "local"),
                          load_policy(REPO_CATALOG).scoring, NOW)
    action = Action.model_validate({**_action_doc(), "effortHours": 3, "prerequisites": ["vendor master access"],
                                    "failureModes": ["vendor has no email"]})
    assert effort(opp, action) == {"effortHours": 3, "effortSource": "catalog"}
    assert effort(opp, None) == {"effortHours": None, "effortSource": None}
    opp.effortHours = 1.5
    assert effort(opp, action) == {"effortHours": 1.5, "effortSource": "person"}
    assert action_facts(action) == {"effortHours": 3, "prerequisites": ["vendor master access"],
                                    "failureModes": ["vendor has no email"]}


def _action_doc():
    import json
    from pathlib import Path
    path = next(Path(__file__).resolve().parents[2].joinpath("catalog", "actions").glob("*.json"))
    return json.loads(path.read_text())
