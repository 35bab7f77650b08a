"""The contract fields that say *which* record an action changes or *whom* it addresses. A person may supply one
the finding lacks (enrichment), never change one it has; and a value one person supplied does not act on that
person's word alone (docs/review.md, docs/approvals.md)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .catalog import Action
from .contracts import properties

_ID = re.compile(r"[a-z]Id$")  # invoiceId, caseId, ownerId; not "Id" alone nor "ORDERID"


def fields(action: Action) -> frozenset[str]:
    """The identifying contract fields of `action`: a name ending in "Id" after a lowercase letter, the rate
    limit's entity field, those the contract lists in "x-identifying", and its personal data ("x-pii": the
    e-mails and phones it writes to)."""
    contract = action.dataContract
    limit = (action.rateLimit or {}).get("entityField")
    listed = {*(contract.get("x-identifying") or ()), *(contract.get("x-pii") or ())}
    return frozenset(n for n in properties(action) if _ID.search(n) or n == limit or n in listed)


def attribute_of(action: Action, name: str) -> str:
    """The finding attribute a contract field is read from (through the parameter map)."""
    return (action.parameterMap or {}).get(name, name)


def suppliers(action: Action, parameters: Mapping[str, Any], attributes: Mapping[str, Any],
              supplied: Mapping[str, str]) -> dict[str, str]:
    """The identifying fields of a plan whose value came from an attribute a person supplied: field -> that
    person's principal id. Such a plan needs someone else's approval."""
    out: dict[str, str] = {}
    for name in sorted(fields(action)):
        attr = attribute_of(action, name)
        if name in parameters and attr in supplied and str(attributes.get(attr)) == str(parameters[name]):
            out[name] = supplied[attr]
    return out


def because(by: Mapping[str, str]) -> str:
    """Why such a plan waits for another person: "invoiceId supplied by <id>: another person approves"."""
    return "; ".join(f"{name} supplied by {who}" for name, who in by.items()) + ": another person approves"
