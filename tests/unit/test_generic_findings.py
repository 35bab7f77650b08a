"""`POST /api/findings` bodies: what is accepted, and how every bad field is named."""
import json

import pytest

from shared.domain.errors import InvalidInput, MalformedBody
from shared.domain.findings import instant
from shared.ingest.generic import parse_findings
from tests.factories import finding


def body(x):
    return json.dumps(x).encode()


def test_single_finding_and_list_both_parse():
    assert len(parse_findings(body(finding()))) == 1
    assert len(parse_findings(body([finding(), finding()]))) == 2


def test_dates_as_iso_epoch_seconds_or_milliseconds_mean_the_same_instant():
    iso, secs, millis = (instant(parse_findings(body(finding(detectedAt=v)))[0].detectedAt)
                         for v in ("2023-11-14T22:13:20Z", 1700000000, 1700000000000))
    assert iso == secs == millis


def test_naive_timestamp_is_taken_as_utc():
    assert instant(parse_findings(body(finding(detectedAt="2026-01-02T03:04:05")))[0].detectedAt).utcoffset().seconds == 0


def test_numbers_may_arrive_as_strings():
    f = parse_findings(body(finding(kpiImpact="1250.5")))[0]
    assert f.impact_money() == 1250.5


def test_kpi_impact_object_is_days_times_cost_plus_value_and_penalty():
    f = parse_findings(body(finding(kpiImpact={"daysSaved": 2, "costOfDelayPerDay": 100, "valueAtStake": 30,
                                               "penaltyAvoided": 5})))[0]
    assert f.impact_money() == 235


def test_every_bad_field_is_named_with_a_pointer():
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body({"eventId": "", "processArea": "ap", "detectedAt": "yesterday", "kpiImpact": -5,
                             "severity": "apocalyptic", "surprise": 1}))
    pointers = {e.pointer for e in exc.value.errors}
    assert {"/eventId", "/deviationPattern", "/caseKey", "/detectedAt", "/kpiImpact", "/severity",
            "/surprise"} <= pointers


def test_one_bad_finding_rejects_the_batch_and_names_its_index():
    items = [finding(), finding(), finding(caseKey=None), finding()]
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body(items))
    assert exc.value.extra["invalidIndexes"] == [2]
    assert [e.pointer for e in exc.value.errors] == ["/2/caseKey"]


def test_batch_over_a_thousand_is_rejected_and_empty_batch_too():
    with pytest.raises(InvalidInput, match="at most 1000"):
        parse_findings(body([finding() for _ in range(1001)]))
    with pytest.raises(InvalidInput, match="empty"):
        parse_findings(b"[]")


@pytest.mark.parametrize("raw", [b"", b"   ", b"{", b"[1,", b"\xff\xfe"])
def test_unparsable_body_is_malformed_not_invalid(raw):
    with pytest.raises(MalformedBody):
        parse_findings(raw)


def test_scalar_json_is_invalid_input():
    with pytest.raises(InvalidInput):
        parse_findings(b"42")


def test_oversized_attributes_are_rejected_before_storage():
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body(finding(attributes={"blob": "x" * 20_000})))
    assert exc.value.errors[0].pointer == "/attributes"


def test_whitespace_only_keys_are_rejected_by_name():
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body([finding(), finding(caseKey="   ", processArea="\t")]))
    assert {e.pointer for e in exc.value.errors} == {"/1/caseKey", "/1/processArea"}
