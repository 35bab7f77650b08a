"""In-process queues with the Service Bus semantics the app relies on, for the local host and tests.

Kept: duplicate detection by message_id within a window, delivery count, max deliveries then dead
letter, scheduled enqueue, a few concurrent consumers per queue. Messages live in memory only: the
store is the truth, and the timer's reconciler re-sends what a stopped host lost.
"""
from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..ports import Message

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Envelope:
    queue: str
    message_id: str
    body: bytes
    correlation_id: str | None
    enqueued_at: datetime
    delivery_count: int = 0


@dataclass(slots=True)
class DeadLetter:
    envelope: Envelope
    reason: str
    description: str


Handler = Callable[[list[Envelope]], None]


@dataclass
class _Queue:
    ready: list = field(default_factory=list)  # heap of (due monotonic time, seq, Envelope)
    seen: dict = field(default_factory=dict)  # message_id → monotonic expiry of duplicate detection
    in_flight: int = 0


class LocalBus:
    """A Bus (port) plus consumers: `subscribe` a handler per queue, then `start`."""

    def __init__(self, max_deliveries: int = 10, duplicate_window_s: float = 600.0, workers_per_queue: int = 4):
        self.max_deliveries = max_deliveries
        self.duplicate_window_s = duplicate_window_s
        self.workers_per_queue = workers_per_queue
        self.dead_letters: list[DeadLetter] = []
        self.sent = 0
        self.dropped_duplicates = 0
        self._queues: dict[str, _Queue] = {}
        self._handlers: dict[str, tuple[Handler, int]] = {}
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._stopping = False

    # -- the Bus port -------------------------------------------------------------------------------
    def send(self, messages: Sequence[Message]) -> None:
        now = time.monotonic()
        with self._cv:
            for m in messages:
                q = self._queues.setdefault(m.queue, _Queue())
                if q.seen.get(m.message_id, 0.0) > now:
                    self.dropped_duplicates += 1
                    continue
                q.seen[m.message_id] = now + self.duplicate_window_s
                due = now
                if m.scheduled_at is not None:
                    due += max(0.0, (m.scheduled_at - datetime.now(UTC)).total_seconds())
                env = Envelope(m.queue, m.message_id, json.dumps(m.body).encode(), m.body.get("correlationId"),
                               datetime.now(UTC))
                heapq.heappush(q.ready, (due, next(self._seq), env))
                self.sent += 1
            self._cv.notify_all()

    # -- consumers ----------------------------------------------------------------------------------
    def subscribe(self, queue: str, handler: Handler, batch_size: int = 1) -> None:
        """Deliver up to `batch_size` ready messages per call, as a Service Bus trigger with cardinality many."""
        self._handlers[queue] = (handler, batch_size)
        with self._cv:
            self._queues.setdefault(queue, _Queue())

    def start(self) -> None:
        for queue in self._handlers:
            for i in range(self.workers_per_queue):
                t = threading.Thread(target=self._consume, args=(queue,), name=f"bus-{queue}-{i}", daemon=True)
                t.start()
                self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout)

    def _take(self, queue: str, most: int) -> list[Envelope]:
        with self._cv:
            q = self._queues[queue]
            while not self._stopping:
                now = time.monotonic()
                taken: list[Envelope] = []
                while q.ready and q.ready[0][0] <= now and len(taken) < most:
                    _, _, env = heapq.heappop(q.ready)
                    env.delivery_count += 1
                    taken.append(env)
                if taken:
                    q.in_flight += len(taken)
                    return taken
                self._cv.wait(timeout=(q.ready[0][0] - now) if q.ready else 1.0)
            return []

    def _consume(self, queue: str) -> None:
        handler, most = self._handlers[queue]
        while envs := self._take(queue, most):
            try:
                handler(envs)
            except Exception as exc:  # the function failed: abandon the batch, as the Functions host does
                for env in envs:
                    self._abandon(env, exc)
            finally:
                with self._cv:
                    self._queues[queue].in_flight -= len(envs)
                    self._cv.notify_all()

    def _abandon(self, env: Envelope, exc: Exception) -> None:
        with self._cv:
            if env.delivery_count >= self.max_deliveries:
                log.error("dead-lettered %s after %d deliveries: %s", env.message_id, env.delivery_count, exc,
                          extra={"correlationId": env.correlation_id})
                self.dead_letters.append(DeadLetter(env, "MaxDeliveryCountExceeded", str(exc)[:1000]))
            else:
                heapq.heappush(self._queues[env.queue].ready, (time.monotonic(), next(self._seq), env))
            self._cv.notify_all()

    def pending(self) -> int:
        """Messages waiting or being handled, scheduled ones included."""
        with self._cv:
            return sum(len(q.ready) + q.in_flight for q in self._queues.values())

    def dead_letter_counts(self, queues: Sequence[str]) -> dict[str, int]:
        with self._cv:
            found = [d.envelope.queue for d in self.dead_letters]
        return {q: found.count(q) for q in queues}

    def next_due(self) -> float | None:
        """Seconds until the earliest scheduled message is due (0 if one is ready), None when none waits."""
        now = time.monotonic()
        with self._cv:
            dues = [due for q in self._queues.values() for due, _, _ in q.ready]
        return max(0.0, min(dues) - now) if dues else None

    def wait_idle(self, timeout: float, include_scheduled: bool = True) -> bool:
        """Block until no message is ready or in flight (and, if asked, none is scheduled)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                now = time.monotonic()
                busy = any(q.in_flight or any(due <= now or include_scheduled for due, _, _ in q.ready)
                           for q in self._queues.values())
                if not busy:
                    return True
                if now >= deadline:
                    return False
                self._cv.wait(timeout=min(0.05, deadline - now))
