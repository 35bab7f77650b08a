"""Approval tokens: signed, bound to one approval, expiring, single-use; only their hash is stored."""
from datetime import timedelta

import pytest

from shared.domain.approvals import approval_id, check, new_approval, opportunity_of
from shared.domain.errors import Conflict, Gone, Unauthorized
from tests.factories import NOW

KEY = b"k" * 32
OPP = "0123456789abcdef0123456789abcdef"


def fresh(ttl_hours=24):
    return new_approval(OPP, 3, "approve", "ap.post-gl-adjustment", 1, "ap-supervisor", KEY, NOW,
                        timedelta(hours=ttl_hours), "cid")


def test_a_fresh_token_verifies_and_the_record_keeps_only_its_hash():
    approval, token = fresh()
    check(KEY, token, approval, NOW + timedelta(hours=1))
    assert token not in repr(approval.to_dict()) and approval.tokenHash != token


def test_a_forged_or_tampered_token_is_401():
    approval, token = fresh()
    payload, _, mac = token.partition(".")
    for bad in ("", "x.y", f"{payload}.{mac[:-2]}AA", f"{payload}x.{mac}"):
        with pytest.raises(Unauthorized):
            check(KEY, bad, approval, NOW)
    with pytest.raises(Unauthorized):
        check(b"another key", token, approval, NOW)


def test_a_token_for_another_approval_is_401():
    approval, _ = fresh()
    _, other = new_approval(OPP, 4, "approve", "ap.post-gl-adjustment", 1, "ap-supervisor", KEY, NOW,
                            timedelta(hours=1), "cid")
    with pytest.raises(Unauthorized):
        check(KEY, other, approval, NOW)


def test_an_expired_token_is_410_and_a_used_one_is_409():
    approval, token = fresh(ttl_hours=1)
    with pytest.raises(Gone):
        check(KEY, token, approval, NOW + timedelta(hours=1, seconds=1))
    approval.decision = "approved"
    with pytest.raises(Conflict):
        check(KEY, token, approval, NOW)


def test_approval_ids_are_deterministic_and_name_their_opportunity():
    assert approval_id(OPP, "approve", 3) == approval_id(OPP, "approve", 3) == f"{OPP}-a3"
    assert opportunity_of(f"{OPP}-a3") == OPP and opportunity_of("nope") is None
