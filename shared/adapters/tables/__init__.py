"""The Azure Tables backend: one class per store port over one set of tables, opened together.

Tables: `<prefix>Opportunities…` (the shards: records, catalog versions, incidents), `<prefix>State`
(coordination and telemetry) and `<prefix>Outcomes`. The classes are imported when a store is opened, so
importing a helper module of this package (devhost reads shards.py) stays cheap.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .coordination import TablesCoordination
    from .records import TablesRecords
    from .reference import TablesReference


class TablesPorts(NamedTuple):
    records: TablesRecords
    reference: TablesReference
    coordination: TablesCoordination


def open_tables(connection: str | None, endpoint: str | None, prefix: str, shards: int = 1,
                timeout: float = 5.0) -> TablesPorts:
    """The three ports over `<prefix>` tables, from a connection string or from an endpoint plus managed identity
    (no keys in Azure), sharing one HTTP session; each call bounded by `timeout` seconds (the composition
    root passes STORE_TIMEOUT_SECONDS), past which it raises Unavailable. Tables are created or checked on first use."""
    from . import shards as tables_shards

    names = [*tables_shards.shard_names(f"{prefix}Opportunities", shards), f"{prefix}State", f"{prefix}Outcomes"]
    *tables, state, outcomes = tables_shards.connect(connection, endpoint, names, timeout)
    return from_clients(tables, state, outcomes)


def from_clients(shards: Any | Sequence[Any], state: Any = None, outcomes: Any = None,
                 remember: int = 20_000) -> TablesPorts:
    """The three ports over TableClients already made: the shards, and the State and Outcomes tables (by default
    the first shard, as a test's single table); `remember` is how many written records the records port keeps."""
    from .coordination import TablesCoordination
    from .records import TablesRecords
    from .reference import TablesReference
    from .shards import Prepared

    tables = list(shards) if isinstance(shards, (list, tuple)) else [shards]
    state = state if state is not None else tables[0]
    outcomes = outcomes if outcomes is not None else state
    prepared = Prepared(tables, state, outcomes)
    return TablesPorts(TablesRecords(tables, prepared, remember), TablesReference(tables, state, outcomes, prepared),
                       TablesCoordination(state, prepared))
