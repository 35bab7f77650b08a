"""The Azure Tables store's small records beside the opportunities: the catalog's action versions,
activations and policy versions, incidents, and case claims. Mixed into TablesStore, whose tables,
queries and key helpers it uses.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Optional, Sequence

from ...domain.rate_limit import Rule, Verdict
from ...ports import Claim, ConcurrencyConflict, Incident
from . import batch as tables_batch, limits as tables_limits, query as tables_query
from ..entities import (ACTION, ACTIVATION, CATALOG_PARTITION, INCIDENTS_PARTITION, POLICY, action_entity,
                       activation_entity, claim_entity, claim_from, claim_partition, incident_entity, incident_from,
                       PROMPT, policy_entity, prompt_entity, ts)


class ReferenceRows:
    _state: Any

    def record_incident(self, incident: Incident) -> None:
        self._ensure()
        # Upsert: a stage run again after a refused commit records the same incident id again.
        tables_batch.submit(self._table(INCIDENTS_PARTITION),
                            [tables_batch.Operation("upsert", incident_entity(incident))])

    def incidents(self, top: int) -> list[Incident]:
        self._ensure()
        # Incidents are few (each is a person's to-do); sorting them here beats a time-ordered key that a
        # re-recorded incident would duplicate.
        rows = self._query(INCIDENTS_PARTITION, "PartitionKey eq @pk", {"pk": INCIDENTS_PARTITION})
        return sorted((incident_from(e) for e in rows), key=lambda i: i.at, reverse=True)[:top]

    def action_versions(self) -> list[dict[str, Any]]:
        return self._catalog_docs(ACTION)

    def activations(self) -> list[dict[str, Any]]:
        return self._catalog_docs(ACTIVATION)

    def policy_versions(self) -> list[dict[str, Any]]:
        return self._catalog_docs(POLICY)

    def add_policy_version(self, doc: dict[str, Any]) -> None:
        self._add_catalog_row(policy_entity(doc), f"policy v{doc['version']} exists")

    def prompt_versions(self) -> list[dict[str, Any]]:
        return self._catalog_docs(PROMPT)

    def add_prompt_version(self, doc: dict[str, Any]) -> None:
        self._add_catalog_row(prompt_entity(doc), f"prompt {doc['name']} v{doc['version']} exists")

    def _catalog_docs(self, row_type: str) -> list[dict[str, Any]]:
        self._ensure()
        rows = self._query(CATALOG_PARTITION, "PartitionKey eq @pk and rowType eq @t",
                           {"pk": CATALOG_PARTITION, "t": row_type})
        return [json.loads(e["doc"]) for e in rows]

    def add_action_version(self, doc: dict[str, Any]) -> None:
        self._add_catalog_row(action_entity(doc), f"{doc['id']} v{doc['version']} exists")

    def add_activation(self, doc: dict[str, Any]) -> None:
        self._add_catalog_row(activation_entity(doc), f"{doc['id']} v{doc['version']} is already active")

    def _add_catalog_row(self, entity: dict[str, Any], conflict: str) -> None:
        self._ensure()
        try:
            tables_batch.submit(self._table(CATALOG_PARTITION), [tables_batch.Operation("create", entity)])
        except tables_batch.TransactionFailed as exc:
            if exc.conflict:
                raise ConcurrencyConflict(conflict) from exc
            raise

    def state(self, name: str) -> Optional[dict[str, Any]]:
        self._ensure()
        row = next(iter(tables_query.query(self._state, f"PartitionKey eq 'state' and RowKey eq '{name}'")), None)
        return json.loads(row["doc"]) if row else None

    def add_telemetry(self, kind: str, doc: dict[str, Any]) -> None:
        self._ensure()
        row = {"PartitionKey": f"telemetry~{kind}", "RowKey": f"{ts(datetime.now(timezone.utc))}~{uuid.uuid4().hex[:8]}",
               "rowType": "telemetry", "doc": json.dumps(doc, default=str)}
        tables_batch.submit(self._state, [tables_batch.Operation("create", row)])

    def telemetry(self, kind: str, since: datetime) -> list[dict[str, Any]]:
        self._ensure()
        where = f"PartitionKey eq 'telemetry~{kind}' and RowKey ge '{ts(since)}'"
        return [json.loads(e["doc"]) for e in sorted(tables_query.query(self._state, where), key=lambda e: e["RowKey"])]

    def put_state(self, name: str, doc: dict[str, Any]) -> None:
        self._ensure()
        tables_batch.submit(self._state, [tables_batch.Operation("upsert", {
            "PartitionKey": "state", "RowKey": name, "rowType": "state", "doc": json.dumps(doc, default=str)})])

    def autonomy(self) -> tuple[Optional[dict[str, Any]], Optional[str]]:
        self._ensure()
        where = "PartitionKey eq 'autonomy' and RowKey eq 'current'"
        row = next(iter(tables_query.query(self._state, where)), None)
        return (json.loads(row["doc"]), row["etag"]) if row else (None, None)

    def save_autonomy(self, doc: dict[str, Any], etag: Optional[str]) -> str:
        self._ensure()
        entity = {"PartitionKey": "autonomy", "RowKey": "current", "rowType": "autonomy", "doc": json.dumps(doc)}
        try:
            [new] = tables_batch.submit(self._state, [tables_batch.Operation("replace" if etag else "create",
                                                                             entity, etag)])
        except tables_batch.TransactionFailed as exc:
            if exc.conflict:
                raise ConcurrencyConflict("autonomy changed meanwhile") from exc
            raise
        return new or ""

    def _limiter(self) -> "tables_limits.Limits":
        self._ensure()
        if getattr(self, "_limits", None) is None:
            self._limits = tables_limits.Limits(self._state)
        return self._limits

    def limit_full(self, rule: Rule, now_ms: int) -> bool:
        return self._limiter().full(rule, now_ms)

    def acquire_many(self, requests: Sequence[Sequence[Rule]], now_ms: int) -> list[Verdict]:
        self._limiter()
        # At most 50 requests (two rules each) per round, so one transaction carries all of its writes.
        out: list[Verdict] = []
        for start in range(0, len(requests), 50):
            out += self._limits.acquire_many(requests[start:start + 50], now_ms)
        return out

    def claim_many(self, claims: Sequence[Claim]) -> dict[str, Claim]:
        # One transaction per space chunk; a create refused because the key is held is dropped and the
        # rest resubmitted, then the held ones are read back with their holders and ETags.
        self._ensure()
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
                out.update({c.key: replace(c, etag=etag) for c, etag in zip(chunk, etags)})
                pending = pending[len(chunk):]
        rows = self._rows_by_key([(claim_partition(c.space), c.key) for c in held], self._state)
        out.update({e["RowKey"]: claim_from(e) for e in rows})
        return out

    def take_over(self, claim: Claim, holder: str) -> bool:
        self._ensure()
        try:
            tables_batch.submit(self._state, [tables_batch.Operation(
                "replace", claim_entity(replace(claim, holder=holder)), claim.etag)])
        except tables_batch.TransactionFailed as exc:
            if exc.status in (404, 409, 412):
                return False
            raise
        return True
