"""People's answers as Beta posteriors and what they lead to (shared/domain/answers.py), and autonomy per pair
(shared/domain/autonomy.py): the decisions are checked against scipy.stats.beta at the policy's thresholds."""
import pytest
from scipy.stats import beta

from shared.domain import answers
from shared.domain.answers import Tally, decide
from shared.domain.autonomy import Autonomy
from shared.domain.policy import Learning

PAIR = ("leads.reassign", "lead-management", "lead-unassigned")
OTHER = ("leads.reassign", "lead-management", "lead-stale")
DEFAULTS = Learning()


def cards(rejected, n):
    return Tally(approved=n - rejected, rejected=rejected, approvedCases=n - rejected)


def test_three_rejections_of_four_are_too_few_cards_and_eight_of_ten_tighten_with_the_defaults():
    # 3 of 4 is likely enough (P = 0.969 > 0.95), but four cards are fewer than answersMinCards (10).
    assert beta.sf(DEFAULTS.rejectTighten, 1 + 3, 1 + 1) > DEFAULTS.tightenCertainty
    assert decide(PAIR, cards(3, 4), DEFAULTS).kind == answers.KEEP
    assert beta.sf(DEFAULTS.rejectTighten, 1 + 8, 1 + 2) == pytest.approx(0.99942, abs=1e-5)
    tightened = decide(PAIR, cards(8, 10), DEFAULTS)
    assert tightened.kind == answers.TIGHTEN
    assert tightened.reason.startswith("people rejected 8 of 10 cards of leads.reassign on "
                                       "lead-management/lead-unassigned (P(reject rate > 0.3) > 0.999)")
    assert tightened.evidence["pAbove"] == pytest.approx(beta.sf(0.3, 9, 3), abs=1e-4)
    assert (tightened.evidence["rejected"], tightened.evidence["cards"]) == (8, 10)


@pytest.mark.parametrize("n", [9, 10, 14, 30, 60])
def test_the_reject_decision_is_the_beta_posterior_against_the_threshold_at_every_count(n):
    for k in range(n + 1):
        wanted = n >= DEFAULTS.answersMinCards and beta.sf(0.3, 1 + k, 1 + n - k) >= 0.95
        assert (decide(PAIR, cards(k, n), DEFAULTS).kind == answers.TIGHTEN) == wanted, (k, n)


def test_ten_cards_tighten_from_six_rejections_not_five():
    assert beta.sf(0.3, 1 + 5, 1 + 5) < 0.95 <= beta.sf(0.3, 1 + 6, 1 + 4)
    assert decide(PAIR, cards(5, 10), DEFAULTS).kind == answers.KEEP
    assert decide(PAIR, cards(6, 10), DEFAULTS).kind == answers.TIGHTEN


@pytest.mark.parametrize("no,n", [(7, 10), (8, 10), (9, 12), (12, 16), (4, 9)])
def test_not_helpful_answers_tighten_by_their_own_threshold(no, n):
    t = Tally(approved=n, helpful=n - no, notHelpful=no)  # nobody rejected a card: only "not helpful" speaks
    wanted = n >= 10 and beta.sf(DEFAULTS.notHelpfulTighten, 1 + no, 1 + n - no) >= 0.95
    found = decide(PAIR, t, DEFAULTS)
    assert (found.kind == answers.TIGHTEN) == wanted
    if wanted:
        assert f"people found {no} of {n} cards" in found.reason and "not helpful" in found.reason


def test_a_good_record_is_proposed_for_relaxation_only_when_the_posterior_is_sure_enough():
    # 0 rejections of 57: P(rate < 0.05) = 0.949; of 58: 0.9515 (1 − 0.95^(n+1)).
    assert beta.cdf(0.05, 1, 58) < 0.95 <= beta.cdf(0.05, 1, 59)
    assert decide(PAIR, cards(0, 57), DEFAULTS).kind == answers.KEEP
    relax = decide(PAIR, cards(0, 58), DEFAULTS)
    assert relax.kind == answers.RELAX and relax.evidence["pBelow"] == pytest.approx(beta.cdf(0.05, 1, 59), abs=1e-4)
    # relaxMinCards holds even where the posterior is sure: a looser threshold, 20 clean cards.
    loose = Learning(relaxBelow=0.2, relaxMinCards=30)
    assert beta.cdf(0.2, 1, 21) >= 0.95 and decide(PAIR, cards(0, 20), loose).kind == answers.KEEP
    assert decide(PAIR, cards(0, 30), loose).kind == answers.RELAX


def test_a_tightened_pair_is_judged_on_its_record_since_the_tightening():
    bad_then_good = cards(8, 70)  # the window still holds the rejections that tightened it
    at = "2026-11-01T00:00:00+00:00"
    stays = decide(PAIR, bad_then_good, DEFAULTS, since=cards(0, 20), tightened_at=at)
    assert stays.kind == answers.TIGHTENED and "since it was tightened" in stays.reason
    relax = decide(PAIR, bad_then_good, DEFAULTS, since=cards(0, 60), tightened_at=at)
    assert relax.kind == answers.RELAX and relax.evidence["since"] == at
    # Tightened already: answers that would tighten it again change nothing.
    assert decide(PAIR, cards(10, 10), DEFAULTS, since=cards(2, 2), tightened_at=at).kind == answers.TIGHTENED


def test_rates_are_beta_posteriors_of_their_own_counts():
    t = Tally(approved=6, rejected=4, approvedCases=7, editedCases=2, helpful=3, notHelpful=1, verified=5, recurred=1)
    rates = t.rates()
    assert (rates["reject"].k, rates["reject"].n) == (4, 10) and (rates["approval"].k, rates["approval"].n) == (6, 10)
    assert (rates["edited"].k, rates["edited"].n) == (2, 7) and (rates["notHelpful"].k, rates["notHelpful"].n) == (1, 4)
    assert (rates["recurrence"].k, rates["recurrence"].n) == (1, 5)
    low, high = rates["reject"].interval(0.9)
    assert (low, high) == pytest.approx(beta.interval(0.9, 5, 7), abs=1e-6)
    assert (t + t).rejected == 8


def test_mode_for_a_tightened_pair_is_approval_and_other_pairs_of_the_action_keep_their_mode():
    a = Autonomy(tightened={PAIR: {"reason": "people rejected 8 of 10", "at": "t", "by": "learning",
                                   "evidence": {}}})
    assert a.mode_for(*PAIR) == "approval"
    assert a.mode_for(*OTHER) == "autonomous"
    assert a.mode_for("leads.reassign") == "autonomous"  # asked without a pattern: the action's own mode
    assert Autonomy.from_dict(a.to_dict()).tightened == a.tightened
    assert a.to_dict()["tightened"] == [{"actionId": PAIR[0], "processArea": PAIR[1], "deviationPattern": PAIR[2],
                                         "reason": "people rejected 8 of 10", "at": "t", "by": "learning",
                                         "evidence": {}}]


def test_off_stays_off_for_a_tightened_pair():
    a = Autonomy(actions={"leads.reassign": "off"}, tightened={PAIR: {"reason": "", "at": "t", "by": "learning"}})
    assert a.mode_for(*PAIR) == "off" and a.mode_for(*OTHER) == "off"
    assert Autonomy(mode="approval", tightened={PAIR: {}}).mode_for(*OTHER) == "approval"
