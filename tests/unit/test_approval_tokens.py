"""Approval tokens: signed, bound to one approval, expiring, single-use; only their hash is stored."""
from datetime import timedelta

import pytest

from shared.domain.approvals import approval_id, check, check_view, new_approval, opportunity_of, verify_id
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
    for bad in ("", "x.y", f"{payload}.{mac[:-2]}AA", f"{payload}x.{mac}", f"{payload}\ud800.{mac}", "é.é"):
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
    assert approval_id(OPP, "approve", 3, KEY) == approval_id(OPP, "approve", 3, KEY)
    assert approval_id(OPP, "approve", 3, KEY).startswith(f"{OPP}-a3-")
    assert opportunity_of(approval_id(OPP, "enrich", 3, KEY)) == OPP and opportunity_of("nope") is None
    assert fresh()[0].id == approval_id(OPP, "approve", 3, KEY)  # a planner run again asks the same question


def test_approval_id_cannot_be_computed_from_the_case_key():
    """Knowing the invoice number gives the opportunity id (an unsalted hash); the id needs the key too."""
    made = approval_id(OPP, "approve", 3, KEY)
    assert made != f"{OPP}-a3" and made != approval_id(OPP, "approve", 3, b"another key")
    head, _, suffix = made.rpartition("-")
    assert head == f"{OPP}-a3" and len(suffix) == 32 and int(suffix, 16) >= 0
    others = {approval_id(OPP, kind, rev, KEY) for kind in ("approve", "enrich") for rev in (3, 4)}
    assert len({i.rpartition("-")[2] for i in others}) == 4  # each (kind, revision) has its own suffix


def test_only_ids_this_key_made_verify_and_old_unsuffixed_ids_still_resolve():
    made = approval_id(OPP, "approve", 3, KEY)
    assert verify_id(KEY, made) and not verify_id(b"another key", made)
    flipped = made[:-1] + ("0" if made[-1] != "0" else "1")
    for bad in (flipped, made.replace("-a3-", "-a4-"), made.replace("-a3-", "-e3-"), made.upper(), made + "0",
                f"{OPP}-a03-{made[-32:]}", f"{OPP}-x3", "nope", ""):
        assert not verify_id(KEY, bad), bad
    assert verify_id(KEY, f"{OPP}-a3")  # stored before ids carried an HMAC: refused only by token and role checks


def test_a_used_token_may_still_show_its_approval_but_not_decide_again():
    approval, token = fresh(ttl_hours=1)
    approval.decision = "approved"
    check_view(KEY, token, approval, NOW)
    with pytest.raises(Conflict):
        check(KEY, token, approval, NOW)
    with pytest.raises(Gone):
        check_view(KEY, token, approval, NOW + timedelta(hours=2))
    with pytest.raises(Unauthorized):
        check_view(KEY, token[:-3] + "AAA", approval, NOW)
