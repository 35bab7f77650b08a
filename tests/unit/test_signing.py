"""Signed Celonis events: the signature as Celonis computes it (checked here with the stdlib alone), refusals that
tell an attacker nothing, and the ±5-minute replay window."""
import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.errors import InvalidInput, Unauthorized
from shared.ingest import signing
from tests.factories import validated
from tests.factories import finding as finding_doc

SECRET = "s3cret-from-the-management-dashboard"
BODY = b'{"caseKey": "INV-1", "processArea": "accounts-payable"}'
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def celonis_signature(secret: str, body: bytes) -> str:
    """What the Celonis docs' snippet computes: CryptoJS.enc.Base64.stringify(CryptoJS.HmacSHA256(body, secret))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def refusal(**headers):
    with pytest.raises(Unauthorized) as exc:
        signing.verify(SECRET, BODY, headers.get("signature"), headers.get("presented"))
    return exc.value


def test_the_signature_is_base64_of_hmac_sha256_of_the_raw_body():
    assert signing.sign(SECRET, BODY) == celonis_signature(SECRET, BODY)


def test_a_body_signed_with_the_secret_is_accepted_as_proof_of_the_body_alone():
    assert signing.verify(SECRET, BODY, celonis_signature(SECRET, BODY), None) == signing.BODY_SIGNED


def test_the_secret_itself_in_the_subscription_header_is_accepted_as_proof_of_the_whole_request():
    assert signing.verify(SECRET, BODY, None, SECRET) == signing.SECRET_PRESENTED
    assert signing.verify(SECRET, BODY, celonis_signature(SECRET, BODY), SECRET) == signing.SECRET_PRESENTED


@pytest.mark.parametrize("headers", [
    {},
    {"signature": ""},
    {"signature": celonis_signature("another-secret", BODY)},
    {"signature": celonis_signature(SECRET, BODY + b" ")},  # the body was changed after signing
    {"signature": celonis_signature(SECRET, BODY).encode().hex()},  # hex, not Base64
    {"presented": SECRET + "x"},
    {"presented": "é" * 3},
])
def test_a_missing_or_wrong_signature_is_a_401_that_says_nothing_more(headers):
    error = refusal(**headers)
    assert error.status == 401
    assert [e.to_dict() for e in error.errors] == [{"header": "x-emporix-hmac", "detail": "missing or wrong"}]
    assert SECRET not in error.detail and "hmac" not in error.detail.lower()


def test_one_refusal_for_every_failure_so_an_attacker_cannot_tell_them_apart():
    missing, wrong = refusal(), refusal(signature=celonis_signature("x", BODY))
    assert (missing.detail, missing.errors) == (wrong.detail, wrong.errors)


def test_signatures_are_compared_in_constant_time(monkeypatch):
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(signing.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    signing.verify(SECRET, BODY, celonis_signature(SECRET, BODY), None)
    refusal(presented="guess")
    assert len(compared) == 2


@pytest.mark.parametrize("offset, stale", [(timedelta(0), False), (timedelta(minutes=5), False),
                                           (timedelta(minutes=-5), False), (timedelta(minutes=5, seconds=1), True),
                                           (timedelta(minutes=-5, seconds=-1), True), (timedelta(days=-1), True)])
def test_an_event_time_more_than_five_minutes_either_side_of_now_is_stale(offset, stale):
    assert signing.stale(NOW + offset, NOW) is stale


def test_a_replay_refusal_names_where_the_time_was_sent():
    error = signing.replayed("header:ce-time")
    assert error.status == 401 and error.errors[0].to_dict()["header"] == "ce-time"
    assert "5 minutes" in error.detail


# While events are signed, the unsigned generic route takes nothing in the signed route's name.

def claimed(*docs, many=True):
    with pytest.raises(InvalidInput) as exc:
        signing.refuse_claims(validated(*docs), many)
    return [e.to_dict() for e in exc.value.errors]


def test_findings_claiming_the_celonis_source_or_its_event_ids_are_refused_by_field():
    assert claimed(finding_doc(), finding_doc(source="celonis"), finding_doc(eventId="oe:1f2e")) == [
        {"pointer": "/1/source", "detail": signing.RESERVED_SOURCE},
        {"pointer": "/2/eventId", "detail": signing.RESERVED_ID}]
    assert claimed(finding_doc(eventId="celonis:sub:trigger:ev-1"), many=False)[0]["pointer"] == "/eventId"


@pytest.mark.parametrize("event_id", ["celonis:5f1c:ap-invoice-blocked:ev-1", "celonis-ce:/celonis/oe:1",
                                      "celonis-ceh:" + "0" * 64, "oe:" + "a" * 40])
def test_every_namespace_of_the_signed_route_is_reserved(event_id):
    assert claimed(finding_doc(eventId=event_id))[0]["pointer"] == "/0/eventId"


def test_other_sources_and_event_ids_pass():
    signing.refuse_claims(validated(finding_doc(source="celonis-export", eventId="ce:celonis:1")), True)
