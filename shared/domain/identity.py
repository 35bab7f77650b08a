"""Who is calling: the Easy Auth principal (App Service authentication) or a flow's signed payload.

Easy Auth puts the signed-in user in `X-MS-CLIENT-PRINCIPAL`, base64 JSON
`{"auth_typ", "name_typ", "role_typ", "claims": [{"typ", "val"}]}`, and strips any copy a client sends.
The app trusts that header only where Easy Auth is on (WEBSITE_AUTH_ENABLED) or on the local host.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from .errors import FieldError, MalformedHeader, Unauthorized, Unavailable
from .keyvault import is_reference

_OID = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_NAME = ("preferred_username", "name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
         "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress")
_ROLE = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")


@dataclass(frozen=True, slots=True)
class Principal:
    id: str
    name: str
    roles: frozenset[str]
    via: str  # "easy-auth" or "flow"

    def holds(self, role: str | None) -> bool:
        return role is None or role in self.roles


def from_easy_auth(header: str) -> Principal:
    """The principal in an X-MS-CLIENT-PRINCIPAL header: 400 naming the header when it is not base64 of a JSON
    object with a list of {typ, val} claims, 401 when it names no user."""
    try:
        doc = json.loads(base64.b64decode(header + "=" * (-len(header) % 4)).decode("utf-8"))
    except (ValueError, RecursionError):  # not base64, not UTF-8, not JSON, an integer of thousands of digits
        raise _malformed("is not base64 of JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("claims", []), list):
        raise _malformed("is not an object with a list of claims")
    claims = []
    for c in doc.get("claims") or []:
        if not isinstance(c, dict) or not _text(c.get("typ")) or not _text(c.get("val"), scalar=True):
            raise _malformed("holds a claim that is not {typ: text, val: text}")
        claims.append((c["typ"], str(c["val"])))
    if not _text(doc.get("name_typ"), optional=True) or not _text(doc.get("role_typ"), optional=True):
        raise _malformed("has a name_typ or role_typ that is not text")
    name_types = (doc.get("name_typ"), *_NAME)
    role_types = {doc.get("role_typ"), *_ROLE}

    def first(types: tuple) -> str | None:
        return next((v for t in types for typ, v in claims if typ == t and t), None)

    name = first(name_types)
    pid = first(_OID) or name
    if not pid:
        raise Unauthorized("the principal names no user", [FieldError(_HEADER, "names no user")])
    return Principal(pid, name or pid, frozenset(v for t, v in claims if t in role_types), "easy-auth")


_HEADER = "header:X-MS-CLIENT-PRINCIPAL"


def _malformed(why: str) -> MalformedHeader:
    return MalformedHeader(f"X-MS-CLIENT-PRINCIPAL {why}.", [FieldError(_HEADER, why)])


def _text(value: Any, optional: bool = False, scalar: bool = False) -> bool:
    """Whether a claim part is text a store can keep: no lone surrogates (a \\ud800 escape decodes to one)."""
    if value is None:
        return optional
    if scalar and isinstance(value, (int, float)) and not isinstance(value, bool):
        return True
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def flow_signature(key: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def from_flow(key: str, body: bytes, signature: str | None, approver: Any) -> Principal:
    """The responder an approval flow reports, trusted only with a valid HMAC of the body (401 otherwise). A key
    that is an unresolved Key Vault reference is refused before any signature is checked (503): its text is
    public (infra/modules/functionapp.bicep), so anyone could sign a body with it."""
    if is_reference(key):
        raise Unavailable("APPROVAL_FLOW_KEY holds an unresolved Key Vault reference, so no flow's answer can be "
                          "believed; grant the app's identity access to the secret, then restart the app.", 300,
                          setting="APPROVAL_FLOW_KEY")
    if not key or not signature or not hmac.compare_digest(signature, flow_signature(key, body)):
        raise Unauthorized("the flow's signature does not verify")
    if not isinstance(approver, dict) or not isinstance(approver.get("id"), str) or not approver["id"]:
        raise Unauthorized("the flow's payload names no approver")
    roles = approver["roles"] if isinstance(approver.get("roles"), list) else []
    return Principal(approver["id"], str(approver.get("name") or approver["id"]),
                     frozenset(str(r) for r in roles), "flow")
