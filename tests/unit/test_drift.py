"""Drift detection: a real spike is caught, a stable rate never raises a false alarm."""
import random
from datetime import datetime, timedelta, timezone

from shared.domain.drift import Sample, Settings, detect, rate_z

NOW = datetime(2026, 11, 26, 12, tzinfo=timezone.utc)


def window(rng, n, rate, start, minutes, action="leads.reassign", confidence=0.87):
    return [Sample(action, start + timedelta(minutes=minutes * i / n), rng.random() < rate, False, confidence)
            for i in range(n)]


def history(rng, base_rate, recent_rate, n_base=300, n_recent=40):
    base = window(rng, n_base, base_rate, NOW - timedelta(hours=25), 24 * 60)
    recent = window(rng, n_recent, recent_rate, NOW - timedelta(minutes=59), 58)
    return base + recent


def test_a_known_z_matches_the_textbook_two_proportion_test():
    # 12/40 against 6/300: pooled p = 18/340 = 0.052941; p(1-p) = 0.050138; 1/40 + 1/300 = 0.028333;
    # se = sqrt(0.050138 * 0.028333) = 0.037691; z = (0.30 - 0.02) / 0.037691 = 7.429
    assert abs(rate_z(12, 40, 6, 300) - 7.429) < 0.001


def test_a_failure_rate_from_2_to_30_percent_is_a_signal():
    [signal] = detect(history(random.Random(1), 0.02, 0.30), NOW)
    assert signal.metric == "failure_rate" and signal.actionId == "leads.reassign" and signal.z >= 3.09


def test_a_stable_2_percent_never_alarms_over_50_sweeps():
    rng = random.Random(7)
    alarms = sum(bool(detect(history(rng, 0.02, 0.02), NOW)) for _ in range(50))
    assert alarms == 0


def test_too_few_recent_executions_say_nothing_however_bad():
    assert detect(history(random.Random(2), 0.02, 0.9, n_recent=10), NOW) == []


def test_a_confidence_drop_is_a_signal_and_a_small_one_is_not():
    rng = random.Random(3)
    base = window(rng, 200, 0.0, NOW - timedelta(hours=20), 600, confidence=0.9)
    low = [Sample("ap.x", s.at, False, False, 0.72) for s in window(rng, 30, 0, NOW - timedelta(minutes=30), 20)]
    base = [Sample("ap.x", s.at, False, False, 0.9 + rng.uniform(-0.02, 0.02)) for s in base]
    assert [s.metric for s in detect(base + low, NOW)] == ["confidence"]
    slight = [Sample("ap.x", s.at, False, False, 0.86) for s in low]
    assert detect(base + slight, NOW, Settings()) == []


def test_a_shifted_outcome_mix_is_a_signal_by_chi_square():
    from shared.domain.drift import outcome_chi2

    rng = random.Random(4)
    base = [Sample("o2c.x", NOW - timedelta(hours=10, minutes=i), rng.random() < 0.15, rng.random() < 0.15, None)
            for i in range(300)]
    recent = [Sample("o2c.x", NOW - timedelta(minutes=i), rng.random() < 0.15, rng.random() < 0.55, None)
              for i in range(50)]
    chi, shift = outcome_chi2(recent, base)
    assert chi >= 13.816 and shift >= 0.10
    assert "outcomes" in {s.metric for s in detect(base + recent, NOW)}
    # by hand: recent 10/10/10, baseline 60/20/20; expected 16.154/6.923/6.923 and 53.846/23.077/23.077;
    # chi² = 2.344 + 2 × 1.368 + 0.703 + 2 × 0.410 = 6.603 (df 2): below 13.816, not a signal
    mk = lambda o, n, t: [Sample("a", t, o == 1, o == 2, None) for _ in range(n)]  # noqa: E731
    r = mk(0, 10, NOW) + mk(1, 10, NOW) + mk(2, 10, NOW)
    b = mk(0, 60, NOW) + mk(1, 20, NOW) + mk(2, 20, NOW)
    assert abs(outcome_chi2(r, b)[0] - 6.603) < 0.001
