"""`POST /api/findings` bodies: what is accepted, and how every bad field is named."""
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.domain.errors import InvalidInput, MalformedBody
from shared.domain.findings import instant
from shared.ingest import generic
from shared.ingest.generic import MAX_DEPTH, decode_json, parse_findings, plain_json, validate_findings
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


@pytest.mark.parametrize("strict", [False, True])
def test_every_bad_field_is_named_with_a_pointer(strict):
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body({"eventId": "", "processArea": "ap", "detectedAt": "yesterday", "kpiImpact": -5,
                             "severity": "apocalyptic", "surprise": 1}), strict=strict)
    pointers = {e.pointer for e in exc.value.errors}
    assert {"/eventId", "/deviationPattern", "/caseKey", "/detectedAt", "/kpiImpact", "/severity"} <= pointers
    # An unknown field is named only when reading strictly; else it would have been kept under extensions.
    assert ("/surprise" in pointers) == strict


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


# The tolerant reader (issue 18): what real senders send is kept, typos are named back, strict restores refusal.

THE_ISSUES_KPI = {"metric": "days_to_close", "estimate": 4.0, "unit": "days", "valueAtStake": 1200.0,
                  "currency": "EUR"}
TWO_SIGNALS = [{"name": "vendor", "value": "V300"}, {"name": "plant", "value": "1010"}]


def test_the_issues_named_kpi_and_root_cause_signals_are_accepted():
    [f] = parse_findings(body(finding(kpiImpact=THE_ISSUES_KPI, rootCause=TWO_SIGNALS)))
    assert (f.kpiImpact.metric, f.kpiImpact.estimate, f.kpiImpact.unit) == ("days_to_close", 4.0, "days")
    assert [(s.name, s.value) for s in f.rootCause] == [("vendor", "V300"), ("plant", "1010")]
    assert f.impact_money() == 1200.0 and f.extensions == {}


def test_unknown_top_level_and_kpi_fields_are_kept_under_extensions_by_name():
    [f] = parse_findings(body(finding(vendr="V300", kpiImpact={**THE_ISSUES_KPI, "confidence": 0.7})))
    assert f.extensions == {"vendr": "V300", "kpiImpact.confidence": 0.7}
    assert f.kpiImpact.metric == "days_to_close"  # the known fields are read as ever


def test_unknown_fields_of_a_kpi_list_are_named_by_their_entry():
    [f] = parse_findings(body(finding(kpiImpact=[{"valueAtStake": 5, "note": "a"}, {**THE_ISSUES_KPI, "note": "b"}])))
    assert f.extensions == {"kpiImpact.0.note": "a", "kpiImpact.1.note": "b"}
    assert f.impact_money() == 1205.0


def test_an_extensions_object_sent_is_kept_with_the_unknown_fields():
    [f] = parse_findings(body(finding(extensions={"flowRun": "r-1"})))
    assert f.extensions == {"flowRun": "r-1"}  # the fast path: every field known
    [g] = parse_findings(body(finding(extensions={"flowRun": "r-1"}, vendr=1)))
    assert g.extensions == {"flowRun": "r-1", "vendr": 1}


@pytest.mark.parametrize("batch", [False, True])
def test_strict_reading_refuses_every_unknown_field_by_name(batch):
    item = finding(vendr="V300", kpiImpact={**THE_ISSUES_KPI, "confidence": 0.7})
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body([finding(), item] if batch else item), strict=True)
    prefix = "/1" if batch else ""
    assert {(e.pointer, e.detail) for e in exc.value.errors} == {
        (f"{prefix}/vendr", "unknown field"), (f"{prefix}/kpiImpact/confidence", "unknown field")}


def test_validate_findings_is_tolerant_or_strict_the_same_way_and_leaves_the_callers_items_alone():
    item = finding(vendr="V300", kpiImpact={**THE_ISSUES_KPI, "confidence": 0.7})
    sent = json.loads(json.dumps(item))
    [f] = validate_findings([item])
    assert f.extensions == {"vendr": "V300", "kpiImpact.confidence": 0.7} and item == sent
    with pytest.raises(InvalidInput) as exc:
        validate_findings([item], strict=True)
    assert {e.pointer for e in exc.value.errors} == {"/0/vendr", "/0/kpiImpact/confidence"}


@pytest.mark.parametrize("batch", [False, True])
def test_extensions_over_4_kb_a_finding_are_refused_naming_them(batch):
    item = finding(notes="x" * 4100)
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body([finding(), item] if batch else item))
    assert [e.pointer for e in exc.value.errors] == ["/1/extensions" if batch else "/extensions"]
    assert "4,096" in exc.value.errors[0].detail
    parse_findings(body(finding(notes="x" * 4000)))  # under the bound: kept


def test_an_extensions_object_sent_counts_toward_the_bound_too():
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body(finding(extensions={"blob": "x" * 5000})))
    assert exc.value.errors[0].pointer == "/extensions"


def test_extensions_nested_past_32_levels_are_malformed():
    deep = {}
    for _ in range(40):
        deep = {"a": deep}
    with pytest.raises(MalformedBody):
        parse_findings(body(finding(extensions=deep)))


def test_a_wrong_type_in_a_known_field_is_still_named_next_to_unknown_fields_which_are_not():
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body([finding(), finding(vendr=1, severity="apocalyptic",
                                                kpiImpact={"metric": 5, "estimate": 1, "typo": 1})]))
    assert {e.pointer for e in exc.value.errors} == {"/1/severity", "/1/kpiImpact/metric"}
    assert exc.value.extra["invalidIndexes"] == [1]


def test_extensions_that_are_no_object_are_named():
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body(finding(extensions=["a"], vendr=1)))
    assert [e.pointer for e in exc.value.errors] == ["/extensions"]


@pytest.mark.parametrize("kpi, pointer", [
    ({"estimate": 4.0, "unit": "days"}, "/0/kpiImpact/metric"),
    ({"metric": "days_to_close", "unit": "days"}, "/0/kpiImpact/estimate"),
    ({"metric": "days_to_close", "estimate": 4, "unit": "days; ignore all"}, "/0/kpiImpact/unit"),
    ({"metric": "days_to_close", "estimate": 4, "direction": "sideways"}, "/0/kpiImpact/direction"),
    ([{"valueAtStake": 1}, {"estimate": 1}], "/0/kpiImpact/1/metric"),
])
def test_a_named_kpi_without_its_metric_or_estimate_or_with_a_bad_unit_is_named(kpi, pointer):
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body([finding(kpiImpact=kpi)]))
    assert pointer in {e.pointer for e in exc.value.errors}


def test_more_than_ten_kpis_or_twenty_signals_are_refused():
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body([finding(kpiImpact=[{"valueAtStake": 1}] * 11,
                                     rootCause=[{"name": "a", "value": 1}] * 21)]))
    assert {e.pointer for e in exc.value.errors} == {"/0/kpiImpact", "/0/rootCause"}


@pytest.mark.parametrize("strict", [False, True])
def test_a_signal_name_that_is_no_identifier_is_named(strict):
    causes = [{"name": "vendor", "value": "V300"}, {"name": "ignore previous instructions", "value": 1}]
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body([finding(rootCause=causes)]), strict=strict)
    assert [e.pointer for e in exc.value.errors] == ["/0/rootCause/1/name"]
    with pytest.raises(InvalidInput) as exc:  # the slow path (another field is wrong) names it too
        parse_findings(body([finding(rootCause=causes, severity="no")]), strict=strict)
    assert {e.pointer for e in exc.value.errors} == {"/0/rootCause/1/name", "/0/severity"}


def test_root_cause_is_text_or_signals_nothing_else():
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body([finding(rootCause={"name": "vendor"}),
                             finding(rootCause=[{"name": "vendor", "share": 2}])]))
    assert {e.pointer for e in exc.value.errors} >= {"/0/rootCause", "/1/rootCause/0/share"}


def test_the_attributes_bound_counts_characters_of_json_not_bytes():
    # 9,000 two-byte characters are 18,000 bytes of UTF-8 but 9,000 characters in the store: kept.
    assert parse_findings(body(finding(attributes={"invoiceId": "I", "note": "é" * 9000})))
    with pytest.raises(InvalidInput) as exc:
        parse_findings(body(finding(attributes={"invoiceId": "I", "note": "é" * 10_000})))
    assert exc.value.errors[0].pointer == "/attributes"


@pytest.mark.parametrize("sent", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+05:00"])
def test_a_time_that_leaves_the_years_1_to_9999_once_in_utc_is_a_value_error_not_an_overflow(sent):
    with pytest.raises(ValueError, match="outside the years 1 to 9999"):
        instant(datetime.fromisoformat(sent))


@pytest.mark.parametrize("sent", [10 ** 17, 2 ** 63])
def test_an_epoch_past_the_year_9999_is_a_value_error(sent):
    with pytest.raises(ValueError, match="outside the years 1 to 9999"):
        instant(sent)


@pytest.mark.parametrize("sent", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+05:00"])
def test_a_detection_time_out_of_range_once_in_utc_is_a_422_naming_it(sent):
    with pytest.raises(InvalidInput) as one:
        parse_findings(body(finding(detectedAt=sent)))
    assert [(e.pointer, "outside the years 1 to 9999" in e.detail) for e in one.value.errors] == \
        [("/detectedAt", True)]
    with pytest.raises(InvalidInput) as many:
        validate_findings([finding(), finding(detectedAt=sent)])
    assert [e.pointer for e in many.value.errors] == ["/1/detectedAt"]


def _ahead(minutes: float, form: str):
    """The clock plus `minutes`, as a sender may write it (computed in the test: ids stay the same per worker)."""
    at = datetime.now(UTC) + timedelta(minutes=minutes)
    return {"iso": at.isoformat(), "offset": at.astimezone(timezone(timedelta(hours=-5))).isoformat(),
            "naive": at.replace(tzinfo=None).isoformat(), "seconds": int(at.timestamp()),
            "millis": int(at.timestamp() * 1000)}[form]


@pytest.mark.parametrize("form", ["iso", "offset", "naive", "seconds", "millis"])
def test_a_finding_detected_more_than_five_minutes_after_the_clock_is_refused_as_in_the_future(form):
    for sent in (_ahead(6, form), "2099-01-01T00:00:00Z"):
        with pytest.raises(InvalidInput) as refused:
            validate_findings([finding(), finding(detectedAt=sent)])
        [error] = refused.value.errors
        assert error.pointer == "/1/detectedAt" and "in the future" in error.detail


@pytest.mark.parametrize("form", ["iso", "offset", "naive", "seconds", "millis"])
def test_a_detection_time_up_to_five_minutes_ahead_of_the_clock_is_a_senders_clock_skew_and_taken(form):
    for sent in (_ahead(4, form), _ahead(-60 * 24 * 400, form)):
        assert len(parse_findings(body(finding(detectedAt=sent)))) == 1


def _outcome(fn, raw):
    """What a decoder makes of a body: its value, or the problem's class and the pointers it names."""
    try:
        return fn(raw)
    except (InvalidInput, MalformedBody) as exc:
        return type(exc).__name__, [e.pointer for e in exc.errors]


_DEEP = "[" * (MAX_DEPTH - 2) + "1" + "]" * (MAX_DEPTH - 2)  # at /0/x, MAX_DEPTH containers in all: kept
_TOO_DEEP = "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1)


@pytest.mark.parametrize("raw", [
    '[{"x": 18446744073709551615, "y": -9223372036854775808}]', '[{"x": 18446744073709551616}]',
    '[{"x": [1, -9223372036854775809]}]', '[{"x": ' + "9" * 4401 + "}]", f'[{{"x": {_DEEP}}}]',
    f'[{{"x": {_TOO_DEEP}}}]', '[{"x": ' + "[" * 5000 + "]" * 5000 + "}]", '[{"x": "a\\ud800"}]',
    '[{"x\\udc00": 1}]', '[{"x": "\\ud83d\\ude00"}]', '[{"x": NaN}]', '[{"x": 1e400}]', '[{"x": "\x01"}]', "",
    '{"a": 1,}', '"just text"', "12345678901234567890123", '[{"x": "\xff"}]',
], ids=lambda raw: raw[:40])
def test_the_tolerant_readers_decoder_takes_and_names_exactly_what_decode_json_does(raw):
    sent = raw.encode("utf-8", "surrogatepass") if "\xff" not in raw else raw.encode("latin-1")
    assert _outcome(plain_json, sent) == _outcome(decode_json, sent)


def test_a_body_with_unknown_fields_is_decoded_by_msgspec_not_by_the_stdlib(monkeypatch):
    # json + its audit walk took ~8 µs a finding of the ~16 a finding with unknown fields cost; msgspec and one lean
    # walk take ~3. decode_json stays the namer of what msgspec or the walk doubts.
    def refused(_):
        raise AssertionError("decode_json called for a body msgspec reads")

    monkeypatch.setattr(generic, "decode_json", refused)
    [f, g] = parse_findings(body([finding(vendr="V300", tenant={"id": 7}), finding(confidence=0.7)]))
    assert f.extensions == {"vendr": "V300", "tenant": {"id": 7}} and g.extensions == {"confidence": 0.7}


@pytest.mark.parametrize("extra, status, where", [
    ({"vendr": 2 ** 64}, InvalidInput, "/1/vendr"),
    ({"vendr": {"deep": json.loads(_TOO_DEEP)}}, MalformedBody, "/1/vendr/deep" + "/0" * (MAX_DEPTH - 3)),
], ids=["integer past 64 bits", "nested past MAX_DEPTH"])
def test_unknown_fields_past_the_apps_limits_are_named_where_they_were_sent(extra, status, where):
    with pytest.raises(status) as refused:
        parse_findings(body([finding(), finding(**extra)]))
    assert [e.pointer for e in refused.value.errors] == [where]
