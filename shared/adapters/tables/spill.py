"""Text longer than one Azure Tables property holds, written across several and joined on read.

Why: a string property holds at most 64 KiB of UTF-16 (Azurite enforces it too: 400
PropertyValueTooLarge), while an entity holds 1 MiB. A flow's evidence, a long status history or a state
document can pass the first limit, and a write refused there would leave an action done but not recorded.
A long value `v` of property `p` is stored as `p`, `p_1`, `p_2`, ... and the entity lists the names in
`spilled`; a read that finds `spilled` joins the parts back, so no caller sees the split.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

# 15,000 characters fit in 64 KiB even if every one needs a UTF-16 surrogate pair.
PART = 15_000
MARKER = "spilled"


def spill(out: dict[str, Any], key: str, value: str) -> None:
    """Put `value` under `key` and its continuation properties, and name `key` in the marker."""
    out[key] = value[:PART]
    for i, start in enumerate(range(PART, len(value), PART), 1):
        out[f"{key}_{i}"] = value[start:start + PART]
    out[MARKER] = f"{out[MARKER]},{key}" if MARKER in out else key


def gather(entity: dict[str, Any]) -> bool:
    """Join spilled properties back in place; False when a projection left parts out (read it whole)."""
    for key in entity[MARKER].split(","):
        if key not in entity:
            continue  # not selected
        parts, i = [entity[key]], 1
        while f"{key}_{i}" in entity:
            parts.append(entity.pop(f"{key}_{i}"))
            i += 1
        if i == 1:
            return False
        entity[key] = "".join(parts)
    del entity[MARKER]
    return True


def select_with_marker(select: Iterable[str] | None) -> list[str] | None:
    """A projection that also brings the marker (so a spilled property in it is noticed) and the keys
    (so the entity can then be read whole)."""
    return None if select is None else list(dict.fromkeys([*select, MARKER, "PartitionKey", "RowKey"]))


def joined(entity: dict[str, Any], whole: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The entity with spilled text joined, reading it whole (`whole`) when a projection cut parts off."""
    if not entity.get(MARKER):  # Azure returns a selected property an entity lacks as null
        entity.pop(MARKER, None)
        return entity
    if gather(entity):
        return entity
    full = whole()  # read through the same query, so already joined
    return {k: full.get(k) for k in entity if k != MARKER} | {"etag": entity.get("etag", full.get("etag"))}
