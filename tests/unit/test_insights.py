"""The weekly review from the in-memory store: failure reasons, rollbacks, card feedback, work left to people."""
from dataclasses import replace
from datetime import timedelta

from shared.domain.approvals import Approval
from shared.domain.execution import FAILED, SUCCEEDED, new_execution
from shared.domain.status import Status
from shared.services.ingest import ingest
from shared.services.insights import weekly_review
from tests.factories import NOW, finding, memory_services, validated


def _cases(svc, n, **overrides):
    report = ingest(svc, validated(*(finding(**overrides) for _ in range(n))), "cid")
    return [svc.store.get(r.opportunity.id) for r in report.results]


def _executed(svc, opp, status, message=None, kind="action", compensates=None, action="ap.request-missing-fields"):
    x = new_execution(opp.id, action, 1, {"n": message or status, "k": kind}, NOW, "cid",
                      {"method": "deterministic"}, kind, compensates)
    x.status, x.message = status, message
    svc.store.commit(svc.store.get(opp.id), [x])
    return x


def test_failures_group_by_reason_with_ids_and_numbers_blanked():
    svc = memory_services()
    a, b, c = _cases(svc, 3)
    _executed(svc, a, FAILED, "ERP answered 500 for INV-00012")
    _executed(svc, b, FAILED, "ERP answered 500 for INV-00877")
    _executed(svc, c, SUCCEEDED)
    [reason] = weekly_review(svc)["failureReasons"]
    assert reason["count"] == 2 and reason["actionId"] == "ap.request-missing-fields"
    assert reason["promptVersion"] == "deterministic" and "INV" not in reason["reason"]


def test_rollbacks_are_flagged_against_the_action_version_that_was_rolled_back():
    svc = memory_services()
    [a] = _cases(svc, 1)
    done = _executed(svc, a, SUCCEEDED)
    _executed(svc, a, SUCCEEDED, kind="compensation", compensates=done.id, action="ap.cancel-field-request")
    [flag] = weekly_review(svc)["watchdogFlags"]
    assert (flag["actionId"], flag["actionVersion"], flag["compensations"]) == ("ap.request-missing-fields", 1, 1)


def test_card_feedback_scores_count_helpful_answers_per_action_version():
    svc = memory_services()
    cases = _cases(svc, 3)
    for opp, helpful in zip(cases, (True, True, False), strict=True):
        approval = Approval(f"{opp.id}-a1", opp.id, "approve", "ap.post-gl-adjustment", 1, "AP.Approver", "h",
                            NOW, NOW + timedelta(hours=24), "cid", "approved", "ana", NOW, None, None, helpful)
        svc.store.commit(svc.store.get(opp.id), approvals=[approval])
    [score] = weekly_review(svc)["cardFeedback"]
    assert (score["helpful"], score["notHelpful"], score["score"]) == (2, 1, 0.667)


def test_patterns_people_handle_most_come_first_and_gaps_need_volume():
    svc = memory_services()
    for opp in _cases(svc, 4, deviationPattern="missing-vendor-data"):
        svc.store.commit(replace(svc.store.get(opp.id), status=Status.needs_review))
    _cases(svc, 12, processArea="procurement", deviationPattern="maverick-buying")
    _cases(svc, 3, processArea="procurement", deviationPattern="split-orders")
    review = weekly_review(svc)
    assert review["sentToPeople"][0]["deviationPattern"] == "missing-vendor-data"
    assert review["sentToPeople"][0]["waitingOnPeople"] == 4
    assert [g["deviationPattern"] for g in review["catalogGaps"]] == ["maverick-buying"]  # 3 cases: below 10


def test_cases_people_closed_after_a_failed_flow_are_not_counted_as_handled_by_the_agent():
    svc = memory_services()
    waiting, failed, verified = _cases(svc, 3, deviationPattern="missing-vendor-data")
    svc.store.commit(replace(svc.store.get(waiting.id), status=Status.needs_review))
    for opp, before in ((failed, "failed"), (verified, "verified")):
        svc.store.commit(replace(svc.store.get(opp.id), status=Status.closed, plan={"closedFrom": before}))
    [group] = weekly_review(svc)["sentToPeople"]
    assert (group["waitingOnPeople"], group["handledByAgent"], group["cases"]) == (1, 1, 3)


class Reading:
    """The store, recording the fields each scan asked for and the ids read whole."""

    def __init__(self, store):
        self._store, self.fields, self.read = store, [], []

    def scan(self, where, fields):
        self.fields.append(list(fields))
        return self._store.scan(where, fields)

    def get_many(self, ids):
        self.read += ids
        return self._store.get_many(ids)

    def __getattr__(self, name):
        return getattr(self._store, name)


def _closed(svc, opp, plan):
    svc.store.commit(replace(svc.store.get(opp.id), status=Status.closed, plan=plan))


def test_the_weekly_review_tells_acted_on_closed_cases_without_reading_any_plan():
    svc = memory_services()
    waiting, failed, verified, unplanned = _cases(svc, 4, deviationPattern="missing-vendor-data")
    svc.store.commit(replace(svc.store.get(waiting.id), status=Status.needs_review))
    _closed(svc, failed, {"actionId": "a", "actionVersion": 1, "closedFrom": "failed"})
    _closed(svc, verified, {"actionId": "a", "actionVersion": 1, "closedFrom": "verified"})
    _closed(svc, unplanned, None)  # closed from a review: no plan at all
    svc.store = store = Reading(svc.store)
    [group] = weekly_review(svc)["sentToPeople"]
    assert (group["waitingOnPeople"], group["handledByAgent"], group["cases"]) == (1, 1, 4)
    [fields] = [f for f in store.fields if "closedFrom" in f]
    assert "plan" not in fields and store.read == []


def test_cases_closed_before_closedFrom_was_a_property_of_its_own_still_count_by_their_plan():
    svc = memory_services()
    waiting, failed, verified, new = _cases(svc, 4, deviationPattern="missing-vendor-data")
    svc.store.commit(replace(svc.store.get(waiting.id), status=Status.needs_review))
    for opp, before in ((failed, "failed"), (verified, "verified"), (new, "compensated")):
        _closed(svc, opp, {"actionId": "a", "actionVersion": 1, "closedFrom": before})
    for opp in (failed, verified):  # as written before the property existed: the plan alone says
        del svc.store._rows[opp.id][0]["closedFrom"]
    svc.store = store = Reading(svc.store)
    [group] = weekly_review(svc)["sentToPeople"]
    assert (group["waitingOnPeople"], group["handledByAgent"], group["cases"]) == (1, 2, 4)
    assert sorted(store.read) == sorted([failed.id, verified.id])  # only the old rows are read whole


def test_weak_action_versions_are_the_learning_verdicts_so_the_review_never_contradicts_its_learning_flags(
        monkeypatch):
    from shared.services import insights, learning
    from tests.unit.test_learning_service import report_of, row

    svc = memory_services()
    harmful = {**row(difference=1.5, low=0.9, high=2.1), "verdict": "worse"}
    # Worse on the primary KPI, but the cohorts are not the drawn shares: no verdict, so not weak.
    mismatched = {**row(difference=1.5, low=0.9, high=2.1, srm_mismatch=True, version=2), "verdict": "worse"}
    # Worse on a KPI that is not the action's primary one: the learn step does not judge it.
    other = {**row(difference=0.2, low=0.1, high=0.3, metric="touches", version=3), "verdict": "worse"}
    null = {**row(difference=0.05, low=-0.2, high=0.3, n=(400, 200), version=4), "verdict": "no_detectable_effect"}
    report = report_of(harmful, mismatched, other, null)
    for module in (learning, insights):
        monkeypatch.setattr(module, "kpis", lambda services, **kw: {**report, "recurrence": []})
    assert weekly_review(svc)["weakActionVersions"] == []  # nothing judged yet: nothing weak
    learning.learn(svc, "sweep")
    review = weekly_review(svc)
    weak, flat = review["weakActionVersions"], review["learningFlags"]
    assert [(w["actionId"], w["actionVersion"], w["metric"], w["verdict"]) for w in weak] == \
        [("ap.request-missing-fields", 1, "cycle_time_days", "harmful"),
         ("ap.request-missing-fields", 4, "cycle_time_days", "null")]
    assert weak[0]["suggestion"] == "retire or roll back: it makes the KPI worse"
    assert "+1.5 [0.9, 2.1]" in weak[0]["why"]
    assert weak[1]["suggestion"] == "rework or retire: no effect told apart from zero"
    assert [(f["actionId"], f["actionVersion"], f["verdict"]) for f in flat] == \
        [(w["actionId"], w["actionVersion"], w["verdict"]) for w in weak]
