"""Outcomes in Azure Tables: `<prefix>Outcomes`, a partition per process area, upserted 100 to a transaction.

Their own table: they grow with every KPI feed, and Azurite's write cost grows with a table's size
(tables_shards.py), which would slow the rate-limit logs in the State table on the hot path.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from ...domain.outcomes import Outcome
from . import batch as tables_batch, query as tables_query
from ..entities import OUTCOME, outcome_entity, outcome_from

_PER_TRANSACTION = 100
_FIELDS = ["RowKey", "processArea", "caseKey", "metric", "value", "observedAt", "source"]


class OutcomeRows:
    _outcomes_table: Any

    def add_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        self._ensure()
        by_partition: dict[str, dict[str, dict[str, Any]]] = {}
        for o in outcomes:
            e = outcome_entity(o)
            by_partition.setdefault(e["PartitionKey"], {})[e["RowKey"]] = e  # the last of a repeated id wins
        for rows in by_partition.values():
            entities = list(rows.values())
            for start in range(0, len(entities), _PER_TRANSACTION):
                tables_batch.submit(self._outcomes_table, [tables_batch.Operation("upsert", e)
                                                           for e in entities[start:start + _PER_TRANSACTION]])

    def outcomes(self) -> Iterable[Outcome]:
        self._ensure()
        rows = tables_query.query(self._outcomes_table, f"rowType eq '{OUTCOME}'", _FIELDS)
        return [outcome_from(e) for e in rows]
