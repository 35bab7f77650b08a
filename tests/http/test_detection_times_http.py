"""Detection times the app cannot keep, over a real socket: a time that leaves the years 1 to 9999 once in UTC, and
one in the future, are refused by name on every ingest route (never a 500), with nothing stored."""
import json

import pytest

from shared.domain.opportunity import opportunity_id
from tests.factories import finding

OUT_OF_RANGE = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+05:00"]
FUTURE = "2099-01-01T00:00:00Z"
# What is sent, and what the 422 says of it.
REFUSED = [*((t, "outside the years 1 to 9999") for t in OUT_OF_RANGE), (FUTURE, "in the future")]
CASE = {"processArea": "accounts-payable", "deviationPattern": "invoice-missing-po"}


def _nothing_stored(api, case_key):
    return api.get(f"/opportunities/{opportunity_id(CASE['processArea'], CASE['deviationPattern'], case_key)}"
                   ).status_code == 404


def _named(r):
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return [(e.get("pointer") or e.get("header"), e["detail"]) for e in r.json()["errors"]]


@pytest.mark.parametrize("sent, says", REFUSED)
def test_a_findings_detection_time_the_app_cannot_keep_is_a_422_naming_detected_at(api, sent, says):
    item = finding(caseKey=f"DT-G-{sent[:4]}", detectedAt=sent)
    [(where, detail)] = _named(api.post("/findings", json=item))
    assert where == "/detectedAt" and says in detail
    assert _nothing_stored(api, item["caseKey"])


@pytest.mark.parametrize("sent, says", REFUSED)
def test_a_cloudevents_time_the_app_cannot_keep_is_a_422_naming_it(api, sent, says):
    case = f"DT-CE-{sent[:4]}"
    headers = {"content-type": "application/json", "ce-specversion": "1.0", "ce-id": f"dt-{sent}",
               "ce-source": "/tests/detection-times", "ce-type": "ap.invoice.blocked", "ce-time": sent}
    named = _named(api.post("/findings", data=json.dumps({**CASE, "caseKey": case}), headers=headers))
    assert any(where == "ce-time" and says in detail for where, detail in named), named
    assert _nothing_stored(api, case)


def _envelope(created):
    return {"subscriberId": "sub-dt", "triggerId": "ap-invoice-blocked", "creationDate": created, "offset": 1,
            "event": {"id": f"dt-{created}", "fields": [{"id": "INVOICE_ID", "value": f"DT-C-{created[:4]}",
                                                          "type": "STRING"}]}}


@pytest.mark.parametrize("sent, says", REFUSED)
def test_a_celonis_events_creation_date_the_app_cannot_keep_is_a_422_naming_it(api, sent, says):
    named = _named(api.post("/findings/celonis", json=_envelope(sent)))
    assert any(where == "/creationDate" and says in detail for where, detail in named), named
    assert "sub-dt" not in json.dumps(api.get("/sources").json())  # no offset recorded from a refused request
