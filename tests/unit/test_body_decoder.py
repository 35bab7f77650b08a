"""The one decoder of JSON request bodies: what JSON allows but the app cannot keep is a 400 or 422 naming where,
never an exception from deep inside json, msgspec or the store."""
import base64
import json

import pytest

from shared.domain.errors import InvalidInput, MalformedBody, MalformedHeader, Unauthorized, Unavailable
from shared.domain.identity import from_easy_auth
from shared.ingest import celonis, process_mining
from shared.ingest.generic import MAX_DEPTH, decode_json, parse_findings
from shared.ingest.outcomes import parse_outcomes
from tests.factories import finding

HUGE = "1" * 4401


def nested(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


def pointers(exc) -> list[str]:
    return [e.pointer for e in exc.value.errors]


def test_integer_of_4401_digits_is_a_422_naming_the_field():
    with pytest.raises(InvalidInput) as exc:
        decode_json(f'{{"reason": "x", "limits": {{"cap": {HUGE}}}}}'.encode())
    assert pointers(exc) == ["/limits/cap"] and "4401 digits" in exc.value.errors[0].detail


def test_integers_are_kept_up_to_64_bits_and_refused_past_them():
    assert decode_json(b'[-9223372036854775808, 18446744073709551615, 12]') == [-2 ** 63, 2 ** 64 - 1, 12]
    with pytest.raises(InvalidInput) as exc:
        decode_json(b'{"a": [1, 18446744073709551616]}')
    assert pointers(exc) == ["/a/1"]


def test_a_body_that_is_not_utf8_is_a_400_naming_the_string_that_holds_the_byte():
    with pytest.raises(MalformedBody) as exc:
        decode_json(b'{"caseKey": "INV-\xff-1"}')
    assert pointers(exc) == ["/caseKey"] and "byte 17" in exc.value.errors[0].detail


def test_lone_surrogates_in_values_and_names_are_a_422_naming_them():
    with pytest.raises(InvalidInput) as exc:
        decode_json(b'{"notes": "a\\ud800b", "ok": "\\ud83d\\ude00", "k\\udc00": 1}')
    assert sorted(pointers(exc)) == ["/k\udc00", "/notes"]
    assert decode_json(b'"\\ud83d\\ude00"') == "\U0001F600"  # a pair is one character, and welcome


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 1000, 50_000])
def test_nesting_past_the_limit_is_a_400_naming_where_it_passes_it(levels):
    with pytest.raises(MalformedBody) as exc:
        decode_json(f'{{"a": [0, {{"b": {nested(levels)}}}]}}'.encode())
    # {a:[0,{b:...}]} holds three containers before b's value, so the limit is passed MAX_DEPTH - 3 levels into it.
    assert pointers(exc) == ["/a/1/b" + "/0" * (MAX_DEPTH - 3)]


def test_nesting_up_to_the_limit_is_kept():
    assert decode_json(nested(MAX_DEPTH).encode())


def test_a_byte_order_mark_is_ignored():
    assert decode_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


@pytest.mark.parametrize("raw, where, refused", [
    (json.dumps([finding(), finding(attributes={"x": 0})]).replace('"x": 0', f'"x": {HUGE}').encode(),
     "/1/attributes/x", InvalidInput),
    (json.dumps(finding(attributes={"x": 0})).replace('"x": 0', f'"x": {nested(1000)}').encode(),
     "/attributes/x" + "/0" * (MAX_DEPTH - 2), MalformedBody),
    (json.dumps(finding(attributes={"x": 0})).replace('"x": 0', f'"x": {nested(100)}').encode(),
     "/attributes/x" + "/0" * (MAX_DEPTH - 2), MalformedBody),
    (json.dumps(finding(caseKey="C-1")).replace("C-1", "C\\udfff").encode(), "/caseKey", InvalidInput),
])
def test_findings_that_the_app_cannot_keep_are_refused_naming_the_field(raw, where, refused):
    with pytest.raises(refused) as exc:
        parse_findings(raw)
    assert where in pointers(exc)


def test_findings_that_are_not_utf8_are_a_400_naming_the_field():
    raw = json.dumps(finding(caseKey="C-1")).replace("C-1", "C-\udcff").encode("utf-8", "surrogateescape")
    with pytest.raises(MalformedBody) as exc:
        parse_findings(raw)
    assert pointers(exc) == ["/caseKey"]


def _event(value: str) -> bytes:
    return json.dumps({"subscriberId": "s", "triggerId": "t", "creationDate": "2026-11-20T08:00:00Z",
                       "event": {"id": "e1", "identifier": "INV-1", "fields": [{"id": "AMOUNT", "value": 0}]}}
                      ).replace('"value": 0', f'"value": {value}').encode()


@pytest.mark.parametrize("value, refused", [(HUGE, InvalidInput), (nested(1000), MalformedBody)])
def test_celonis_events_that_the_app_cannot_keep_are_refused_naming_the_field(value, refused):
    with pytest.raises(refused) as exc:
        celonis.normalize(_event(value), {"processArea": "ap", "deviationPattern": "late"})
    assert pointers(exc)[0].startswith("/event/fields/0/value")


def test_celonis_bodies_that_are_not_utf8_are_a_400():
    with pytest.raises(MalformedBody):
        celonis.normalize(_event('"\xff"'.encode("latin-1").decode("latin-1")).replace(b"\xc3\xbf", b"\xff"),
                          {"processArea": "ap", "deviationPattern": "late"})


@pytest.mark.parametrize("body, where, refused", [
    (f'{{"businessRuleStatistics": [{{"name": "A", "value": {nested(1000)}}}]}}',
     "/businessRuleStatistics/0/value" + "/0" * (MAX_DEPTH - 3), MalformedBody),
    (f'{{"businessRuleStatistics": [{{"name": "A", "count": {HUGE}}}]}}', "/businessRuleStatistics/0/count",
     InvalidInput),
])
def test_process_mining_bodies_that_the_app_cannot_keep_are_refused_naming_the_field(body, where, refused):
    with pytest.raises(refused) as exc:
        process_mining.normalize(body.encode(), "application/json", {"processArea": "o2c", "deviationPattern": "late"})
    assert pointers(exc) == [where]


def test_a_csv_cell_of_4401_digits_is_named_and_quoted_short():
    csv = f"Name,Start Date,End Date,Metric Value,Severity\nA,{HUGE},2026-01-01,1,2\n".encode()
    with pytest.raises(InvalidInput) as exc:
        process_mining.normalize(csv, "text/csv", {"processArea": "o2c", "deviationPattern": "late"})
    assert pointers(exc) == ["/rows/0/Start Date"] and len(exc.value.errors[0].detail) < 130


@pytest.mark.parametrize("field, value", [("caseKey", '"INV\\ud800"'), ("value", HUGE)])
def test_outcomes_that_the_app_cannot_keep_are_a_422_naming_the_field(field, value):
    item = {"processArea": "ap", "caseKey": "INV-1", "metric": "cycle_time_days", "value": 1,
            "observedAt": "2026-12-03T10:00:00Z"}
    raw = json.dumps([item, {**item, field: "PLACEHOLDER"}]).replace('"PLACEHOLDER"', value).encode()
    with pytest.raises(InvalidInput) as exc:
        parse_outcomes(raw)
    assert pointers(exc) == [f"/1/{field}"]


def _header(doc) -> str:
    return base64.b64encode(doc if isinstance(doc, bytes) else json.dumps(doc).encode()).decode()


@pytest.mark.parametrize("doc", [[1, 2], {"claims": {"typ": "x"}}, {"claims": [["roles", "x"]]},
                                 {"claims": [{"typ": "roles", "val": {"a": 1}}]},
                                 f'{{"claims": [], "n": {HUGE}}}'.encode(), nested(5000).encode(),
                                 b'{"claims": [{"typ": "name", "val": "\\ud800"}]}', b"\xff\xfe", b"not json"])
def test_a_principal_header_that_is_not_a_claims_object_is_a_400_naming_the_header(doc):
    with pytest.raises(MalformedHeader) as exc:
        from_easy_auth(_header(doc))
    assert exc.value.status == 400 and exc.value.errors[0].to_dict()["header"] == "X-MS-CLIENT-PRINCIPAL"


def test_a_principal_that_names_no_user_is_still_a_401():
    with pytest.raises(Unauthorized):
        from_easy_auth(_header({"claims": [{"typ": "roles", "val": "Autonomy.Admin"}]}))
    who = from_easy_auth(_header({"claims": [{"typ": "preferred_username", "val": "ana@contoso.com"},
                                             {"typ": "roles", "val": "Autonomy.Admin"}]}))
    assert who.id == "ana@contoso.com" and who.holds("Autonomy.Admin")


def test_unavailable_is_a_503_that_says_when_to_try_again():
    down = Unavailable("Table storage did not answer.", retry_after=2.2)
    assert down.status == 503 and down.headers == {"Retry-After": "3"}
