"""The sandbox's system of record: a few in-memory collections, with records made up on first reference."""
from __future__ import annotations

import itertools
import threading
import zlib
from typing import Any, overload

Record = dict[str, Any]

# Singular record types (as verify policies name them: "invoice.status") → collection name.
COLLECTIONS = {
    "vendor": "vendors", "invoice": "invoices", "lead": "leads", "order": "orders", "case": "cases",
    "credit": "credits", "glEntry": "glEntries", "notification": "notifications",
}
_PREFIX = {"cases": "CS", "credits": "CR", "glEntries": "GL", "notifications": "NT"}
REGIONS = ("EMEA", "AMER", "APAC")
DEFAULT_OWNERS = {"EMEA": ("ana", "ben"), "AMER": ("carla", "dev"), "APAC": ("eli", "fay")}


@overload
def clone(record: Record) -> Record: ...
@overload
def clone(record: None) -> None: ...
def clone(record: Record | None) -> Record | None:
    """A copy deep enough for these records (values are scalars or lists of scalars), cheaper than deepcopy."""
    if record is None:
        return None
    return {k: list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v for k, v in record.items()}


def collection_of(kind: str) -> str:
    """The collection for a record type, singular ("invoice") or plural ("invoices")."""
    if kind in COLLECTIONS:
        return COLLECTIONS[kind]
    if kind in COLLECTIONS.values():
        return kind
    raise KeyError(f"unknown record type {kind!r}")


def _pick(record_id: str, choices: tuple) -> Any:
    # Stable across runs (unlike hash()), so a demo lead keeps its region from one session to the next.
    return choices[zlib.crc32(record_id.encode()) % len(choices)]


class Records:
    """Collections of records keyed by id. Callers hold `lock` around any read-modify-write."""

    def __init__(self, owners: dict[str, tuple[str, ...]] | None = None):
        self.lock = threading.RLock()
        self.owners = {k.upper(): tuple(v) for k, v in (owners or DEFAULT_OWNERS).items()}
        self.reset()

    def reset(self) -> None:
        """Forget every record, id counter and round-robin position."""
        with self.lock:
            self.data: dict[str, dict[str, Record]] = {c: {} for c in COLLECTIONS.values()}
            self._seq = {c: itertools.count(1) for c in _PREFIX}
            self._turn = dict.fromkeys(self.owners, 0)

    # -- access --------------------------------------------------------------------------------------
    def get(self, kind: str, record_id: str) -> Record | None:
        """The live record (not a copy), or None."""
        return self.data[collection_of(kind)].get(record_id)

    def put(self, kind: str, record: Record) -> Record:
        """Store (or replace) a record; it must carry an id."""
        with self.lock:
            self.data[collection_of(kind)][record["id"]] = record
            return record

    def find(self, kind: str, /, **match: Any) -> list[Record]:
        """Live records whose fields equal `match`, oldest first."""
        with self.lock:
            return [r for r in self.data[collection_of(kind)].values()
                    if all(r.get(k) == v for k, v in match.items())]

    def create(self, kind: str, /, **fields: Any) -> Record:
        """A new record in a collection that numbers its own ids (cases, credits, glEntries, notifications)."""
        coll = collection_of(kind)
        with self.lock:
            record = {"id": f"{_PREFIX[coll]}-{next(self._seq[coll]):04d}", **fields}
            self.data[coll][record["id"]] = record
            return record

    # -- records made up on first reference, so that any demo finding can be acted on ------------------
    def ensure(self, kind: str, record_id: str, /, **hints: Any) -> Record:
        """The record, created with plausible defaults (overridden by non-None `hints`) if it does not exist."""
        coll = collection_of(kind)
        with self.lock:
            existing = self.data[coll].get(record_id)
            if existing is not None:
                return existing
            record = self._default(coll, record_id)
            record.update({k: v for k, v in hints.items() if v is not None})
            self.data[coll][record_id] = record
            if coll == "invoices":
                self.ensure("vendor", record["vendorId"])
            return record

    @staticmethod
    def _default(coll: str, rid: str) -> Record:
        if coll == "invoices":
            return {"id": rid, "vendorId": _pick(rid, tuple(f"V-20{i}" for i in range(10))), "status": "blocked",
                    "matchStatus": _pick(rid, ("price-variance", "unmatched"))}
        if coll == "vendors":
            return {"id": rid, "name": f"Vendor {rid}", "email": f"ap@{rid.lower()}.example.com"}
        if coll == "leads":
            return {"id": rid, "region": _pick(rid, REGIONS), "ownerId": None, "escalated": False}
        if coll == "orders":
            h = zlib.crc32(rid.encode())
            return {"id": rid, "customerId": f"C-{h % 900 + 100}", "shippingMethod": "standard",
                    "shippingCost": float(20 + h % 60), "promisedDate": f"2026-11-{h % 28 + 1:02d}", "status": "late"}
        raise KeyError(f"{coll} are created by flows, not on reference")

    def next_owner(self, region: str, avoid: str | None = None) -> str | None:
        """The region's next owner by round robin, skipping `avoid` (a reassignment must change hands)."""
        with self.lock:
            roster = self.owners.get(region.upper())
            if not roster:
                return None
            for _ in range(len(roster)):
                owner = roster[self._turn[region.upper()] % len(roster)]
                self._turn[region.upper()] += 1
                if owner != avoid or len(roster) == 1:
                    return owner
            return None
