"""The watchdog's check: does the system of record now look the way the action promised?

A verify policy names a record field and what it must hold, e.g.
`{"field": "invoice.status", "equals": "awaiting_vendor"}`; `notEquals` and `in` work the same way.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


def record_ref(policy: Mapping[str, Any]) -> tuple[str, str] | None:
    """(record type, field) the policy looks at, or None for an action with nothing to verify."""
    path = policy.get("field")
    if not path or "." not in path:
        return None
    kind, name = path.split(".", 1)
    return kind, name


def check(policy: Mapping[str, Any], record: Mapping[str, Any] | None) -> tuple[bool, str]:
    """(holds, why) for one record snapshot; a policy without a field always holds."""
    ref = record_ref(policy)
    if ref is None:
        return True, "no post-condition to verify"
    kind, name = ref
    if record is None:
        return False, f"no {kind} record to verify"
    value: Any = record
    for part in name.split("."):
        value = value.get(part, _MISSING) if isinstance(value, Mapping) else _MISSING
    shown = "missing" if value is _MISSING else repr(value)
    if "equals" in policy:
        ok = value is not _MISSING and value == policy["equals"]
        return ok, f"{kind}.{name} is {shown}, expected {policy['equals']!r}"
    if "notEquals" in policy:
        ok = value is not _MISSING and value != policy["notEquals"]
        return ok, f"{kind}.{name} is {shown}, expected anything but {policy['notEquals']!r}"
    if "in" in policy:
        ok = value is not _MISSING and value in policy["in"]
        return ok, f"{kind}.{name} is {shown}, expected one of {policy['in']!r}"
    return value is not _MISSING, f"{kind}.{name} is {shown}"
