"""Impact per action version (intention to treat, the effect on the cases the action ran on, what ran, what was
expected, the sample-ratio check) and the outcomes edge: pure functions, no store; scipy and numpy as references."""
import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from scipy import stats

from shared.domain import impact
from shared.domain.errors import InvalidInput
from shared.domain.impact import Assignment
from shared.domain.outcomes import Outcome, outcome_id
from shared.domain.policy import Measurement
from shared.ingest.outcomes import parse_outcomes

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)  # a Monday: ISO week 2026-W45
POLICY = Measurement(minSamples=5)


def arm(case: str, cohort: str, status: str = "verified", pattern: str = "invoice-missing-po",
        action: str = "ap.request-missing-fields", at: datetime = T0) -> Assignment:
    return Assignment("accounts-payable", pattern, case, cohort, action, 1, at, status)


def obs(case: str, value: float, when: datetime = T0 + timedelta(days=3), metric: str = "cycle_time_days",
        area: str = "accounts-payable") -> Outcome:
    return Outcome(outcome_id(area, case, metric, when), area, case, metric, value, when)


def cohorts(n_t: int, n_c: int, effect: float, seed: int = 2):
    rng = random.Random(seed)
    arms = [arm(f"T{i}", "treated") for i in range(n_t)] + [arm(f"C{i}", "control", "control") for i in range(n_c)]
    outs = [obs(a.caseKey, rng.gauss(10, 2) + (effect if a.cohort == "treated" else 0)) for a in arms]
    return arms, outs


def test_treated_vs_control_difference_and_ci_per_action_version():
    arms, outs = cohorts(120, 40, -2.0)
    [row] = impact.measure(arms, outs, POLICY)
    assert (row["actionId"], row["actionVersion"], row["metric"]) == ("ap.request-missing-fields", 1, "cycle_time_days")
    assert row["treated"]["n"] == 120 and row["control"]["n"] == 40
    assert row["ci"]["low"] < -2.0 < row["ci"]["high"] and row["ci"]["high"] < 0
    assert row["verdict"] == "better" and row["significant"] and row["pValue"] < 0.001
    assert row["difference"] == pytest.approx(row["treated"]["mean"] - row["control"]["mean"], abs=1e-3)


def test_below_the_minimum_samples_the_report_says_not_enough_data():
    arms, outs = cohorts(50, 3, -2.0)
    [row] = impact.measure(arms, outs, POLICY)
    assert row["status"] == "not_enough_data" and "control has 3" in row["reason"]
    assert "ci" not in row and row["control"]["n"] == 3


def test_every_case_counts_in_the_cohort_it_was_drawn_into_even_when_a_person_rejected_it():
    arms, outs = cohorts(40, 40, 0.0)
    arms += [arm("R1", "treated", "rejected")]
    outs += [obs("R1", 30.0)]
    [row] = impact.measure(arms, outs, POLICY)
    assert row["treated"]["n"] == 41 and row["actedShare"] == pytest.approx(40 / 41, abs=1e-4)


def test_observations_before_assignment_are_the_baseline_and_the_latest_after_is_the_outcome():
    arms = [arm(f"T{i}", "treated") for i in range(5)] + [arm(f"C{i}", "control", "control") for i in range(5)]
    outs = [obs(a.caseKey, 20.0, T0 - timedelta(days=1)) for a in arms]
    outs += [obs(a.caseKey, 99.0, T0 + timedelta(days=1)) for a in arms]
    outs += [obs(a.caseKey, 8.0 if a.cohort == "treated" else 12.0, T0 + timedelta(days=9)) for a in arms]
    [row] = impact.measure(arms, outs, POLICY)
    assert row["baseline"]["treated"] == {"n": 5, "mean": 20.0} and row["baseline"]["control"]["n"] == 5
    assert row["treated"]["mean"] == 8.0 and row["control"]["mean"] == 12.0 and row["difference"] == -4.0


def test_weekly_slices_follow_the_iso_week_of_the_observation():
    arms, outs = cohorts(30, 30, -1.0)
    late = [obs(a.caseKey, 5.0, T0 + timedelta(days=8)) for a in arms[:10]]
    [row] = impact.measure(arms, outs + late, POLICY)
    weeks = {w["week"]: w for w in row["weeks"]}
    assert set(weeks) == {"2026-W45", "2026-W46"}
    assert weeks["2026-W46"]["treated"]["n"] == 10 and weeks["2026-W46"]["status"] == "not_enough_data"


def test_an_outcome_counts_for_each_experiment_its_case_is_in_and_for_no_other_case():
    arms, outs = cohorts(10, 10, 0.0)
    arms += [arm("T0", "treated", pattern="missing-vendor-data", action="ap.cancel-field-request")]
    outs += [obs("T0", 1.0, area="lead-management")]  # same key, another process area: another case
    rows = impact.measure(arms, outs, POLICY)
    second = next(r for r in rows if r["actionId"] == "ap.cancel-field-request")
    assert second["treated"]["n"] == 1
    first = next(r for r in rows if r["actionId"] == "ap.request-missing-fields")
    assert first["treated"]["n"] == 10


def test_a_higher_is_better_metric_that_fell_is_worse():
    rng = random.Random(3)
    arms = [arm(f"T{i}", "treated") for i in range(200)] + [arm(f"C{i}", "control", "control") for i in range(200)]
    outs = [obs(a.caseKey, float(rng.random() < (0.5 if a.cohort == "treated" else 0.8)), metric="sla_met")
            for a in arms]
    [row] = impact.measure(arms, outs, POLICY)
    assert row["method"] == "welch" and row["verdict"] == "worse" and row["better"] == "higher"


def test_outcomes_accept_one_or_a_batch_with_numbers_as_strings_booleans_and_epochs():
    one = parse_outcomes(b'{"processArea":"ap","caseKey":"INV-1","metric":"sla_met","value":true,'
                         b'"observedAt":"2026-11-20T10:00:00Z"}')
    many = parse_outcomes(b'[{"processArea":"ap","caseKey":"INV-1","metric":"cycle_time_days","value":"3.5",'
                          b'"observedAt":1763632800000}]')
    assert one[0].value == 1.0 and many[0].value == 3.5
    assert many[0].observedAt == datetime(2025, 11, 20, 10, 0, tzinfo=timezone.utc)


def test_the_same_observation_sent_twice_has_the_same_id():
    body = b'{"processArea":"ap","caseKey":"INV-1","metric":"rework_count","value":2,"observedAt":"2026-11-20T10:00:00Z"}'
    assert parse_outcomes(body)[0].id == parse_outcomes(body)[0].id


def test_bad_outcomes_are_refused_naming_every_field_and_index():
    with pytest.raises(InvalidInput) as err:
        parse_outcomes(b'[{"processArea":"ap","caseKey":"A","metric":"Cycle Time","value":"x","observedAt":"soon"},'
                       b'{"processArea":"ap","caseKey":" ","metric":"m","value":1,"observedAt":1}]')
    pointers = {e.pointer for e in err.value.errors}
    assert {"/0/metric", "/0/value", "/0/observedAt", "/1/caseKey"} <= pointers
    assert err.value.extra["invalidIndexes"] == [0, 1]
    with pytest.raises(InvalidInput):
        parse_outcomes(b'{"processArea":"ap","caseKey":"A","metric":"m","value":1e999,"observedAt":1}')


# --- Which population each figure is about, and what actually ran ------------------------------------------------

RAN = ("ap.request-missing-fields", 1)
OTHER = ("ap.cancel-field-request", 1)


def drawn(case: str, cohort: str, ran: tuple[str, int] | None = None, status: str | None = None,
          holdout: float = 25.0, expected: dict | None = None, touched: bool = False) -> Assignment:
    """A case drawn for RAN's action version; `ran` is the action version the agent ran on it (None: nothing)."""
    status = status or ("verified" if ran else "rejected" if cohort == "treated" else "control")
    return Assignment("accounts-payable", "invoice-missing-po", case, cohort, *RAN, T0, status, ran, holdout=holdout,
                      expected=expected or {}, touched=touched)


def compliance(seed: int, n_t: int, n_c: int, share: float = 0.6, effect: float = -2.0, sd: float = 2.0):
    """Treated cases acted on with probability `share`, `effect` on each acted case; (arms, outcomes, y, d, z)."""
    rng = random.Random(seed)
    arms, outs, y, d, z = [], [], [], [], []
    for i in range(n_t + n_c):
        treated = i < n_t
        ran = treated and rng.random() < share
        a = drawn(f"K{i}", "treated" if treated else "control", RAN if ran else None,
                  holdout=100 * n_c / (n_t + n_c))
        value = rng.gauss(10, sd) + (effect if ran else 0.0)
        arms.append(a)
        outs.append(obs(a.caseKey, value))
        y.append(value), d.append(float(ran)), z.append(float(treated))
    return arms, outs, y, d, z


def test_the_effect_on_cases_the_action_ran_on_is_the_two_stage_least_squares_estimate():
    for seed in range(5):
        arms, outs, y, d, z = compliance(seed, 250, 120)
        [row] = impact.measure(arms, outs, POLICY, weekly=False)
        # Reference: 2SLS of the outcome on "acted", instrumented by the draw, with the HC1 sandwich variance.
        y, d, z = map(np.asarray, (y, d, z))
        n = len(y)
        Z, X = np.column_stack([np.ones(n), z]), np.column_stack([np.ones(n), d])
        beta = np.linalg.solve(Z.T @ X, Z.T @ y)
        e = y - X @ beta
        bread = np.linalg.inv(Z.T @ X)
        cov = bread @ ((Z * (e ** 2)[:, None]).T @ Z) @ bread.T * n / (n - 2)
        acted = row["acted"]
        assert acted["difference"] == pytest.approx(beta[1], abs=1e-4)
        assert acted["se"] == pytest.approx(np.sqrt(cov[1, 1]), rel=0.01)
        assert acted["share"] == pytest.approx(d[z == 1].mean(), abs=1e-4)
        assert acted["population"].startswith("cases the action ran on")
        assert row["population"].startswith("every case drawn") and row["method"] == "welch"


def test_the_acted_interval_covers_the_true_effect_in_93_to_97_percent_of_400_seeded_runs():
    covered = 0
    for seed in range(400):
        arms, outs, *_ = compliance(1000 + seed, 200, 200)
        [row] = impact.measure(arms, outs, POLICY, weekly=False)
        ci = row["acted"]["ci"]
        covered += ci["low"] <= -2.0 <= ci["high"]
    assert 0.93 <= covered / 400 <= 0.97, covered


def test_the_itt_standard_error_is_welchs_and_a_bootstraps_is_its_interval_over_3_92():
    arms, outs, y, _, z = compliance(4, 120, 60)
    [row] = impact.measure(arms, outs, POLICY, weekly=False)
    treated, control = [v for v, t in zip(y, z) if t], [v for v, t in zip(y, z) if not t]
    t = stats.ttest_ind(treated, control, equal_var=False).statistic
    assert row["se"] == pytest.approx(row["difference"] / t, rel=1e-3)
    rng = random.Random(5)
    outs = [obs(a.caseKey, rng.expovariate(0.1) - (2.0 if a.ran else 0.0)) for a in arms]
    [row] = impact.measure(arms, outs, POLICY, weekly=False)
    assert row["method"] == "bootstrap"
    assert row["se"] == pytest.approx((row["ci"]["high"] - row["ci"]["low"]) / 3.92, abs=1e-3)


def test_outcomes_are_credited_to_the_action_that_ran_and_control_and_unacted_cases_to_no_action():
    arms = ([drawn(f"A{i}", "treated", RAN) for i in range(6)] + [drawn(f"B{i}", "treated", OTHER) for i in range(3)]
            + [drawn(f"N{i}", "treated") for i in range(3)] + [drawn(f"C{i}", "control") for i in range(6)])
    value = {"A": 4.0, "B": 7.0, "N": 10.0, "C": 10.0}
    [row] = impact.measure(arms, [obs(a.caseKey, value[a.caseKey[0]]) for a in arms], POLICY, weekly=False)
    assert row["attribution"] == [
        {"cohort": "treated", "actionId": "ap.cancel-field-request", "actionVersion": 1, "n": 3, "mean": 7.0},
        {"cohort": "treated", "actionId": "ap.request-missing-fields", "actionVersion": 1, "n": 6, "mean": 4.0},
        {"cohort": "treated", "actionId": None, "actionVersion": None, "n": 3, "mean": 10.0},
        {"cohort": "control", "actionId": None, "actionVersion": None, "n": 6, "mean": 10.0}]
    # Every treated case any action ran on counts in actedShare; another action on 3 of 12 (25% > 5%) leaves the
    # effect of the arm's own action unidentified.
    assert row["actedShare"] == 0.75 and row["acted"] is None
    assert row["actedWhy"].startswith("another action ran on 25%")


def test_no_effect_on_acted_cases_is_claimed_when_another_action_ran_on_many_treated_cases():
    # 200 cases the arm's action ran on (true effect −1), 200 where another action ran (−3), 200 control: ITT ÷ the
    # share would credit the other action's −3 to the arm (−4.0); the exclusion restriction fails, so no estimate.
    rng = random.Random(21)
    arms = ([drawn(f"A{i}", "treated", RAN) for i in range(200)]
            + [drawn(f"B{i}", "treated", OTHER) for i in range(200)] + [drawn(f"C{i}", "control") for i in range(200)])
    effect = {"A": -1.0, "B": -3.0, "C": 0.0}
    outs = [obs(a.caseKey, rng.gauss(10, 2) + effect[a.caseKey[0]]) for a in arms]
    [row] = impact.measure(arms, outs, POLICY, weekly=False)
    assert row["status"] == "ok" and row["acted"] is None
    assert row["actedWhy"] == ("another action ran on 50% of treated cases: the effect of this action alone is "
                               "not identified")
    assert row["difference"] == pytest.approx(-2.0, abs=0.5)  # intention to treat still reported, as what it is
    # A few (≤ 5%) leave the estimate: 10 of 210 treated cases is under the bar.
    few = [a for a in arms if not a.caseKey.startswith("B")] + [drawn(f"B{i}", "treated", OTHER) for i in range(10)]
    [row] = impact.measure(few, outs, POLICY, weekly=False)
    assert row["acted"] is not None and row["acted"]["ci"]["low"] <= -1.0 <= row["acted"]["ci"]["high"]
    assert "actedWhy" not in row


def test_expected_is_the_miners_mean_predicted_change_over_the_cases_the_arms_action_ran_on():
    arms = ([drawn(f"A{i}", "treated", RAN, expected={"cycle_time_days": (-3.0 - i, "days")}) for i in range(4)]
            + [drawn("A9", "treated", RAN), drawn("B0", "treated", OTHER, expected={"cycle_time_days": (-50.0, "d")})]
            + [drawn(f"C{i}", "control", expected={"cycle_time_days": (-50.0, "d")}) for i in range(5)])
    rows = impact.measure(arms, [obs(a.caseKey, 5.0) for a in arms], POLICY, weekly=False)
    assert rows[0]["expected"] == {"change": -4.5, "n": 4, "unit": "days"}
    none = [drawn("X", "treated", RAN), drawn("Y", "control")]
    assert impact.measure(none, [obs(a.caseKey, 1.0) for a in none], POLICY)[0]["expected"] is None


def test_the_sample_ratio_check_compares_cohorts_with_the_share_they_were_drawn_with():
    arms = [drawn(f"T{i}", "treated", RAN) for i in range(150)] + [drawn(f"C{i}", "control") for i in range(50)]
    # The feed lost most control outcomes: the cases with an outcome mismatch, the cases assigned do not.
    outs = [obs(a.caseKey, 5.0) for a in arms if a.cohort == "treated" or int(a.caseKey[1:]) < 20]
    [row] = impact.measure(arms, outs, POLICY, weekly=False)
    assert row["srmAssigned"]["mismatch"] is False and row["srmAssigned"]["pValue"] == 1.0
    srm = row["srm"]
    reference = stats.chisquare([20, 150], [170 * 0.25, 170 * 0.75])
    assert (srm["treated"], srm["control"], srm["expectedControlShare"]) == (150, 20, 0.25)
    assert srm["mismatch"] is True and srm["pValue"] == pytest.approx(reference.pvalue, abs=1e-6)


def test_below_the_minimum_there_is_no_effect_on_acted_cases_and_no_standard_error():
    arms, outs = cohorts(50, 3, -2.0)
    [row] = impact.measure(arms, outs, POLICY)
    assert row["acted"] is None and "se" not in row and row["srm"] is None  # these arms carry no holdout


def test_volumes_count_cases_the_arms_action_ran_on_and_those_no_person_touched():
    arms = ([drawn(f"A{i}", "treated", RAN) for i in range(5)] + [drawn("P", "treated", RAN, touched=True)]
            + [drawn("X", "treated", RAN, status="executed"), drawn("O", "treated", OTHER), drawn("N", "treated")]
            + [drawn(f"C{i}", "control") for i in range(3)]
            + [replace(drawn("L", "treated", RAN, status="closed"), closedFrom="verified", at=T0 + timedelta(days=9))])
    v = impact.volumes(arms)[("accounts-payable", "invoice-missing-po", *RAN)]
    assert (v.treated, v.control, v.acted, v.deflected) == (10, 3, 8, 6)
    assert (v.first, v.last) == (T0, T0 + timedelta(days=9))


# --- The arm triage draws: the action the deterministic planner would plan --------------------------------------

def with_quick_reassign(svc):
    """The repo catalog plus leads.quick on leads.reassign's patterns: a contract a lead's id and region fill whole (the
    planner's pick, coverage 1.0 against 0.8) but more complex (scoring's top candidate stays leads.reassign)."""
    from shared.domain.catalog import Action, Catalog

    base = svc.catalog.actions["leads.reassign"].model_dump(mode="json")
    contract = {**base["dataContract"], "properties": {k: base["dataContract"]["properties"][k]
                                                       for k in ("leadId", "region")}}
    contract.pop("x-approvalThresholds", None)
    quick = Action.model_validate({**base, "id": "leads.quick", "complexity": 0.9, "holdoutPercent": 40.0,
                                   "dataContract": contract})
    svc.catalog = Catalog([*svc.catalog.versions.values(), quick], svc.catalog.environment)


def test_the_arm_is_the_action_the_planner_would_plan_for_control_and_treated_cases_alike():
    import json

    from shared.services import pipeline, triage
    from shared.services.ingest import ingest
    from tests.factories import finding, memory_services, validated

    svc = memory_services()
    with_quick_reassign(svc)
    leads = [finding(processArea="lead-management", deviationPattern="lead-unassigned", caseKey=f"LM-{i}",
                     kpiImpact=None, attributes={"leadId": f"LM-{i}", "region": "EMEA"}) for i in range(12)]
    ids = [r.opportunity.id for r in ingest(svc, validated(*leads), "cid").results]
    for m in [m for m in svc.bus.messages if m.body["type"] == "triage"]:
        pipeline.handle(svc, "triage", json.dumps(m.body).encode())
    opps = [svc.store.get(i) for i in ids]
    assert {o.scores.actionId for o in opps} == {"leads.reassign"}  # what the old arm would have credited
    assert {(o.arm["actionId"], o.arm["version"], o.arm["holdout"]) for o in opps} == {("leads.quick", 1, 40.0)}
    assert {o.cohort for o in opps} == {"control", "treated"}  # drawn at the arm's 40%, the same rule for both
    # A case drawn before: its arm stays as it was, whatever the catalog says now.
    old = {"actionId": "leads.reassign", "version": 1, "at": T0.isoformat()}
    kept = replace(opps[0], arm=old)
    assert triage.arm_of(svc, kept, svc.catalog.candidates("lead-management", "lead-unassigned")) is old


def test_assignments_read_from_the_store_carry_the_drawn_share_the_expectation_and_whether_a_person_touched_it():
    import json

    from shared.domain.status import Status
    from shared.services import measure, pipeline
    from shared.services.ingest import ingest
    from tests.factories import finding, memory_services, validated

    svc = memory_services()
    expects = {"metric": "cycle_time_days", "estimate": 3, "unit": "days"}
    ids = [r.opportunity.id for r in ingest(svc, validated(*(finding(kpiImpact=expects) for _ in range(3))),
                                            "cid").results]
    for m in [m for m in svc.bus.messages if m.body["type"] == "triage"]:
        pipeline.handle(svc, "triage", json.dumps(m.body).encode())
    plan = {"actionId": "ap.request-missing-fields", "actionVersion": 1}
    hop = {"at": T0.isoformat(), "actor": "triage", "reason": ""}
    paths = [["triaged", "planned", "executing", "executed", "verified"],
             ["triaged", "planned", "awaiting_approval", "approved", "executing", "executed", "verified"],
             ["triaged", "planned", "executing", "executed", "verified"]]
    for oid, path in zip(ids, paths):
        opp = svc.store.get(oid)
        arm = {k: v for k, v in opp.arm.items() if k != "holdout"} if path is paths[2] else opp.arm
        svc.store.commit(replace(opp, status=Status.verified, plan=plan, arm=arm,
                                 history=[*opp.history, *({**hop, "to": s} for s in path[1:])]))
    svc.catalog.versions[("ap.request-missing-fields", 1)].holdoutPercent = 15.0
    got = {a.caseKey: a for a in measure.assignments(svc)}
    first, approved, old = (got[svc.store.get(i).caseKey] for i in ids)
    assert first.deflected and not approved.deflected and approved.touched and old.deflected
    assert first.expected == {"cycle_time_days": (-3.0, "days")} and first.arm_ran
    # Drawn with the arm's share (0 in these service tests); an arm from before it recorded one: its action's now.
    assert (first.holdout, old.holdout) == (0.0, 15.0)
