"""Temporary: the one-object `TablesStore` that shared/bootstrap.py and bench/__main__.py still open. Delete this
module once they call `open_tables` / `from_clients` (shared/adapters/tables/__init__.py) instead."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import TablesPorts, from_clients, open_tables


class TablesStore:
    """The three ports' methods on one object (ping is the records port's), bound once: no per-call forwarding."""

    def __init__(self, tables: Any | Sequence[Any], state: Any = None, outcomes: Any = None, remember: int = 20_000):
        self._bind(from_clients(tables, state, outcomes, remember))

    @classmethod
    def from_settings(cls, connection: str | None, endpoint: str | None, prefix: str, shards: int = 1,
                      timeout: float | None = None) -> TablesStore:
        store = cls.__new__(cls)
        store._bind(open_tables(connection, endpoint, prefix, shards, timeout))
        return store

    def _bind(self, ports: TablesPorts) -> None:
        for port in (ports.coordination, ports.reference, ports.records):  # records last: its ping wins
            for name in dir(type(port)):
                if not name.startswith("_"):
                    setattr(self, name, getattr(port, name))
