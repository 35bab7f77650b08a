"""The reference-data port on Azure Tables: catalog action versions, activations, policy and prompt versions
and incidents in their own partitions of the shard tables; telemetry in the State table; outcomes in
`<prefix>Outcomes`.

Outcomes have their own table, a partition per process area, upserted 100 to a transaction: they grow with
every KPI feed, and Azurite's write cost grows with a table's size (shards.py), which would slow the
rate-limit logs in the State table on the hot path.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ...domain.outcomes import Outcome
from ...ports import ConcurrencyConflict, Incident
from ..entities import (
    ACTION,
    ACTIVATION,
    CATALOG_PARTITION,
    INCIDENTS_PARTITION,
    OUTCOME,
    POLICY,
    PROMPT,
    action_entity,
    activation_entity,
    incident_entity,
    incident_from,
    outcome_entity,
    outcome_from,
    policy_entity,
    prompt_entity,
    ts,
)
from . import batch as tables_batch
from . import query as tables_query
from . import shards as tables_shards

_OUTCOME_FIELDS = ["RowKey", "processArea", "caseKey", "metric", "value", "observedAt", "source"]


class TablesReference:
    """Serves the Reference port: catalog, policy and prompt versions, incidents, telemetry and outcomes."""

    def __init__(self, shards: Sequence[Any], state: Any, outcomes: Any, prepared: tables_shards.Prepared):
        # The catalog and incident partitions live in the shard tables beside the opportunities (where earlier
        # versions wrote them: moving them would be a migration).
        self._catalog = tables_shards.shard_of(shards, CATALOG_PARTITION)
        self._incidents = tables_shards.shard_of(shards, INCIDENTS_PARTITION)
        self._state = state
        self._outcomes = outcomes
        self._prepared = prepared

    def record_incident(self, incident: Incident) -> None:
        self._prepared.ensure()
        # Upsert: a stage run again after a refused commit records the same incident id again.
        tables_batch.submit(self._incidents, [tables_batch.Operation("upsert", incident_entity(incident))])

    def incidents(self, top: int) -> list[Incident]:
        self._prepared.ensure()
        # Incidents are few (each is a person's to-do); sorting them here beats a time-ordered key that a
        # re-recorded incident would duplicate.
        rows = tables_query.query(self._incidents, f"PartitionKey eq '{INCIDENTS_PARTITION}'")
        return sorted((incident_from(e) for e in rows), key=lambda i: i.at, reverse=True)[:top]

    def action_versions(self) -> list[dict[str, Any]]:
        return self._catalog_docs(ACTION)

    def add_action_version(self, doc: dict[str, Any]) -> None:
        self._add_catalog_row(action_entity(doc), f"{doc['id']} v{doc['version']} exists")

    def activations(self) -> list[dict[str, Any]]:
        return self._catalog_docs(ACTIVATION)

    def add_activation(self, doc: dict[str, Any]) -> None:
        self._add_catalog_row(activation_entity(doc), f"{doc['id']} v{doc['version']} is already active")

    def policy_versions(self) -> list[dict[str, Any]]:
        return self._catalog_docs(POLICY)

    def add_policy_version(self, doc: dict[str, Any]) -> None:
        self._add_catalog_row(policy_entity(doc), f"policy v{doc['version']} exists")

    def prompt_versions(self) -> list[dict[str, Any]]:
        return self._catalog_docs(PROMPT)

    def add_prompt_version(self, doc: dict[str, Any]) -> None:
        self._add_catalog_row(prompt_entity(doc), f"prompt {doc['name']} v{doc['version']} exists")

    def _catalog_docs(self, row_type: str) -> list[dict[str, Any]]:
        self._prepared.ensure()
        where = tables_query.bind("PartitionKey eq @pk and rowType eq @t", {"pk": CATALOG_PARTITION, "t": row_type})
        return [json.loads(e["doc"]) for e in tables_query.query(self._catalog, where)]

    def _add_catalog_row(self, entity: dict[str, Any], conflict: str) -> None:
        self._prepared.ensure()
        try:
            tables_batch.submit(self._catalog, [tables_batch.Operation("create", entity)])
        except tables_batch.TransactionFailed as exc:
            if exc.conflict:
                raise ConcurrencyConflict(conflict) from exc
            raise

    def add_telemetry(self, kind: str, doc: dict[str, Any]) -> None:
        self._prepared.ensure()
        row = {"PartitionKey": f"telemetry~{kind}", "RowKey": f"{ts(datetime.now(UTC))}~{uuid.uuid4().hex[:8]}",
               "rowType": "telemetry", "doc": json.dumps(doc, default=str)}
        tables_batch.submit(self._state, [tables_batch.Operation("create", row)])

    def telemetry(self, kind: str, since: datetime) -> list[dict[str, Any]]:
        self._prepared.ensure()
        where = f"PartitionKey eq 'telemetry~{kind}' and RowKey ge '{ts(since)}'"
        return [json.loads(e["doc"]) for e in sorted(tables_query.query(self._state, where), key=lambda e: e["RowKey"])]

    def add_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        self._prepared.ensure()
        by_partition: dict[str, dict[str, dict[str, Any]]] = {}
        for o in outcomes:
            e = outcome_entity(o)
            by_partition.setdefault(e["PartitionKey"], {})[e["RowKey"]] = e  # the last of a repeated id wins
        for rows in by_partition.values():
            entities = list(rows.values())
            for start in range(0, len(entities), tables_batch.MAX_OPERATIONS):
                tables_batch.submit(self._outcomes, [tables_batch.Operation("upsert", e)
                                                     for e in entities[start:start + tables_batch.MAX_OPERATIONS]])

    def outcomes(self) -> Iterable[Outcome]:
        self._prepared.ensure()
        rows = tables_query.query(self._outcomes, f"rowType eq '{OUTCOME}'", _OUTCOME_FIELDS)
        return [outcome_from(e) for e in rows]

    def ping(self) -> None:
        self._prepared.ensure()
        for table in {id(t): t for t in (self._catalog, self._incidents, self._state, self._outcomes)}.values():
            next(iter(tables_query.query(table, "PartitionKey eq 'ping'", ["RowKey"], top=1)), None)
