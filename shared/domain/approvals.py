"""Approvals: a person's decision on a proposed action, bound to a signed, expiring, single-use token.

The token is HMAC-SHA256 over (approval id, expiry, nonce) with a key from settings (Key Vault in Azure);
only its SHA-256 is stored, so the record alone cannot be replayed. Single use is the record's own
state: a decided approval refuses a second decision whatever token comes with it.

Approval ids end in an HMAC of (opportunity, kind, revision) under a key derived from the same signing
key: the opportunity id is an unsalted hash of the case key, so without it anyone who knows an invoice
number could compute the id of its approval.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import Conflict, Gone, Unauthorized

APPROVE, ENRICH, REVIEW, ESCALATE = "approve", "enrich", "review", "escalate"
DECISIONS = {"approve": "approved", "reject": "rejected"}
# The kinds an approval record can have, by the letter its id carries (x: an escalation, whose e is taken).
_KINDS = {"a": APPROVE, "e": ENRICH, "r": REVIEW, "x": ESCALATE}
_LEGACY = frozenset("ae")
_LETTERS = {kind: letter for letter, kind in _KINDS.items()}
# What a person may answer, by the kind of card: a review decides the case, an escalation settles what went wrong.
ANSWERS: dict[str, tuple[str, ...]] = {
    APPROVE: ("approve", "reject"),
    ENRICH: ("provide",),
    REVIEW: ("run", "provide", "handover", "dismiss"),
    ESCALATE: ("retry", "undo", "accept", "handover", "close"),
}
ALL_ANSWERS = tuple(dict.fromkeys(d for ds in ANSWERS.values() for d in ds))
# Domain separation: the id key is derived from the signing key, so an id's MAC is never a token's MAC.
_ID_LABEL = b"closedloop/approval-id/v1"
_ID_HEX = 32  # 128 bits of the HMAC: guessing one id takes ~2^127 tries
_ID = re.compile(r"^([0-9a-f]{32})-([a-z])(0|[1-9][0-9]{0,9})(?:-([0-9a-f]{32}))?$")


@dataclass(slots=True)
class Approval:
    id: str
    opportunityId: str
    kind: str
    actionId: str | None
    actionVersion: int | None
    requiredRole: str | None
    tokenHash: str
    createdAt: datetime
    expiresAt: datetime
    correlationId: str
    decision: str | None = None
    decidedBy: str | None = None
    decidedAt: datetime | None = None
    comment: str | None = None
    escalatedAt: datetime | None = None
    # The card's "Was this helpful?" answer, kept for the weekly review's feedback scores.
    helpful: bool | None = None
    # What the card offered and on what grounds (kind-specific, small): a review's candidate actions, an
    # escalation's options and recommended step, an approval's stage (1 or 2) and who approved before.
    context: dict[str, Any] = field(default_factory=dict)
    etag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "opportunityId": self.opportunityId, "kind": self.kind, "actionId": self.actionId,
                "actionVersion": self.actionVersion, "requiredRole": self.requiredRole,
                "createdAt": self.createdAt.isoformat(), "expiresAt": self.expiresAt.isoformat(),
                "decision": self.decision, "decidedBy": self.decidedBy,
                "decidedAt": self.decidedAt.isoformat() if self.decidedAt else None, "comment": self.comment,
                "helpful": self.helpful, "context": self.context}


@dataclass(frozen=True, slots=True)
class Choice:
    """What a person chose beyond the decision itself: a reviewer's action and parameters, an owner to hand the
    case to, a reason to close it."""

    actionId: str | None = None
    parameters: dict[str, Any] | None = None
    owner: str | None = None
    reason: str | None = None


def _id_mac(signing_key: bytes, opportunity_id: str, kind: str, revision: int) -> str:
    id_key = hmac.new(signing_key, _ID_LABEL, hashlib.sha256).digest()
    return hmac.new(id_key, f"{opportunity_id}|{kind}|{revision}".encode(), hashlib.sha256).hexdigest()[:_ID_HEX]


def approval_id(opportunity_id: str, kind: str, revision: int, signing_key: bytes) -> str:
    """`<opportunity>-<k><revision>-<hmac>`: stable per (opportunity, kind, revision) under one key, so a planner
    run again asks the same question, and unguessable without the key."""
    letter = _LETTERS.get(kind)
    if letter is None:
        raise ValueError(f"no approval kind {kind!r}")
    return f"{opportunity_id}-{letter}{revision}-{_id_mac(signing_key, opportunity_id, kind, revision)}"


def verify_id(signing_key: bytes, approval_id_: str) -> bool:
    """Whether the id is one this key made (its HMAC compared in constant time), or a pre-HMAC id
    (`<opportunity>-a3`), which still resolves: every route on it needs the approval's token or role."""
    m = _ID.match(approval_id_)
    if m is None or m.group(2) not in _KINDS:
        return False
    opportunity_id, letter, revision, mac = m.groups()
    if mac is None:  # only the kinds there were before ids carried their HMAC
        return letter in _LEGACY
    return hmac.compare_digest(mac, _id_mac(signing_key, opportunity_id, _KINDS[letter], int(revision)))


def opportunity_of(approval_id_: str) -> str | None:
    head, sep, _ = approval_id_.partition("-")
    return head if sep and len(head) == 32 and all(c in "0123456789abcdef" for c in head) else None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign(key: bytes, approval: str, expires_at: datetime) -> str:
    """A token for one approval: `<payload>.<mac>`, payload = base64url(id|expiry|nonce)."""
    payload = _b64(f"{approval}|{int(expires_at.timestamp())}|{secrets.token_hex(8)}".encode())
    return f"{payload}.{_mac(key, payload)}"


def signed_for(key: bytes, token: str, approval_id_: str) -> datetime:
    """The token's expiry when its signature verifies and it names this approval id; 401 otherwise.
    Needs no record, so a forged token is refused before anything is looked up."""
    payload, _, mac = (token or "").partition(".")
    if not payload or not mac or not token.isascii() or not hmac.compare_digest(mac, _mac(key, payload)):
        raise Unauthorized("the approval token's signature does not verify")
    try:
        bound, expiry, _nonce = _unb64(payload).decode().split("|")
        expires = datetime.fromtimestamp(int(expiry), UTC)
    except ValueError as exc:
        raise Unauthorized("the approval token is malformed") from exc
    if not hmac.compare_digest(bound.encode(), approval_id_.encode()):
        raise Unauthorized("the token belongs to another approval")
    return expires


def _bound(key: bytes, token: str, approval: Approval) -> datetime:
    expires = signed_for(key, token, approval.id)
    if not hmac.compare_digest(token_hash(token), approval.tokenHash):
        raise Unauthorized("the token belongs to another approval")
    return expires


def check_view(key: bytes, token: str, approval: Approval, now: datetime) -> None:
    """A token that may show its approval: 401 forged or foreign, 410 once expired; a used one still may."""
    if now >= min(_bound(key, token, approval), approval.expiresAt):
        raise Gone(f"approval {approval.id} expired at {approval.expiresAt.isoformat()}")


def check(key: bytes, token: str, approval: Approval, now: datetime) -> None:
    """Raise 401 for a forged or foreign token, 410 once expired, 409 once used."""
    expires = _bound(key, token, approval)
    if approval.decision is not None:
        raise Conflict(f"approval {approval.id} was already decided: {approval.decision}")
    if now >= min(expires, approval.expiresAt):
        raise Gone(f"approval {approval.id} expired at {approval.expiresAt.isoformat()}")


def new_approval(opportunity_id: str, revision: int, kind: str, action_id: str | None,
                 action_version: int | None, role: str | None, key: bytes, now: datetime, ttl: timedelta,
                 correlation_id: str, context: dict[str, Any] | None = None) -> tuple[Approval, str]:
    """The approval record and its token (the token goes on the card only, never into a record)."""
    aid = approval_id(opportunity_id, kind, revision, key)
    expires = now + ttl
    token = sign(key, aid, expires)
    return Approval(aid, opportunity_id, kind, action_id, action_version, role, token_hash(token), now, expires,
                    correlation_id, context=dict(context or {})), token
