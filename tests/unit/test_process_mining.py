"""`POST /api/findings/process-mining`: refresh trigger bodies and designer CSV exports into findings."""
import json
from pathlib import Path

import pytest

from shared.domain.errors import InvalidInput, MalformedBody
from shared.domain.findings import KpiImpact, instant
from shared.ingest import process_mining

ROOT = Path(__file__).resolve().parents[2]
O2C = {"processArea": "order-to-cash", "deviationPattern": "delivery-sla-at-risk"}
HEADER = "Name,Index,Start Date,End Date,Event Count,Metric Value,Severity\n"


def stat(name="ORD-1", index=0, category=2, value="5.5", start=1763500000, end=1763600000, count=7):
    return {"name": name, "valueIndex": index, "startDate": start, "endDate": end, "count": count,
            "value": value, "category": category}


def refresh(*stats):
    return {"businessRuleSummaryStatistics": {"totalCount": len(stats), "errorCount": 0, "warningCount": 0,
                                              "okCount": 0, "undefinedCount": 0},
            "businessRuleStatistics": list(stats)}


def normalize(payload, **params):
    return process_mining.normalize(json.dumps(payload).encode(), "application/json", {**O2C, **params})


def from_csv(text, **params):
    return process_mining.normalize(text.encode(), "text/csv; charset=utf-8", {**O2C, **params})


def rejected(call, *args, **params):
    with pytest.raises(InvalidInput) as exc:
        call(*args, **params)
    return exc.value


def test_each_case_becomes_one_finding_and_ok_cases_are_skipped():
    result = process_mining.normalize((ROOT / "samples" / "process-mining-o2c-sla.json").read_bytes(),
                                      "application/json", O2C)
    assert (len(result.findings), result.skipped) == (10, 1)
    assert "SO-77999" not in {f.caseKey for f in result.findings}
    assert {f.source for f in result.findings} == {"process-mining"}


def test_metric_sent_as_text_is_parsed_as_a_number():
    f = normalize(refresh(stat(value="5.5"))).findings[0]
    assert f.attributes["metricValue"] == 5.5
    assert normalize(refresh(stat(value=""))).findings[0].attributes.get("metricValue") is None


def test_category_sets_the_severity_and_an_unknown_one_leaves_it_open():
    findings = normalize(refresh(stat("A", category=2), stat("B", category=1), stat("C", category=7))).findings
    assert [f.severity for f in findings] == ["high", "medium", None]


def test_attributes_carry_metric_event_count_dates_index_and_business_rule():
    f = normalize(refresh(stat(index=3)), businessRule="Late delivery").findings[0]
    assert f.attributes == {"metricValue": 5.5, "eventCount": 7, "startDate": "2025-11-18T21:06:40Z",
                            "endDate": "2025-11-20T00:53:20Z", "valueIndex": 3, "businessRule": "Late delivery"}


def test_redelivered_refresh_keeps_its_event_ids():
    first = normalize(refresh(stat()), businessRule="Late delivery").findings[0].eventId
    assert first == normalize(refresh(stat()), businessRule="Late delivery").findings[0].eventId
    assert first == "pm:Late delivery:ORD-1:1763500000:1763600000:0"
    assert normalize(refresh(stat())).findings[0].eventId.startswith("pm:delivery-sla-at-risk:ORD-1:")


def test_detected_at_is_the_end_date_or_the_start_date_without_one():
    ended, open_ = normalize(refresh(stat("A"), stat("B", end=0))).findings
    assert instant(ended.detectedAt) == instant(1763600000) and instant(open_.detectedAt) == instant(1763500000)
    error = rejected(normalize, refresh(stat(start=None, end=None)))
    assert [e.pointer for e in error.errors] == ["/businessRuleStatistics/0/endDate"]


def test_epoch_seconds_and_milliseconds_give_the_same_dates():
    secs = normalize(refresh(stat())).findings[0]
    millis = normalize(refresh(stat(start=1763500000000, end=1763600000000))).findings[0]
    assert secs.attributes["startDate"] == millis.attributes["startDate"]
    assert instant(secs.detectedAt) == instant(millis.detectedAt)


def test_missing_process_area_and_deviation_pattern_name_the_query_parameters():
    with pytest.raises(InvalidInput) as exc:
        process_mining.normalize(json.dumps(refresh(stat())).encode(), "application/json", {})
    assert {e.pointer for e in exc.value.errors} == {"?processArea", "?deviationPattern"}


def test_metric_in_days_or_hours_with_a_cost_of_delay_becomes_the_impact():
    days = normalize(refresh(stat(value="2")), metricUnit="days", costOfDelayPerDay="100").findings[0]
    assert days.kpiImpact == KpiImpact(daysSaved=2.0, costOfDelayPerDay=100.0) and days.impact_money() == 200
    hours = normalize(refresh(stat(value="12")), metricUnit="hours", costOfDelayPerDay="100").findings[0]
    assert hours.impact_money() == 50
    money = normalize(refresh(stat(value="1234.5")), metricUnit="money").findings[0]
    assert money.impact_money() == 1234.5
    assert normalize(refresh(stat())).findings[0].kpiImpact is None


def test_cost_of_delay_needs_a_duration_and_a_duration_needs_a_cost():
    assert [e.pointer for e in rejected(normalize, refresh(stat()), costOfDelayPerDay="100").errors] == ["?metricUnit"]
    assert [e.pointer for e in rejected(normalize, refresh(stat()), metricUnit="days").errors] == \
           ["?costOfDelayPerDay"]
    assert [e.pointer for e in rejected(normalize, refresh(stat()), metricUnit="weeks").errors] == ["?metricUnit"]


def test_metric_that_is_not_a_number_points_at_its_statistic():
    error = rejected(normalize, refresh(stat("A"), stat("B", value="n/a"), stat("C"), stat("D", value="fast")))
    assert [e.pointer for e in error.errors] == ["/businessRuleStatistics/1/value", "/businessRuleStatistics/3/value"]
    assert error.extra["invalidIndexes"] == [1, 3]


def test_malformed_statistics_are_named_together_with_their_indexes():
    bad = stat("B")
    del bad["name"]
    error = rejected(normalize, refresh(stat("A"), bad, stat("C", count=-1)))
    assert {e.pointer for e in error.errors} == {"/businessRuleStatistics/1/name", "/businessRuleStatistics/2/count"}
    assert error.extra["invalidIndexes"] == [1, 2]


def test_event_id_too_long_for_a_finding_points_at_the_case_name():
    error = rejected(normalize, refresh(stat("X" * 250)))
    assert [e.pointer for e in error.errors] == ["/businessRuleStatistics/0/name"]


def test_more_than_a_thousand_deviations_are_rejected_but_ok_cases_do_not_count():
    with pytest.raises(InvalidInput, match="at most 1000"):
        normalize(refresh(*(stat(f"C{n}") for n in range(1001))))
    result = normalize(refresh(*(stat(f"C{n}") for n in range(1000)), *(stat(f"OK{n}", category=0) for n in range(5))))
    assert (len(result.findings), result.skipped) == (1000, 5)


def test_refresh_where_every_case_is_ok_gives_no_findings_but_an_empty_one_is_rejected():
    assert normalize(refresh(stat(category=0), stat("B", category=0))) == process_mining.Normalized([], 2)
    with pytest.raises(InvalidInput, match="empty"):
        normalize(refresh())


def test_body_that_is_not_json_is_malformed():
    with pytest.raises(MalformedBody):
        process_mining.normalize(b"{businessRuleStatistics", "application/json", O2C)


def test_csv_export_becomes_findings_whatever_the_column_order_and_case():
    text = ("severity,NAME,Metric Value,End Date,start date,Event Count,Index\n"
            "2,SO-1,2.5,2026-11-20 17:30:00,2026-11-10 08:00:00,12,0\n"
            "\n"
            "warning,SO-2,3.5,1795000000,2026-11-11T08:00:00Z,13,1\n")
    first, second = from_csv(text).findings
    assert (first.caseKey, first.severity, first.attributes["metricValue"]) == ("SO-1", "high", 2.5)
    assert first.attributes["endDate"] == "2026-11-20T17:30:00Z" and first.attributes["eventCount"] == 12
    assert (second.severity, second.attributes["endDate"]) == ("medium", "2026-11-18T11:06:40Z")


def test_csv_ok_rows_are_skipped_and_counted():
    text = HEADER + "SO-1,0,2026-11-10,2026-11-20,4,2.5,OK\nSO-2,1,2026-11-10,2026-11-20,4,2.5,0\n" \
                    "SO-3,2,2026-11-10,2026-11-20,4,2.5,error\n"
    result = from_csv(text)
    assert [f.caseKey for f in result.findings] == ["SO-3"] and result.skipped == 2


def test_csv_bad_cells_point_at_data_row_and_column_as_sent():
    text = ("Name,Index,start date,End Date,Event Count,Metric Value,Severity\n"
            "SO-1,0,2026-11-10 08:00:00,2026-11-20 17:30:00,12,2.5,2\n"
            "SO-2,1,yesterday,2026-11-20 17:30:00,12,lots,2\n"
            ",2,2026-11-10,2026-11-20,12,1,panic\n")
    error = rejected(from_csv, text)
    assert [e.pointer for e in error.errors] == ["/rows/1/start date", "/rows/1/Metric Value", "/rows/2/Severity",
                                                 "/rows/2/Name"]
    assert error.extra["invalidIndexes"] == [1, 2]


def test_csv_missing_column_is_named_in_the_header():
    text = "Name,Index,Start Date,End Date,Event Count,Metric Value\nSO-1,0,2026-11-10,2026-11-20,4,2.5\n"
    assert [e.pointer for e in rejected(from_csv, text).errors] == ["/header/Severity"]


def test_csv_from_a_semicolon_locale_with_a_byte_order_mark_is_read():
    text = "\ufeff" + HEADER.replace(",", ";") + "SO-1;0;2026-11-10;2026-11-20;4;2.5;2\n"
    assert from_csv(text).findings[0].caseKey == "SO-1"
    decimal_comma = rejected(from_csv, text.replace("2.5", "2,5"))
    assert [e.pointer for e in decimal_comma.errors] == ["/rows/0/Metric Value"]


def test_empty_csv_is_malformed():
    with pytest.raises(MalformedBody):
        from_csv("\n\n")


def test_case_key_attribute_copies_the_case_id_into_the_named_attribute():
    body = json.dumps({"businessRuleStatistics": [{"name": "SO-1", "startDate": 1763500000, "endDate": 1763600000,
                                                   "value": "2", "category": 2}]}).encode()
    result = process_mining.normalize(body, "application/json", {"processArea": "order-to-cash",
                                                  "deviationPattern": "delivery-sla-at-risk",
                                                  "caseKeyAttribute": "orderId"})
    assert result.findings[0].attributes["orderId"] == "SO-1"
    with pytest.raises(InvalidInput) as exc:
        process_mining.normalize(body, "application/json", {"processArea": "a", "deviationPattern": "b",
                                             "caseKeyAttribute": "order id!"})
    assert exc.value.errors[0].pointer == "?caseKeyAttribute"
