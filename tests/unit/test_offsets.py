"""Per-subscription offsets: the highest kept, skips recorded once as an incident, redeliveries counted only; and
the replay window that lets late (never seen) offsets in."""
import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import offsets
from shared.domain.errors import InvalidInput, Unauthorized
from shared.domain.offsets import Delivery
from shared.ingest import celonis
from shared.services import sources
from tests.factories import NOW, memory_services

T = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def got(*numbers, subscription="sub-1", at=T):
    return [Delivery(subscription, n, at) for n in numbers]


def advance(doc, *numbers):
    doc, missing, _ = offsets.advance(doc, "celonis", "sub-1", got(*numbers), NOW)
    return doc, missing


def restarted(doc, *numbers):
    return offsets.advance(doc, "celonis", "sub-1", got(*numbers), NOW)


def test_the_first_offset_opens_the_record_without_a_gap_before_it():
    doc, missing = advance(None, 41)
    assert (doc["highestOffset"], doc["events"], doc["gaps"], missing) == (41, 1, 0, [])


def test_consecutive_offsets_advance_the_highest():
    doc, missing = advance(advance(None, 1)[0], 2, 3)
    assert (doc["highestOffset"], doc["events"], missing) == (3, 3, [])


def test_a_skip_is_reported_as_the_range_that_never_arrived():
    doc, missing = advance(advance(None, 40)[0], 45)
    assert missing == [(41, 44)] and doc["missing"] == [[41, 44]] and doc["gaps"] == 1
    assert doc["highestOffset"] == 45


def test_offsets_out_of_order_within_one_batch_lost_nothing():
    doc, missing = advance(advance(None, 40)[0], 43, 41, 42)
    assert (doc["highestOffset"], missing) == (43, [])


def test_a_redelivered_or_older_offset_never_lowers_the_highest():
    doc, _ = advance(None, 50)
    again, missing = advance(doc, 50)
    older, _ = advance(again, 12)
    assert (older["highestOffset"], older["redelivered"], older["events"], missing) == (50, 2, 1, [])


def test_a_replayed_offset_fills_its_missing_range():
    doc, _ = advance(advance(None, 40)[0], 45)
    doc, missing = advance(doc, 42)
    assert doc["missing"] == [[41, 41], [43, 44]] and missing == [] and doc["redelivered"] == 0
    doc, _ = advance(doc, 41, 43, 44)
    assert doc["missing"] == [] and doc["gaps"] == 1


def test_the_last_event_time_is_the_newest_creation_date_seen():
    doc, *_ = offsets.advance(None, "celonis", "s", [Delivery("s", 1, T), Delivery("s", 2, T - timedelta(hours=1))],
                              NOW)
    doc, *_ = offsets.advance(doc, "celonis", "s", [Delivery("s", 3, T - timedelta(days=1))], NOW)
    assert doc["lastEventAt"] == T.isoformat() and doc["lastReceivedAt"] == NOW.isoformat()


def test_missing_ranges_kept_are_bounded():
    doc = advance(None, 0)[0]
    for n in range(1, 60):
        doc = advance(doc, n * 3)[0]
    assert len(doc["missing"]) == offsets.MAX_MISSING and doc["gaps"] == 59


# Restarts and jumps: a subscription recreated in Celonis counts from 0 again, and one bogus offset must not leave
# every later event "redelivered" for good.

def test_a_drop_far_below_the_highest_restarts_the_record_there():
    doc, _ = advance(advance(None, 40)[0], 45)
    doc, missing, resets = restarted(advance(doc, 50_000)[0], 3)
    assert (doc["highestOffset"], doc["missing"], missing, resets) == (3, [], [], [(50_000, 3)])
    assert doc["resets"] == 1 and doc["redelivered"] == 0
    doc, missing = advance(doc, 4, 5)
    assert (doc["highestOffset"], missing) == (5, [])


def test_offset_zero_once_past_a_thousand_is_a_restart():
    doc, _ = advance(None, 1_500)
    assert restarted(doc, 0)[2] == [(1_500, 0)]
    assert restarted(advance(None, 900)[0], 0)[2] == []  # early on, a redelivered first event


def test_a_drop_within_ten_thousand_is_a_redelivery():
    doc, missing, resets = restarted(advance(None, 20_000)[0], 10_000)
    assert (doc["highestOffset"], doc["redelivered"], resets) == (20_000, 1, [])


def test_a_jump_of_more_than_a_million_reopens_the_record_without_a_gap():
    doc, missing, resets = restarted(advance(None, 5)[0], 5 + 1_000_002)
    assert (doc["highestOffset"], doc["gaps"], missing, resets) == (1_000_007, 0, [], [(5, 1_000_007)])
    doc, missing, resets = restarted(doc, 6)  # the bogus offset is left behind as soon as the real ones return
    assert (doc["highestOffset"], resets) == (6, [(1_000_007, 6)])
    assert advance(doc, 7)[0]["highestOffset"] == 7
    assert restarted(advance(None, 5)[0], 1_000_005)[1] == [(6, 1_000_004)]  # a million exactly is a gap


def test_one_request_restarting_a_subscription_raises_one_incident():
    svc = memory_services()
    sources.record(svc, "celonis", got(60_000), "cid-1")
    sources.record(svc, "celonis", got(0, 1, 2) + got(3_000_000), "cid-2")
    [incident] = svc.reference.incidents(10)
    assert incident.kind == "offsets_reset" and incident.correlationId == "cid-2"
    assert incident.detail == ("offsets of subscription sub-1 (celonis) restarted at 0 after 60000, jumped from 2 "
                               "to 3000000: its record starts over at each; replay from Celonis what it missed")
    assert sources.view(svc)["items"][0]["highestOffset"] == 3_000_000


@pytest.mark.parametrize("offset", [-1, 2**53, 2**64 - 1, 1e300])
def test_an_offset_outside_0_to_2_53_is_refused_naming_it(offset):
    envelope = {"subscriberId": "s", "triggerId": "ap-invoice-blocked", "creationDate": "2026-12-03T10:00:00Z",
                "offset": offset, "event": {"id": "1", "fields": [{"id": "INVOICE_ID", "value": "I1"}]}}
    for body, where in ((envelope, "/offset"), ([envelope, envelope], "/1/offset")):
        with pytest.raises(InvalidInput) as exc:
            celonis.normalize(json.dumps(body).encode(), {})
        assert where in [e.pointer for e in exc.value.errors]
    assert celonis.normalize(json.dumps({**envelope, "offset": 2**53 - 1}).encode(), {}).deliveries[0].offset == \
        2**53 - 1


def test_is_new_knows_what_the_record_has_not_seen():
    doc, _ = advance(advance(None, 40)[0], 45)
    assert [offsets.is_new(doc, n) for n in (39, 40, 42, 45, 46)] == [False, False, True, False, True]
    assert offsets.is_new(None, 1)


# The service: recorded after ingest, shown, one incident per skip.

def test_record_stores_the_offsets_and_the_view_shows_them():
    svc = memory_services()
    sources.record(svc, "celonis", got(7, 8), "cid-1")
    [item] = sources.view(svc)["items"]
    assert item == {"source": "celonis", "subscription": "sub-1", "highestOffset": 8, "lastEventAt": T.isoformat(),
                    "lastReceivedAt": NOW.isoformat(), "events": 2, "redelivered": 0, "gaps": 0, "resets": 0, "missing": []}


def test_a_skip_records_one_incident_naming_what_to_replay():
    svc = memory_services()
    sources.record(svc, "celonis", got(40), "cid-1")
    sources.record(svc, "celonis", got(45), "cid-2")
    [incident] = svc.reference.incidents(10)
    assert incident.kind == "lost_events" and incident.correlationId == "cid-2"
    assert incident.detail == "offsets 41..44 missing for subscription sub-1 (celonis); replay from Celonis"
    assert svc.notifier.sent and svc.notifier.sent[-1][0] == "escalate"
    assert sources.view(svc)["items"][0]["missing"] == [{"from": 41, "to": 44}]


def test_one_request_skipping_many_offsets_raises_one_incident_naming_them_all_within_bounds():
    svc = memory_services()
    sources.record(svc, "celonis", got(*range(0, 2000, 2)), "cid-1")  # 999 gaps in one request
    [incident] = svc.reference.incidents(2000)
    assert len(svc.notifier.sent) == 1
    assert incident.detail.startswith("offsets 1, 3, 5, ") and "1995, 1997 missing for subscription sub-1" in \
        incident.detail and "979 more" in incident.detail and len(incident.detail) < 400


def test_several_ranges_missing_in_one_request_are_one_incident():
    svc = memory_services()
    sources.record(svc, "celonis", got(40, 45, 47), "cid-1")
    [incident] = svc.reference.incidents(10)
    assert incident.detail == "offsets 41..44, 46 missing for subscription sub-1 (celonis); replay from Celonis"


def test_a_failing_notifier_neither_fails_the_request_nor_loses_an_incident(caplog):
    svc = memory_services()

    class Down:
        def notify(self, *args, **kwargs):
            raise RuntimeError("teams 429")

    svc.notifier = Down()
    sources.record(svc, "celonis", got(1, 3) + got(1, 5, subscription="sub-2"), "cid-1")
    assert sorted(i.detail.split(" missing")[0] for i in svc.reference.incidents(10)) == ["offset 2",
                                                                                       "offsets 2..4"]
    assert [r.levelname for r in caplog.records if "not sent" in r.getMessage()] == ["ERROR", "ERROR"]


def test_a_redelivered_or_out_of_order_offset_records_no_incident():
    svc = memory_services()
    sources.record(svc, "celonis", got(40, 41), "cid-1")
    sources.record(svc, "celonis", got(41), "cid-2")
    sources.record(svc, "celonis", got(39), "cid-3")
    assert svc.reference.incidents(10) == []
    assert sources.view(svc)["items"][0]["redelivered"] == 2


def test_the_view_lists_the_most_recently_heard_from_first_up_to_top():
    svc = memory_services()
    for k, sub in enumerate(("a", "b", "c")):
        svc.clock.current = NOW + timedelta(minutes=k)
        sources.record(svc, "celonis", got(1, subscription=sub), "cid")
    assert [i["subscription"] for i in sources.view(svc, top=2)["items"]] == ["c", "b"]
    assert len(sources.view(svc)["items"]) == 3


def test_subscriptions_are_kept_apart():
    svc = memory_services()
    sources.record(svc, "celonis", got(5, subscription="a") + got(100, subscription="b"), "cid")
    assert {i["subscription"]: i["highestOffset"] for i in sources.view(svc)["items"]} == {"a": 5, "b": 100}


def test_a_write_that_lost_the_race_is_read_again_and_never_lowers_the_offset():
    svc = memory_services()
    sources.record(svc, "celonis", got(10), "cid")
    real = svc.coordination.state_versioned

    def racing(name):
        doc, etag = real(name)
        if not racing.done:  # another request advances to 20 between this read and its write
            racing.done = True
            sources.record(svc, "celonis", got(20), "other")
        return doc, etag

    racing.done = False
    svc.coordination.state_versioned = racing
    sources.record(svc, "celonis", got(11), "cid")
    item = sources.view(svc)["items"][0]
    assert item["highestOffset"] == 20 and item["events"] == 3 and item["missing"] == [{"from": 12, "to": 19}]


def test_a_stale_subscription_event_is_a_replay_only_when_its_offset_was_seen():
    svc = memory_services()
    sources.record(svc, "celonis", got(40), "cid")
    old = NOW - timedelta(hours=2)
    sources.refuse_replays(svc, [], [Delivery("sub-1", 41, old)], NOW)  # late, never seen: Celonis redelivering
    for seen in (Delivery("sub-1", 40, old), Delivery("sub-1", None, old)):
        with pytest.raises(Unauthorized) as exc:
            sources.refuse_replays(svc, [], [seen], NOW)
        assert exc.value.errors[0].pointer == "/creationDate"


def test_a_stale_cloudevent_time_is_a_replay():
    svc = memory_services()
    sources.refuse_replays(svc, [(NOW - timedelta(minutes=4), "header:ce-time")], [], NOW)
    with pytest.raises(Unauthorized):
        sources.refuse_replays(svc, [(NOW + timedelta(minutes=6), "header:ce-time")], [], NOW)
