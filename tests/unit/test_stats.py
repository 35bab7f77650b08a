"""The statistics behind GET /api/kpis, against answers worked out by hand and by simulation."""
import random
import subprocess
import sys

import pytest

from shared.domain import cohort, stats

# Worked by hand: means 93/7 and 99/6, variances 19.4286/6 and 17.5/5, se² = 0.46259 + 0.58333,
# Welch–Satterthwaite df = 1.09390 / 0.10373 = 10.547, t(0.975, 10.547) = 2.2134, half-width 2.2637.
TREATED = [12.0, 15, 11, 14, 13, 16, 12]
CONTROL = [15.0, 17, 16, 18, 14, 19]


def test_welch_interval_matches_the_hand_computed_answer():
    e = stats.welch(TREATED, CONTROL)
    assert e.difference == pytest.approx(-3.2143, abs=1e-4)
    assert e.df == pytest.approx(10.547, abs=1e-3)
    assert e.low == pytest.approx(-5.478, abs=2e-3)
    assert e.high == pytest.approx(-0.951, abs=2e-3)
    assert e.p_value == pytest.approx(0.0098, abs=2e-4)
    assert e.method == "welch"


def test_student_t_quantiles_and_tails_match_the_tables():
    assert stats.t_quantile(0.975, 10) == pytest.approx(2.228139, abs=1e-6)
    assert stats.t_quantile(0.975, 30) == pytest.approx(2.042272, abs=1e-6)
    assert stats.t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-5)
    assert stats.t_two_sided_p(2.0, 5) == pytest.approx(0.101939, abs=1e-6)


def test_identical_samples_give_a_zero_width_interval_and_p_one():
    e = stats.welch([3.0, 3.0, 3.0], [3.0, 3.0])
    assert (e.difference, e.low, e.high, e.p_value) == (0.0, 0.0, 0.0, 1.0)


def _coverage(draw, method: str, truth: float = -2.0, sims: int = 200) -> float:
    hits = 0
    for seed in range(sims):
        rng = random.Random(seed)
        treated = [draw(rng) + truth for _ in range(180)]
        control = [draw(rng) for _ in range(40)]
        e = stats.compare(treated, control, method, seed=str(seed))
        hits += e.low <= truth <= e.high
    return hits / sims


def test_a_simulated_effect_of_minus_two_days_is_inside_the_welch_ci_in_at_least_90_percent_of_200_runs():
    assert _coverage(lambda r: r.gauss(10.0, 3.0), "welch") >= 0.90


def test_a_skewed_metric_gets_the_bootstrap_which_still_covers_the_true_effect():
    draw = lambda r: r.expovariate(1 / 6.0) + 1.0  # cycle times: a long right tail  # noqa: E731
    rng = random.Random(99)
    assert stats.choose("auto", [draw(rng) for _ in range(200)], [draw(rng) for _ in range(50)]) == stats.BOOTSTRAP
    assert _coverage(draw, "auto") >= 0.90


def test_a_zero_one_metric_is_read_with_welch():
    assert stats.choose("auto", [0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0]) == stats.WELCH


def test_bootstrap_gives_the_same_figures_on_every_read():
    rng = random.Random(5)
    t, c = [rng.expovariate(0.2) for _ in range(60)], [rng.expovariate(0.15) for _ in range(40)]
    assert stats.bootstrap(t, c, seed="x") == stats.bootstrap(t, c, seed="x")


@pytest.mark.parametrize("share", [5.0, 10.0, 25.0, 50.0])
def test_holdout_share_is_within_two_points_over_10000_cases(share):
    drawn = [cohort.assign("closedloop-1", f"accounts-payable|INV-{i:06d}", share) for i in range(10_000)]
    assert abs(drawn.count(cohort.CONTROL) / 100 - share) <= 2.0


def test_holdout_assignment_is_the_same_after_a_restart():
    # A fresh interpreter with another hash seed: the draw must not depend on the process.
    code = ("from shared.domain import cohort; print(''.join('c' if cohort.assign('closedloop-1', f'k{i}', 10.0)"
            " == cohort.CONTROL else 't' for i in range(2000)))")
    here = "".join("c" if cohort.assign("closedloop-1", f"k{i}", 10.0) == cohort.CONTROL else "t" for i in range(2000))
    for seed in ("1", "4242"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"PYTHONHASHSEED": seed, "PYTHONPATH": "."}, cwd=str(__import__("pathlib").Path(
                                 __file__).resolve().parents[2]))
        assert out.stdout.strip() == here
