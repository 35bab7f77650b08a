"""Sliding-window rate limits: the pure rules."""
import pytest

from shared.domain.rate_limit import HOLDER_CHARS, Grant, Rule, admit, admit_all, grants, holder_tag, rules_for

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


ONE_A_DAY = dict(key="entity:ap.x:invoiceId=I-1", limit=1, window=86400.0)
HOUR_MS = 3_600_000


def test_a_retry_of_the_same_execution_is_granted_again_within_the_window_without_a_second_slot():
    first = admit((), 0, Rule(**ONE_A_DAY, holder="a1b2c3d4e5"))
    retry = admit(first.log, HOUR_MS, Rule(**ONE_A_DAY, holder="a1b2c3d4e5"))
    assert first.granted and retry.granted and retry.reused
    assert retry.log == first.log and len(retry.log) == 1  # nothing stamped: the window is as it was


def test_a_different_execution_is_refused_while_the_first_holds_the_entity():
    first = admit((), 0, Rule(**ONE_A_DAY, holder="a1b2c3d4e5"))
    other = admit(first.log, HOUR_MS, Rule(**ONE_A_DAY, holder="ffffffffff"))
    anonymous = admit(first.log, HOUR_MS, Rule(**ONE_A_DAY))
    assert not other.granted and other.at_ms == 86_400_001
    assert not anonymous.granted  # a rule without a holder never reuses anyone's grant


def test_a_retry_after_its_grant_left_the_window_takes_a_new_one():
    first = admit((), 0, Rule(**ONE_A_DAY, holder="a1b2c3d4e5"))
    late = admit(first.log, 86_400_001, Rule(**ONE_A_DAY, holder="a1b2c3d4e5"))
    assert late.granted and not late.reused and [g.at for g in late.log] == [86_400_001]


def test_retry_after_429_reuses_its_own_entity_and_cap_grants_but_takes_a_new_connector_slot():
    key = "0123456789abcdef0123456789abcdef"
    rate = {"perMinute": 2, "perEntityPerDay": 1, "entityField": "invoiceId"}
    rules = rules_for("ap.x", "erp", rate, {"invoiceId": "I-1"}, daily_cap=1, holder=key)
    logs = {}
    assert admit_all(logs, [rules], 0)[0].granted
    assert admit_all(logs, [rules], 5_000)[0].granted  # the flow answered 429: the retry calls again
    assert [len(logs[r.key]) for r in rules] == [1, 2, 1]  # cap, connector, entity
    other = rules_for("ap.x", "erp", rate, {"invoiceId": "I-1"}, daily_cap=1, holder="another execution")
    refused = admit_all(logs, [other], 6_000)[0]
    assert not refused.granted and refused.retry_at == 86_400_001  # the entity and the cap are held
    assert len(logs["connector:erp"]) == 2  # a refused request uses no connector slot


def test_a_retry_whose_connector_minute_is_full_waits_a_minute_not_a_day():
    key = "0123456789abcdef0123456789abcdef"
    rate = {"perMinute": 1, "perEntityPerDay": 1, "entityField": "invoiceId"}
    rules = rules_for("ap.x", "erp", rate, {"invoiceId": "I-1"}, holder=key)
    logs = {}
    admit_all(logs, [rules], 0)
    [retry] = admit_all(logs, [rules], 1_000)
    assert not retry.granted and retry.retry_at == 60_001


def test_rules_hold_the_entity_and_the_cap_by_a_short_tag_of_the_idempotency_key_never_the_connector():
    rules = rules_for("ap.x", "erp", {"perMinute": 30, "perEntityPerDay": 1, "entityField": "invoiceId"},
                      {"invoiceId": "I-9"}, daily_cap=10, holder="0123456789abcdef0123456789abcdef")
    tag = holder_tag("0123456789abcdef0123456789abcdef")
    assert [(r.key, r.holder) for r in rules] == [("cap:ap.x", tag), ("connector:erp", ""),
                                                   ("entity:ap.x:invoiceId=I-9", tag)]
    assert len(tag) == HOLDER_CHARS and int(tag, 16) >= 0
    assert all(not r.holder for r in rules_for("ap.x", "erp", {"perMinute": 30}, {}, daily_cap=10))


def test_an_old_log_of_plain_stamps_still_reads_as_anonymous_grants():
    old = (1_000, 2_000)  # what logs held before grants had holders
    assert not admit(old, 3_000, Rule("entity:k", 2, 86400.0, holder="a1b2c3d4e5")).granted
    grown = admit(old, 3_000, Rule("entity:k", 3, 86400.0, holder="a1b2c3d4e5"))
    assert grown.granted and grown.log == (Grant(1_000), Grant(2_000), Grant(3_000, "a1b2c3d4e5"))
    assert grants(old) == (Grant(1_000, ""), Grant(2_000, ""))
