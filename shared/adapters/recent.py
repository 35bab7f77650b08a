"""A bounded memory of the records this process wrote last, so the next stage need not read them back.

Safe under concurrency because every write is conditional on the ETag: if another instance changed a
record since, the write is refused, the entry is forgotten, and the stage runs again on a fresh read.
A stage that only *looks* at a stale copy at worst re-sends a nudge, which duplicate detection drops.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

K = TypeVar("K", bound=Hashable)
T = TypeVar("T", bound="DataclassInstance")


class Recent(Generic[K, T]):
    """Up to `size` records by key, the oldest dropped first; each read hands out a copy."""

    def __init__(self, size: int, copy_on_put: bool = False):
        self.size = size
        # Executions are changed in place (attempts, status) after they are stored: keep a copy of those.
        self.copy_on_put = copy_on_put
        self._items: OrderedDict[K, T] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def put(self, key: K, value: T) -> None:
        if self.size <= 0:
            return
        if self.copy_on_put:
            value = replace(value)
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, key: K) -> T | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self.hits += 1
        # A shallow copy: callers change records by replacing fields, never by mutating shared ones.
        return replace(value)

    def split(self, keys: Sequence[K]) -> tuple[dict[K, T], list[K]]:
        """(what is remembered, by key; the keys that must be read from the store)."""
        found: dict[K, T] = {}
        for key in keys:
            hit = self.get(key)
            if hit is not None:
                found[key] = hit
        return found, [k for k in keys if k not in found]

    def forget(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)
