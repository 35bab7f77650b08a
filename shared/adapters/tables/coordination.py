"""The coordination port on Azure Tables, all in the State table: small operational state, the autonomy
document, rate-limit logs (limits.py) and case claims.

Claims live apart from the opportunities: they are never in a transaction with them, and Azurite's write
cost grows with a table's size (shards.py).
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ...domain.rate_limit import Rule, Verdict
from ...ports import Claim, ConcurrencyConflict
from ..entities import claim_entity, claim_from, claim_partition
from . import batch as tables_batch
from . import limits as tables_limits
from . import query as tables_query
from . import shards as tables_shards

_PREFIX = re.compile(r"[A-Za-z0-9._-]{1,100}")
# At most 50 requests (two rules each) per round, so one transaction carries all of its writes.
_REQUESTS_PER_ROUND = 50


class TablesCoordination:
    """Serves the Coordination port: state, autonomy, rate limits and claims, in the State table."""

    def __init__(self, state: Any, prepared: tables_shards.Prepared):
        self._state = state
        self._prepared = prepared
        self._limits = tables_limits.Limits(state)

    def state(self, name: str) -> dict[str, Any] | None:
        self._prepared.ensure()
        row = next(iter(tables_query.query(self._state, f"PartitionKey eq 'state' and RowKey eq '{name}'")), None)
        return json.loads(row["doc"]) if row else None

    def put_state(self, name: str, doc: dict[str, Any]) -> None:
        self._prepared.ensure()
        tables_batch.submit(self._state, [tables_batch.Operation("upsert", {
            "PartitionKey": "state", "RowKey": name, "rowType": "state", "doc": json.dumps(doc, default=str)})])

    def state_versioned(self, name: str) -> tuple[dict[str, Any] | None, str | None]:
        self._prepared.ensure()
        where = tables_query.bind("PartitionKey eq 'state' and RowKey eq @name", {"name": name})
        row = next(iter(tables_query.query(self._state, where)), None)
        return (json.loads(row["doc"]), row["etag"]) if row else (None, None)

    def save_state(self, name: str, doc: dict[str, Any], etag: str | None) -> str:
        self._prepared.ensure()
        entity = {"PartitionKey": "state", "RowKey": name, "rowType": "state", "doc": json.dumps(doc, default=str)}
        try:
            [new] = tables_batch.submit(self._state, [tables_batch.Operation("replace" if etag else "create",
                                                                             entity, etag)])
        except tables_batch.TransactionFailed as exc:
            if exc.status in (404, 409, 412):  # 404: replaced a row deleted meanwhile
                raise ConcurrencyConflict(f"state {name} changed meanwhile") from exc
            raise
        return new or ""

    def states(self, prefix: str) -> dict[str, dict[str, Any]]:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"state prefix {prefix!r}: letters, digits, '.', '_' or '-' only")
        self._prepared.ensure()
        # A key range: every name that starts with the prefix sorts at or after it and before it with its
        # last character's successor (the prefix's characters all have one inside printable ASCII).
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        where = tables_query.bind("PartitionKey eq 'state' and RowKey ge @low and RowKey lt @high",
                                  {"low": prefix, "high": end})
        return {row["RowKey"]: json.loads(row["doc"]) for row in tables_query.query(self._state, where)}

    def autonomy(self) -> tuple[dict[str, Any] | None, str | None]:
        self._prepared.ensure()
        where = "PartitionKey eq 'autonomy' and RowKey eq 'current'"
        row = next(iter(tables_query.query(self._state, where)), None)
        return (json.loads(row["doc"]), row["etag"]) if row else (None, None)

    def save_autonomy(self, doc: dict[str, Any], etag: str | None) -> str:
        self._prepared.ensure()
        entity = {"PartitionKey": "autonomy", "RowKey": "current", "rowType": "autonomy", "doc": json.dumps(doc)}
        try:
            [new] = tables_batch.submit(self._state, [tables_batch.Operation("replace" if etag else "create",
                                                                             entity, etag)])
        except tables_batch.TransactionFailed as exc:
            if exc.conflict:
                raise ConcurrencyConflict("autonomy changed meanwhile") from exc
            raise
        return new or ""

    def limit_full(self, rule: Rule, now_ms: int) -> bool:
        self._prepared.ensure()
        return self._limits.full(rule, now_ms)

    def acquire_many(self, requests: Sequence[Sequence[Rule]], now_ms: int) -> list[Verdict]:
        self._prepared.ensure()
        out: list[Verdict] = []
        for start in range(0, len(requests), _REQUESTS_PER_ROUND):
            out += self._limits.acquire_many(requests[start:start + _REQUESTS_PER_ROUND], now_ms)
        return out

    def claim_many(self, claims: Sequence[Claim]) -> dict[str, Claim]:
        # One transaction per space chunk; a create refused because the key is held is dropped and the
        # rest resubmitted, then the held ones are read back with their holders and ETags.
        self._prepared.ensure()
        out: dict[str, Claim] = {}
        held: list[Claim] = []
        by_space: dict[str, dict[str, Claim]] = {}
        for c in claims:
            by_space.setdefault(c.space, {})[c.key] = c
        for mine in by_space.values():
            pending = list(mine.values())
            while pending:
                chunk = pending[:tables_batch.MAX_OPERATIONS]
                try:
                    etags = tables_batch.submit(self._state, [tables_batch.Operation("create", claim_entity(c))
                                                              for c in chunk])
                except tables_batch.TransactionFailed as exc:
                    if not exc.conflict:
                        raise
                    held.append(chunk[min(exc.index, len(chunk) - 1)])
                    pending.remove(held[-1])
                    continue
                out.update({c.key: replace(c, etag=etag) for c, etag in zip(chunk, etags, strict=True)})
                pending = pending[len(chunk):]
        rows = tables_query.rows_by_key([(claim_partition(c.space), c.key) for c in held], lambda _: self._state)
        out.update({e["RowKey"]: claim_from(e) for e in rows})
        return out

    def take_over(self, claim: Claim, holder: str) -> bool:
        self._prepared.ensure()
        try:
            tables_batch.submit(self._state, [tables_batch.Operation(
                "replace", claim_entity(replace(claim, holder=holder)), claim.etag)])
        except tables_batch.TransactionFailed as exc:
            if exc.status in (404, 409, 412):
                return False
            raise
        return True

    def ping(self) -> None:
        self._prepared.ensure()
        next(iter(tables_query.query(self._state, "PartitionKey eq 'ping'", ["RowKey"], top=1)), None)
