"""Rate-limit logs in the State table, written back under their ETags (optimistic concurrency).

One partition holds every log, so a whole batch's grants go out in one transaction: either every log
it changed still had the ETag it was read with, or nothing is written and the batch is recomputed from
a fresh read. That is what keeps "at most `limit` in any window" true across threads and instances.

A key this process has never seen is assumed new and created outright (no read); a conflict means it
exists, and it is read. Each process remembers the logs it last saw. A remembered log that shows a full
window is proof enough to refuse without asking the store (others can only add grants inside the window,
never remove them), so a throttled executor costs the store nothing; a grant is written under the
remembered ETag, and a 412 means read again. The same holds for a retry finding its own grant in a
remembered log: the grant is in the store (only written logs are remembered) and stays there while
inside its window, so the retry is granted again without a write.

A log is two string properties of one entity: `log`, the stamps as they always were ("t,t,t"), and
`holders`, the holder tags in the same order ("tag,,tag"; absent when no grant is held). Beside the stamps,
not inside them: rows written before holders read as anonymous grants, and an instance still running the
older code (which parses `log` as integers) reads and replaces new rows without failing during a rollout.
Sizes at MAX_LIMIT: 2,000 stamps are 27,999 characters, 2,000 tags of 10 digits 21,999; one property
holds 32,768 (64 KiB of UTF-16; Azurite refuses 32,769), and batch.py splits text past 15,000 over
continuation properties joined on read (spill.py), so a full log is ~100 KB of the entity's 1 MiB.
"""
from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

from ...domain.rate_limit import Grant, Log, Rule, Verdict, admit, admit_all
from . import batch as tables_batch
from . import query as tables_query

PARTITION = "limits"
_ATTEMPTS = 200  # conflicts only come from concurrent acquirers of the same keys; each retry re-reads

Seen = dict[str, tuple[Log, str | None]]  # key -> (log, ETag or None when not stored yet)


def _row_key(key: str) -> str:
    # Keys hold characters a RowKey may not (/, #, ?); the text itself is kept in a property.
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def _read(table: Any, keys: Sequence[str]) -> Seen:
    found: Seen = dict.fromkeys(keys, ((), None))
    for e in tables_query.rows_by_key([(PARTITION, _row_key(k)) for k in keys], lambda _: table):
        found[e["key"]] = (decode(e.get("log") or "", e.get("holders")), e["etag"])
    return found


def decode(stamps: str, holders: str | None) -> Log:
    """The log of one row; without `holders` (an older row), or with a count that disagrees, anonymous."""
    ats = [int(t) for t in stamps.split(",") if t]
    tags = holders.split(",") if holders else []
    if len(tags) != len(ats):
        tags = [""] * len(ats)
    return tuple(Grant(at, tag) for at, tag in zip(ats, tags, strict=True))


def encode(key: str, log: Log) -> dict[str, Any]:
    """The row of one log: stamps in `log`, and the holders beside them when any grant is held."""
    row = {"PartitionKey": PARTITION, "RowKey": _row_key(key), "rowType": "limit", "key": key,
           "log": ",".join(str(g.at) for g in log)}
    if any(g.holder for g in log):
        row["holders"] = ",".join(g.holder for g in log)
    return row


class Limits:
    """The limiter for one State table, with this process's memory of the logs."""

    def __init__(self, table: Any):
        self.table = table
        self._seen: Seen = {}
        self._lock = threading.Lock()

    def acquire_many(self, requests: Sequence[Sequence[Rule]], now_ms: int) -> list[Verdict]:
        keys = sorted({r.key for rules in requests for r in rules})
        if not keys:
            return [Verdict(granted_at=now_ms) for _ in requests]
        unsure: set[str] = set()  # keys a create found taken: read them before trying again
        for attempt in range(_ATTEMPTS):
            with self._lock:
                seen = {k: self._seen[k] for k in keys if k in self._seen}
            # A key never seen is most likely new (an entity's first change today): try to create its log
            # straight away; if it exists after all, the create fails and the next round reads it.
            missing = [k for k in keys if k not in seen]
            if unsure:
                seen.update(_read(self.table, [k for k in missing if k in unsure]))
            seen.update({k: ((), None) for k in missing if k not in seen})
            logs = {k: v[0] for k, v in seen.items()}
            verdicts = admit_all(logs, requests, now_ms)
            changed = [k for k in keys if logs[k] != seen[k][0]]
            if not changed:
                self._remember(seen)
                return verdicts
            ops = [tables_batch.Operation("replace" if seen[k][1] else "create", encode(k, logs[k]), seen[k][1])
                   for k in changed]
            try:
                etags = tables_batch.submit(self.table, ops)
            except tables_batch.TransactionFailed as exc:
                if not exc.conflict:
                    raise
                with self._lock:  # someone else granted meanwhile: forget what we saw, read, decide again
                    for k in changed:
                        self._seen.pop(k, None)
                unsure.update(changed)
                # Back off a little, randomly: contenders for one hot log otherwise collide again at once.
                time.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))
                continue
            self._remember({**seen, **{k: (logs[k], etag) for k, etag in zip(changed, etags, strict=True)}})
            return verdicts
        raise RuntimeError(f"rate limiter lost {_ATTEMPTS} races in a row")

    def full(self, rule: Rule, now_ms: int) -> bool:
        """Would a request under `rule` be refused now? Reads, never grants."""
        with self._lock:
            seen = self._seen.get(rule.key)
        if seen is None:
            seen = _read(self.table, [rule.key])[rule.key]
            self._remember({rule.key: seen})
        return not admit(seen[0], now_ms, rule).granted

    def _remember(self, seen: Seen) -> None:
        with self._lock:
            if len(self._seen) > 50_000:
                self._seen.clear()
            self._seen.update(seen)
