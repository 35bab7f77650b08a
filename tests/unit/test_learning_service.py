"""The learning service: expected vs measured assembled from the measurement rows, the verdict on the primary KPI,
the harm freeze (once, never over a person's lift), the null flag and the ramp it holds, and the rescoring of the
open backlog in batches from a cursor, skipping an opportunity changed meanwhile."""
import random
from datetime import timedelta

import pytest

from shared.domain import impact
from shared.domain import learning as calibration
from shared.domain.cohort import CONTROL, TREATED
from shared.domain.outcomes import Outcome
from shared.ports import ConcurrencyConflict
from shared.services import autonomy, calibrations, learning, policy_events, ramp, rescoring
from shared.services.ingest import ingest
from tests.factories import NOW, finding, memory_services, person, replace_action, validated

AP = ("accounts-payable", "invoice-missing-po", "ap.request-missing-fields")


def _srm(n, mismatch):
    return {"treated": n[0], "control": n[1], "expectedControlShare": 0.25, "chi2": 0.1,
            "pValue": 1e-5 if mismatch else 0.7, "mismatch": mismatch}


def row(difference=-2.0, low=-2.6, high=-1.4, n=(200, 60), better="lower", metric="cycle_time_days",
        expected=-3.0, acted=None, srm_mismatch=False, status="ok", action=AP[2], version=1,
        outcome_srm_mismatch=False):
    """A measurement row as impact.measure writes it (the contract of issue 21). `srm_mismatch`: the draws and the
    outcomes both mismatch; `outcome_srm_mismatch`: only the counts of cases with an outcome do."""
    out = {"processArea": AP[0], "deviationPattern": AP[1], "actionId": action, "actionVersion": version,
           "metric": metric, "better": better, "unit": "days", "cases": {"treated": n[0] + 5, "control": n[1] + 2},
           "treated": {"n": n[0], "mean": 7.0}, "control": {"n": n[1], "mean": 9.0}, "status": status,
           "expected": {"change": expected, "n": n[0], "unit": "days"} if expected is not None else None,
           "srm": _srm(n, srm_mismatch or outcome_srm_mismatch), "srmAssigned": _srm(n, srm_mismatch),
           "population": impact.ITT_POPULATION}
    if status != "ok":
        return {**out, "reason": "needs 30 cases with an outcome per cohort; control has 4"}
    return {**out, "difference": difference, "se": (high - low) / 3.92, "ci": {"low": low, "high": high,
            "level": 0.95}, "significant": low > 0 or high < 0, "acted": acted}


def report_of(*rows):
    keys = ("processArea", "deviationPattern", "actionId", "actionVersion")
    items = {}
    for r in rows:
        e = items.setdefault(tuple(r[k] for k in keys), {**{k: r[k] for k in keys}, "cases": r["cases"],
                                                         "metrics": []})
        e["metrics"].append({k: v for k, v in r.items() if k not in (*keys, "cases")})
    return {"items": list(items.values())}


@pytest.fixture
def svc():
    return memory_services()


def test_a_significant_effect_on_the_wrong_side_with_enough_cases_is_harmful(svc):
    policy = svc.policy.learning
    harmful = learning.judge(row(difference=1.5, low=0.9, high=2.1), policy)
    assert harmful["verdict"] == "harmful" and "+1.5 [0.9, 2.1]" in harmful["why"] and "200/60" in harmful["why"]
    few = learning.judge(row(difference=1.5, low=0.9, high=2.1, n=(40, 12)), policy)
    assert few["verdict"] == "not_enough_data" and few["side"] == "harmful"  # 12 < harmMinCases 30
    higher = learning.judge(row(difference=-0.2, low=-0.3, high=-0.1, better="higher", metric="sla_met"), policy)
    assert higher["verdict"] == "harmful"


def test_no_effect_is_null_only_after_the_policy_number_of_cases(svc):
    policy = svc.policy.learning
    assert learning.judge(row(difference=0.1, low=-0.4, high=0.6, n=(400, 200)), policy)["verdict"] == "null"
    early = learning.judge(row(difference=0.1, low=-0.4, high=0.6, n=(400, 199)), policy)
    assert early["verdict"] == "not_enough_data" and early["measured"] is True


def test_a_sample_ratio_mismatch_of_the_draws_makes_no_verdict_and_says_why(svc):
    v = learning.judge(row(difference=1.5, low=0.9, high=2.1, srm_mismatch=True), svc.policy.learning)
    assert v["verdict"] == "srm_mismatch" and "draws" in v["why"] and "p = 1e-05" in v["why"]


def test_an_outcome_count_mismatch_is_a_warning_and_a_harmful_effect_still_freezes(svc):
    v = learning.judge(row(difference=1.5, low=0.9, high=2.1, outcome_srm_mismatch=True), svc.policy.learning)
    assert v["verdict"] == "harmful" and v["warnings"][0].startswith("outcome counts mismatch")
    assert "warning: outcome counts mismatch" in v["why"]
    helpful = learning.judge(row(outcome_srm_mismatch=True), svc.policy.learning)
    assert helpful["verdict"] == "helpful" and helpful["warnings"]
    assert learning.judge(row(), svc.policy.learning)["warnings"] == []


def _slowing(rng, n=800, holdout=25.0, closed=0.6):
    """A harmful action: +2 d on the cases it ran on, and only `closed` of them closed (have an outcome) yet."""
    at = NOW - timedelta(days=10)
    arms, outcomes = [], []
    for i in range(n):
        cohort = CONTROL if rng.random() < holdout / 100 else TREATED
        arms.append(impact.Assignment(AP[0], AP[1], f"K-{i}", cohort, AP[2], 1, at,
                                      "verified" if cohort == TREATED else "triaged",
                                      ran=(AP[2], 1) if cohort == TREATED else None, holdout=holdout,
                                      expected={"cycle_time_days": (-3.0, "days")} if cohort == TREATED else {}))
        if cohort == CONTROL or rng.random() < closed:
            value = rng.gauss(9.0, 2.0) + (2.0 if cohort == TREATED else 0.0)
            outcomes.append(Outcome(f"o-{i}", AP[0], f"K-{i}", "cycle_time_days", value, at + timedelta(days=3)))
    return arms, outcomes


def test_an_action_that_slows_closure_is_still_frozen_over_the_outcome_mismatch_it_causes(svc, monkeypatch):
    """Fewer treated cases have an outcome (60% closed): the outcome counts mismatch the 25% draw, the draws do not."""
    rows = impact.measure(*_slowing(random.Random(2123)), svc.policy.measurement, weekly=False)
    [r] = [r for r in rows if r["metric"] == "cycle_time_days"]
    assert r["srm"]["mismatch"] and not r["srmAssigned"]["mismatch"]
    figures = learned(svc, monkeypatch, r)
    assert figures["frozen"] == [f"{AP[2]}@v1"] and AP[2] in autonomy.current(svc, fresh=True).frozenActions
    [v] = learning.stored(svc)["verdicts"]
    assert v["verdict"] == "harmful" and "warning: outcome counts mismatch" in v["why"]


def test_an_effect_measured_without_variance_is_not_significant(svc):
    """sla_met 0 on every treated case and 1 on every control one: se 0, so no interval and no verdict."""
    v = learning.judge(row(difference=-1.0, low=-1.0, high=-1.0, better="higher", metric="sla_met"),
                       svc.policy.learning)
    assert v["verdict"] == "not_enough_data" and "no variance measured (se 0)" in v["why"]
    [e] = learning.entries(report_of(row(difference=-1.0, low=-1.0, high=-1.0)), svc.policy)
    assert e["calibration"] is None


def test_with_a_margin_null_needs_the_interval_within_it_of_the_expected_change(svc):
    policy = svc.policy.learning.model_copy(update={"nullMargin": 0.25})  # of the expected −3 d: ±0.75 d
    tight = learning.judge(row(difference=0.1, low=-0.4, high=0.6, n=(400, 200)), policy)
    assert tight["verdict"] == "null" and "lies within ±0.75" in tight["why"]
    wide = learning.judge(row(difference=0.1, low=-0.9, high=1.1, n=(400, 200)), policy)
    assert wide["verdict"] == "not_enough_data" and "is not within ±0.75" in wide["why"]
    acted = {"difference": 0.2, "se": 0.5, "ci": {"low": -0.8, "high": 1.2, "level": 0.95}, "share": 0.5}
    diluted = learning.judge(row(difference=0.1, low=-0.4, high=0.6, n=(400, 200), acted=acted), policy)
    assert diluted["verdict"] == "not_enough_data" and "acted CI" in diluted["why"]
    nothing_expected = learning.judge(row(difference=0.1, low=-0.9, high=1.1, n=(400, 200), expected=None), policy)
    assert nothing_expected["verdict"] == "null"


def test_with_a_margin_a_helpful_action_measured_with_a_wide_interval_is_not_flagged_null(svc):
    """True −1 d (expected −1 d), sd 10 d, 200/200 cases: the CI is about ±2 d, never inside ±0.25 d. Not
    significant in most runs, so the old rule (no effect told apart from zero) called it null."""
    svc.policy = svc.policy.model_copy(update={"learning": svc.policy.learning.model_copy(
        update={"nullAfterCases": 150, "nullMargin": 0.25})})  # ~200 per cohort drawn: the count never holds it
    rng, verdicts = random.Random(2124), []
    for _ in range(40):
        arms, outcomes = _simulated(rng, -1.0, -1.0, n=400, holdout=50.0, acted_share=1.0, sd=10.0)
        rows = impact.measure(arms, outcomes, svc.policy.measurement, weekly=False)
        [e] = learning.entries(report_of(*rows), svc.policy)
        assert min(e["n"].values()) >= 150
        verdicts.append(e["verdict"])
    assert [v["verdict"] for v in verdicts].count("null") == 0
    unknown = [v for v in verdicts if v["verdict"] == "not_enough_data"]
    assert len(unknown) >= 20 and all("is not within ±0.25" in v["why"] for v in unknown)


def test_without_a_policy_direction_the_miners_expectation_says_which_way_is_better(svc):
    policy = svc.policy.learning
    assert learning.judge(row(better=None, expected=-3.0), policy)["verdict"] == "helpful"
    assert learning.judge(row(better=None, expected=+3.0), policy)["verdict"] == "harmful"
    assert learning.judge(row(better=None, expected=None), policy)["verdict"] == "not_enough_data"


def test_the_entry_measures_the_cases_acted_on_when_estimated_and_calibrates_against_the_expectation(svc):
    acted = {"difference": -2.5, "se": 0.4, "ci": {"low": -3.28, "high": -1.72, "level": 0.95}, "share": 0.8,
             "population": impact.ACTED_POPULATION}
    [e] = learning.entries(report_of(row(acted=acted)), svc.policy)
    assert e["measured"]["basis"] == "acted" and e["measured"]["difference"] == -2.5
    assert e["itt"]["difference"] == -2.0 and e["n"] == {"treated": 200, "control": 60} and e["primary"]
    want = calibration.calibrate(*AP, 1, "cycle_time_days", "days", -3.0, 200, -2.5, 0.4, 200, 60, 0.5, 2.0)
    assert e["calibration"] == want.to_dict()
    assert e["calibration"]["ratio"]["low"] < 2.5 / 3 < e["calibration"]["ratio"]["high"]
    [itt] = learning.entries(report_of(row()), svc.policy)
    assert itt["measured"]["basis"] == "itt" and itt["calibration"]["ratio"]["value"] == pytest.approx(2 / 3, abs=1e-4)
    [none] = learning.entries(report_of(row(expected=None)), svc.policy)
    assert none["calibration"] is None and none["measured"] is not None
    [short] = learning.entries(report_of(row(status="not_enough_data")), svc.policy)
    assert short["measured"] is None and short["verdict"]["verdict"] == "not_enough_data"
    [other] = learning.entries(report_of(row(metric="rework_count")), svc.policy)
    assert other["verdict"] is None and not other["primary"]


def _simulated(rng, true_effect, expected, n=300, holdout=25.0, acted_share=0.8, sd=2.0):
    """Assignments and outcomes with a known effect on the cases the action ran on (a share of the treated)."""
    at = NOW - timedelta(days=10)
    arms, outcomes = [], []
    for i in range(n):
        cohort = CONTROL if rng.random() < holdout / 100 else TREATED
        ran = cohort == TREATED and rng.random() < acted_share
        a = impact.Assignment(AP[0], AP[1], f"K-{i}", cohort, AP[2], 1, at, "verified" if ran else "triaged",
                              ran=(AP[2], 1) if ran else None, holdout=holdout,
                              expected={"cycle_time_days": (expected, "days")} if ran else {})
        arms.append(a)
        value = rng.gauss(9.0, sd) + (true_effect if ran else 0.0)
        outcomes.append(Outcome(f"o-{i}", AP[0], f"K-{i}", "cycle_time_days", value, at + timedelta(days=3)))
    return arms, outcomes


def test_the_assembled_ratio_interval_covers_the_true_ratio_in_seeded_experiments(svc):
    """The action saves 2 days on the cases it ran on (80% of the treated), the miners expected 3: true ratio 2/3.
    Measured on the cases acted on, not diluted by intention to treat (which would centre on 0.8 × 2/3)."""
    rng = random.Random(2121)
    runs, covered = 200, 0
    for _ in range(runs):
        arms, outcomes = _simulated(rng, -2.0, -3.0)
        rows = impact.measure(arms, outcomes, svc.policy.measurement, weekly=False)
        [e] = learning.entries(report_of(*rows), svc.policy)
        r = e["calibration"]["ratio"]
        covered += r["low"] <= 2 / 3 <= r["high"]
    assert 0.92 <= covered / runs <= 0.98


def opps(svc, n, prefix="R"):
    found = validated(*(finding(caseKey=f"{prefix}-{i}", attributes={"invoiceId": f"{prefix}-{i}",
                                                                    "vendorId": "V-1", "missingFields": ["poNumber"]})
                        for i in range(n)))
    return sorted(r.opportunity.id for r in ingest(svc, found, "cid").results)


def calibrated(svc, factor_ratio=0.5, se=0.05):
    """A calibration record for the AP action (−1.5 d measured vs −3.0 d expected), as the learn step writes it."""
    c = calibration.calibrate(*AP, 1, "cycle_time_days", "days", -3.0, 200, -3.0 * factor_ratio, se, 200, 60,
                              svc.policy.learning.priorSd, svc.policy.learning.maxFactor)
    items = [c.to_dict()]
    svc.coordination.put_state(calibrations.STATE, {"items": items, "at": NOW.isoformat()})
    calibrations.forget(svc)
    return items


def test_rescoring_goes_in_batches_from_a_cursor_and_finishes(svc):
    ids = opps(svc, 7)
    revisions = {o: svc.store.get(o).revision for o in ids}
    svc.policy = svc.policy.model_copy(update={"learning": svc.policy.learning.model_copy(update={"rescoreBatch": 3})})
    record = {}
    assert rescoring.enqueue(svc, record, calibrated(svc)) == 1
    first = rescoring.run(svc, record, "s1")
    assert first == {"rescored": 3, "skipped": 0, "pending": 1} and record["rescore"][0]["after"] == ids[2]
    assert [svc.store.get(o).scores.impact for o in ids[:4]] == pytest.approx([100.0, 100.0, 100.0, 200.0], rel=0.01)
    assert rescoring.run(svc, record, "s2")["rescored"] == 3
    assert rescoring.run(svc, record, "s3") == {"rescored": 1, "skipped": 0, "pending": 0}
    for o in ids:
        opp = svc.store.get(o)
        assert opp.scores.impact == pytest.approx(100.0, rel=0.01) and "× 0.50: ap.request-missing-fields v1" in \
            opp.rationale and opp.revision == revisions[o]  # not a step: messages in flight stay current
    assert rescoring.run(svc, record, "s4") == {"rescored": 0, "skipped": 0, "pending": 0}


def test_a_factor_that_moved_less_than_the_threshold_rescores_nothing(svc):
    opps(svc, 2)
    record = {"applied": {"|".join((*AP, "1")): {"cycle_time_days": 0.95}}}
    assert rescoring.enqueue(svc, record, calibrated(svc, factor_ratio=1.0)) == 0  # 0.95 → 1.0 < 0.1
    assert record["rescore"] == []


def test_an_opportunity_changed_meanwhile_is_skipped_and_rescored_next_sweep(svc, monkeypatch):
    ids = opps(svc, 3)
    record = {}
    rescoring.enqueue(svc, record, calibrated(svc))
    real = svc.store.save

    def changed_meanwhile(opp):
        if opp.id == ids[1]:
            raise ConcurrencyConflict(opp.id)
        return real(opp)

    monkeypatch.setattr(svc.store, "save", changed_meanwhile)
    assert rescoring.run(svc, record, "s1") == {"rescored": 2, "skipped": 1, "pending": 1}
    assert record["rescore"][0]["retry"] == [ids[1]]
    monkeypatch.setattr(svc.store, "save", real)
    assert rescoring.run(svc, record, "s2") == {"rescored": 1, "skipped": 0, "pending": 0}
    assert svc.store.get(ids[1]).scores.impact == pytest.approx(100.0, rel=0.01)


def test_only_open_opportunities_of_the_pattern_with_that_candidate_are_rescored(svc):
    ids = opps(svc, 2)
    other = validated(finding(processArea="accounts-payable", deviationPattern="missing-vendor-data",
                              caseKey="MV-1"))
    [elsewhere] = [r.opportunity.id for r in ingest(svc, other, "cid").results]
    record = {}
    rescoring.enqueue(svc, record, calibrated(svc))
    assert rescoring.run(svc, record, "s1")["rescored"] == 2
    assert svc.store.get(elsewhere).scores.impact == 200.0
    assert [svc.store.get(o).scores.impact for o in ids] == pytest.approx([100.0, 100.0], rel=0.01)


def learned(svc, monkeypatch, *rows):
    monkeypatch.setattr(learning, "kpis", lambda services, **kw: report_of(*rows))
    return learning.learn(svc, "sweep")


def escalations(svc):
    return [n for n in svc.notifier.sent if n[0] == "escalate" and "harm" in n[2]]


def test_a_harmful_version_is_frozen_once_with_one_escalation_and_a_policy_event(svc, monkeypatch):
    harmful = row(difference=1.5, low=0.9, high=2.1)
    figures = learned(svc, monkeypatch, harmful)
    assert figures["frozen"] == ["ap.request-missing-fields@v1"]
    state = autonomy.current(svc, fresh=True)
    assert state.frozenActions == [AP[2]] and state.reason.startswith("harm: ") and "+1.5 [0.9, 2.1]" in state.reason
    assert len(escalations(svc)) == 1
    assert svc.reference.incidents(10)[0].id == "harm-ap.request-missing-fields-v1"
    assert learned(svc, monkeypatch, harmful)["frozen"] == [] and len(escalations(svc)) == 1
    [freeze] = [e for e in policy_events.recent(svc) if e["kind"] == "freeze"]
    assert freeze["actionId"] == AP[2] and "+1.5 [0.9, 2.1]" in freeze["evidence"]


def test_a_freeze_a_person_lifted_is_not_put_back_for_the_same_version(svc, monkeypatch):
    harmful = row(difference=1.5, low=0.9, high=2.1)
    learned(svc, monkeypatch, harmful)
    autonomy.change(svc, {"freezeActions": [], "reason": "checked the flow, it is fine"},
                    person("ana@contoso.com", svc.policy.autonomyAdminRole))
    assert learned(svc, monkeypatch, harmful)["frozen"] == []
    assert autonomy.current(svc, fresh=True).frozenActions == [] and len(escalations(svc)) == 1
    assert learning.stored(svc)["froze"]["ap.request-missing-fields@v1"]["lifted"]
    assert any(e["kind"] == "freeze-lifted" for e in policy_events.recent(svc))
    replace_action(svc, AP[2], version=2)  # a new version is judged afresh
    assert learned(svc, monkeypatch, row(difference=1.5, low=0.9, high=2.1, version=2))["frozen"] == \
        ["ap.request-missing-fields@v2"]


def _throttled(*args, **kwargs):
    raise RuntimeError("store throttled")


def test_a_failing_rescore_does_not_resend_the_harm_escalation_every_sweep(svc, monkeypatch):
    monkeypatch.setattr(rescoring, "run", _throttled)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            learned(svc, monkeypatch, row(difference=1.5, low=0.9, high=2.1))
    assert len(escalations(svc)) == 1 and len([e for e in policy_events.recent(svc) if e["kind"] == "freeze"]) == 1
    assert learning.stored(svc)["froze"][f"{AP[2]}@v1"]["told"] is True


def test_a_persons_lift_stands_when_a_later_learn_step_failed(svc, monkeypatch):
    monkeypatch.setattr(rescoring, "run", _throttled)
    harmful = row(difference=1.5, low=0.9, high=2.1)
    with pytest.raises(RuntimeError):
        learned(svc, monkeypatch, harmful)
    autonomy.change(svc, {"freezeActions": [], "reason": "looked at it: fine"},
                    person("ana@contoso.com", svc.policy.autonomyAdminRole))
    for _ in range(2):
        with pytest.raises(RuntimeError):
            learned(svc, monkeypatch, harmful)
    assert autonomy.current(svc, fresh=True).frozenActions == [] and len(escalations(svc)) == 1
    lifted = learning.stored(svc)["froze"][f"{AP[2]}@v1"]
    assert lifted["lifted"] and lifted["liftedBy"] == policy_events.pseudonym("ana@contoso.com") != "learning"
    [event] = [e for e in policy_events.recent(svc) if e["kind"] == "freeze-lifted"]
    assert event["by"] == lifted["liftedBy"] and "+1.5 [0.9, 2.1]" in event["evidence"]


def test_a_harm_freeze_keeps_a_persons_unfreeze_that_landed_meanwhile(svc):
    """The person unfreezes leads.reassign between the learn step's read of autonomy and its freeze."""
    admin = person("ops@contoso.com", svc.policy.autonomyAdminRole)
    autonomy.change(svc, {"freezeActions": ["leads.reassign"], "reason": "drift"}, None, actor="drift-watch")
    put, raced = svc.coordination.put_state, []

    def racing(name, doc):
        put(name, doc)
        if name == learning.STATE and not raced:
            raced.append(autonomy.change(svc, {"freezeActions": [], "reason": "checked, fine"}, admin))

    svc.coordination.put_state = racing
    v = {"actionId": "leads.escalate", "actionVersion": 1, "why": "harmful: x", "processArea": "a",
         "deviationPattern": "p", "metric": "m", "verdict": "harmful"}
    assert learning._freeze(svc, {}, [v], "cid") == ["leads.escalate@v1"] and raced
    assert autonomy.current(svc, fresh=True).frozenActions == ["leads.escalate"]


def test_a_freeze_gone_after_an_agents_change_is_not_taken_for_a_persons_lift(svc, monkeypatch):
    """The autonomy record keeps only its latest change: while an agent's is the latest, an unfrozen action is not
    called lifted by a person (nor frozen again over a person who may have); a person's change settles it."""
    harmful = row(difference=1.5, low=0.9, high=2.1)
    learned(svc, monkeypatch, harmful)
    autonomy.change(svc, {"freezeActions": [], "reason": "stale list"}, None, actor="drift-watch")
    learned(svc, monkeypatch, harmful)
    assert not learning.stored(svc)["froze"][f"{AP[2]}@v1"].get("lifted")
    assert not any(e["kind"] == "freeze-lifted" for e in policy_events.recent(svc)) and len(escalations(svc)) == 1
    autonomy.change(svc, {"mode": "autonomous", "reason": "looked at the harm: keep it running"},
                    person("ana@contoso.com", svc.policy.autonomyAdminRole))
    learned(svc, monkeypatch, harmful)
    assert learning.stored(svc)["froze"][f"{AP[2]}@v1"]["lifted"]
    assert autonomy.current(svc, fresh=True).frozenActions == [] and len(escalations(svc)) == 1


def test_a_rescore_that_fails_midway_leaves_the_rest_of_its_batch_first_for_the_next_sweep(svc, monkeypatch):
    ids = opps(svc, 4)
    record = {}
    rescoring.enqueue(svc, record, calibrated(svc))
    real = svc.store.save

    def throttled_on_the_second(opp):
        if opp.id == ids[1]:
            raise RuntimeError("store throttled")
        return real(opp)

    monkeypatch.setattr(svc.store, "save", throttled_on_the_second)
    with pytest.raises(RuntimeError):
        rescoring.run(svc, record, "s1")
    assert record["rescore"][0]["retry"] == ids[1:] and record["rescore"][0]["rescored"] == 1
    monkeypatch.setattr(svc.store, "save", real)
    assert rescoring.run(svc, record, "s2") == {"rescored": 3, "skipped": 0, "pending": 0}
    assert [svc.store.get(o).scores.impact for o in ids] == pytest.approx([100.0] * 4, rel=0.01)


def test_an_older_version_found_harmful_does_not_freeze_the_version_in_use(svc, monkeypatch):
    replace_action(svc, AP[2], version=2)
    assert learned(svc, monkeypatch, row(difference=1.5, low=0.9, high=2.1, version=1))["frozen"] == []
    assert autonomy.current(svc, fresh=True).frozenActions == []


def test_a_null_version_is_flagged_once_and_its_ramp_does_not_widen(svc, monkeypatch):
    action = replace_action(svc, AP[2], ramp=[10, 100])
    null = row(difference=0.1, low=-0.4, high=0.6, n=(400, 200))
    assert learned(svc, monkeypatch, null)["flagged"] == [f"{AP[2]}@v1|{AP[0]}|{AP[1]}"]
    assert learned(svc, monkeypatch, null)["flagged"] == []
    assert learning.flags(svc)[(AP[2], 1)]["verdict"] == "null"
    assert "no effect told apart from zero" in learning.ramp_hold(svc, action)
    assert learned(svc, monkeypatch, row())["flagged"] == []  # helpful now
    assert learning.ramp_hold(svc, action) is None


def test_ramp_needs_a_measured_effect_unless_the_policy_says_otherwise(svc, monkeypatch):
    action = replace_action(svc, AP[2], ramp=[10, 100])
    learned(svc, monkeypatch, row(status="not_enough_data"))
    assert "no measured effect on its primary KPI" in learning.ramp_hold(svc, action)
    svc.policy = svc.policy.model_copy(update={"learning": svc.policy.learning.model_copy(
        update={"rampNeedsMeasurement": False})})
    assert learning.ramp_hold(svc, action) is None
    learned(svc, monkeypatch, row(difference=1.5, low=0.9, high=2.1, n=(40, 12)))  # harmful side, too few to freeze
    assert "harmful direction" in learning.ramp_hold(svc, action)
    assert ramp.promote(svc) == []


def test_by_default_an_effect_not_told_apart_from_zero_after_enough_cases_is_null_however_wide(svc):
    """The issue's rule, the safe side: the wide interval above is null without a margin, and its ramp stops."""
    wide = learning.judge(row(difference=0.1, low=-0.9, high=1.1, n=(400, 200)), svc.policy.learning)
    assert svc.policy.learning.nullMargin is None and wide["verdict"] == "null"
