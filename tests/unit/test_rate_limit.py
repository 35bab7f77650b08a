"""Sliding-window rate limits: the pure rules."""
import pytest

from shared.domain.rate_limit import Rule, admit, admit_all, rules_for

PER_SECOND = Rule("connector:erp", 3, 1.0)


def test_the_fourth_grant_in_one_window_waits_until_the_oldest_leaves():
    log = ()
    for t in (0, 100, 200):
        d = admit(log, t, PER_SECOND)
        assert d.granted
        log = d.log
    denied = admit(log, 300, PER_SECOND)
    assert not denied.granted and denied.at_ms == 1001
    assert admit(log, 1001, PER_SECOND).granted


def test_a_burst_straddling_two_windows_is_still_capped():
    log = admit(admit(admit((), 900, PER_SECOND).log, 950, PER_SECOND).log, 990, PER_SECOND).log
    assert not admit(log, 1010, PER_SECOND).granted  # a fixed window would have let this through


def test_a_request_needing_two_rules_consumes_neither_when_one_refuses():
    entity = Rule("entity:ap.x:invoiceId=I-1", 1, 86400)
    logs = {}
    assert [v.granted for v in admit_all(logs, [[PER_SECOND, entity]], 0)] == [True]
    verdicts = admit_all(logs, [[PER_SECOND, entity], [PER_SECOND]], 10)
    assert not verdicts[0].granted and verdicts[0].retry_at == 86400001 and verdicts[1].granted_at == 10
    assert len(logs["connector:erp"]) == 2  # the refused request did not use a connector slot


def test_rules_come_from_the_action_rate_limit():
    rules = rules_for("ap.x", "erp", {"perMinute": 30, "perEntityPerDay": 1, "entityField": "invoiceId"},
                      {"invoiceId": "I-9"})
    assert [(r.key, r.limit, r.window) for r in rules] == [("connector:erp", 30, 60.0),
                                                            ("entity:ap.x:invoiceId=I-9", 1, 86400.0)]
    with pytest.raises(ValueError):
        Rule("k", 0, 1.0)


def test_a_late_caller_is_stamped_after_the_newest_grant_so_it_cannot_refill_a_past_window():
    log = ()
    for t in (100, 600, 650):
        log = admit(log, t, Rule("k", 2, 0.5)).log
    late = admit(log, 120, Rule("k", 2, 0.5))  # its clock reading predates grants already made
    assert not late.granted
