"""A value read from a store, kept per store object for a few seconds (autonomy, calibrations).

Keyed by the store object itself, weakly: a recycled id() must never hand one store another's value, and a store
that is gone takes its entry with it. Every message of a batch decides against the same store, so one read
serves the batch.
"""
from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class PerStore(Generic[T]):
    """Values by store, each fresh for `seconds`."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._values: weakref.WeakKeyDictionary[Any, tuple[float, T]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, store: Any, load: Callable[[], T], fresh: bool = False) -> T:
        """The kept value, or `load()` when there is none, it is older than `seconds`, or `fresh` is asked."""
        with self._lock:
            hit = self._values.get(store)
        if hit and not fresh and time.monotonic() - hit[0] < self.seconds:
            return hit[1]
        return self.put(store, load())

    def put(self, store: Any, value: T) -> T:
        with self._lock:
            self._values[store] = (time.monotonic(), value)
        return value

    def forget(self, store: Any) -> None:
        with self._lock:
            self._values.pop(store, None)
