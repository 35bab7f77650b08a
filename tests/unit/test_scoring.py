"""Priority = (Impact × Feasibility) ÷ (1 + Risk), and the rationale that explains it."""
import pytest

from shared.domain.catalog import Action, Catalog
from shared.domain.policy import ScoringPolicy
from shared.domain.scoring import score


def action(**kw):
    base = dict(id="ap.fix", version=1, name="Fix", matches={"processArea": "AP", "deviationPatterns": ["late"]},
                dataContract={"required": ["a", "b", "c", "d"]}, flow={"setting": "FLOW_FIX"}, riskTier="low",
                complexity=0.2)
    base.update(kw)
    return Action.model_validate(base)


POLICY = ScoringPolicy()


def test_priority_multiplies_impact_by_feasibility_and_divides_by_one_plus_risk():
    catalog = Catalog([action(riskTier="medium")])
    scores = score("AP", "late", {"a": 1, "b": 2, "c": 3}, 1000.0, None, [], catalog, POLICY)
    feasibility = 3 / 4 * (1 - 0.2)
    risk = 1.0 + 1.0 * 1000 / 100000  # medium tier + blast radius
    assert scores.feasibility == pytest.approx(feasibility, abs=1e-4)
    assert scores.risk == pytest.approx(risk, abs=1e-4)
    assert scores.priority == pytest.approx(1000 * feasibility / (1 + risk), abs=0.01)
    assert scores.actionId == "ap.fix"


def test_rationale_shows_every_term_of_the_formula():
    scores = score("AP", "late", {"a": 1, "b": 1, "c": 1, "d": 1}, 500.0, None, ["sox"], Catalog([action()]),
                   POLICY)
    why = scores.rationale()
    assert "Impact 500.00 (reported)" in why
    assert "ap.fix v1" in why and "4/4 contract fields" in why
    assert "1 compliance flag(s) 0.50" in why
    assert why.endswith(f"= {scores.priority:,.2f}")


def test_finding_without_catalog_action_uses_manual_feasibility_and_unknown_tier():
    scores = score("AP", "unknown-pattern", {}, 1000.0, None, [], Catalog([action()]), POLICY)
    why = scores.rationale()
    assert scores.actionId is None
    assert scores.feasibility == POLICY.feasibilityWithoutAction
    assert "no enabled catalog action" in why


def test_missing_estimate_falls_back_to_severity_then_default():
    catalog = Catalog([])
    by_severity = score("AP", "late", {}, None, "high", [], catalog, POLICY)
    by_default = score("AP", "late", {}, None, None, [], catalog, POLICY)
    assert by_severity.impact == POLICY.severityImpact["high"]
    assert by_default.impact == POLICY.defaultImpact


def test_disabled_or_other_environment_actions_are_not_candidates():
    catalog = Catalog([action(enabled=False), action(id="ap.other", environments=["prod"])], environment="local")
    assert catalog.candidates("ap", "LATE") == []


def test_matching_is_case_insensitive_and_picks_the_most_feasible_candidate():
    easy = action(id="ap.easy", dataContract={"required": ["a"]}, complexity=0.0)
    hard = action(id="ap.hard", dataContract={"required": ["a", "zz"]}, complexity=0.5)
    scores = score("ap", "LATE", {"a": 1}, 100.0, None, [], Catalog([hard, easy]), POLICY)
    assert scores.actionId == "ap.easy" and scores.feasibility == 1.0


def test_catalog_keeps_only_the_latest_version_of_an_action():
    catalog = Catalog([action(version=1, complexity=0.9), action(version=2, complexity=0.0)])
    assert [a.version for a in catalog.candidates("AP", "late")] == [2]


def test_risk_grows_with_blast_radius_until_the_cap():
    catalog = Catalog([action()])
    small = score("AP", "late", {}, 1000.0, None, [], catalog, POLICY)
    huge = score("AP", "late", {}, 10_000_000.0, None, [], catalog, POLICY)
    assert small.risk < huge.risk == pytest.approx(POLICY.blastRadiusWeight)


def test_missing_contract_data_never_scores_below_a_manual_fix():
    scores = score("AP", "late", {}, 1000.0, None, [], Catalog([action()]), POLICY)
    assert scores.feasibility == POLICY.feasibilityWithoutAction and scores.actionId == "ap.fix"
    assert "manual fix; action ap.fix v1 × 0/4 contract fields" in scores.rationale()
