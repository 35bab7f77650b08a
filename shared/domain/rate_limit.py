"""Rate limits as sliding-window logs: at most `limit` grants in ANY window of `window` seconds.

A fixed-window counter would let a burst straddling two windows through twice over; the log keeps the
times of the last `limit` grants, so the (limit+1)-th grant waits until the oldest leaves the window.
A grant may name its holder (a tag of the execution's idempotency key): a retry or replay of that same
execution is granted again on its own grant, without a new one, so it never waits behind itself.
Pure: the store adapter keeps one log per key and writes it back under its ETag (optimistic concurrency).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

MAX_LIMIT = 2000  # one log lives in one table property (64 KB): 2,000 millisecond stamps fit with room
# 10 hex digits = 40 bits. A new execution is taken for a retry only if its tag equals one of the at most
# 2,000 tags in the same log: p <= 2,000 / 2**40 = 1.8e-9 per execution, ~0.001 a year at 2,000 a day.
# Longer tags cost room: 2,000 tags of 10 digits and commas are 21,999 characters
# (shared/adapters/tables/limits.py stores them).
HOLDER_CHARS = 10


class Grant(NamedTuple):
    """One grant in a log: when (ms), and the tag of the execution holding it ("" when anonymous)."""

    at: int
    holder: str = ""


Log = tuple[Grant, ...]


@dataclass(frozen=True, slots=True)
class Rule:
    """`limit` grants per `window` seconds for every key of this rule (a connector, or one entity). With a
    `holder`, a grant that holder already has inside the window is granted again at no cost."""

    key: str
    limit: int
    window: float
    holder: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT or self.window <= 0:
            raise ValueError(f"rate rule {self.key}: limit 1..{MAX_LIMIT} and a positive window")


@dataclass(frozen=True, slots=True)
class Decision:
    granted: bool
    log: Log  # grants still inside the window, this one included when granted (the log as given when reused)
    at_ms: int  # the grant's time, or when denied the earliest moment a grant is possible
    reused: bool = False  # granted on the holder's own earlier grant: nothing added, nothing to write


def holder_tag(idempotency_key: str) -> str:
    """The short tag a log keeps for an execution (see HOLDER_CHARS for why this length)."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:HOLDER_CHARS]


def grants(log: Sequence[Grant | int]) -> Log:
    """A log as grants; plain stamps (logs written before holders existed) are anonymous grants."""
    return tuple(g if isinstance(g, Grant) else Grant(int(g)) for g in log)


def admit(log: Sequence[Grant | int], now_ms: int, rule: Rule) -> Decision:
    """Grant if the rule's holder already holds a grant inside the window (reused: nothing added), or if
    fewer than `limit` grants happened in the last `window`; else say when to come back.

    A grant is never stamped before the newest one in the log: a caller whose clock reading is older
    (it waited on a retry) would otherwise slip a grant into a window others have already filled."""
    given = log
    log = grants(log)
    now_ms = max([now_ms, *(g.at for g in log)])
    horizon = now_ms - int(rule.window * 1000)
    kept = tuple(g for g in log if g.at > horizon)
    if rule.holder and any(g.holder == rule.holder for g in kept):
        # The log is handed back as it came, so a store sees no change and writes nothing.
        return Decision(True, given if isinstance(given, tuple) else log, now_ms, reused=True)
    if len(kept) < rule.limit:
        return Decision(True, (*kept, Grant(now_ms, rule.holder)), now_ms)
    oldest_that_must_leave = sorted(g.at for g in kept)[len(kept) - rule.limit]
    return Decision(False, kept, oldest_that_must_leave + int(rule.window * 1000) + 1)


@dataclass(frozen=True, slots=True)
class Verdict:
    granted_at: int | None = None  # ms; None when refused
    retry_at: int | None = None  # ms; when refused, the earliest moment to try again

    @property
    def granted(self) -> bool:
        return self.granted_at is not None


def rules_for(action_id: str, connector: str, rate: dict | None, parameters: dict,
              daily_cap: int | None = None, holder: str | None = None) -> list[Rule]:
    """The limits one execution of an action must pass: per connector per minute, per entity per day,
    and the action's cap per 24 hours (over it, the case waits until a slot of the last day frees).

    `holder` (the execution's idempotency key) makes the entity and cap grants the execution's own, so
    its retries and replays reuse them. The connector's per-minute grant is never held: its budget is
    calls, and a retry calls again (after a 429 from that very connector most of all); waiting for a new
    slot costs a retry at most 60 s, where waiting behind its own entity grant cost it 24 h."""
    rate = rate or {}
    tag = holder_tag(holder) if holder else ""
    out = []
    if daily_cap:
        out.append(Rule(f"cap:{action_id}", min(int(daily_cap), MAX_LIMIT), 86400.0, tag))
    if rate.get("perMinute"):
        out.append(Rule(f"connector:{connector}", int(rate["perMinute"]), 60.0))
    field = rate.get("entityField")
    if rate.get("perEntityPerDay") and field and parameters.get(field) not in (None, ""):
        out.append(Rule(f"entity:{action_id}:{field}={parameters[field]}", int(rate["perEntityPerDay"]), 86400.0,
                        tag))
    return out


def admit_all(logs: dict[str, Log], requests: Sequence[Sequence[Rule]], now_ms: int) -> list[Verdict]:
    """Admit requests in order, each needing every one of its rules (all or none consumed); `logs` is
    updated in place."""
    out: list[Verdict] = []
    for rules in requests:
        decisions = [admit(logs.get(r.key, ()), now_ms, r) for r in rules]
        if all(d.granted for d in decisions):
            for r, d in zip(rules, decisions, strict=True):
                logs[r.key] = d.log
            out.append(Verdict(granted_at=max((d.at_ms for d in decisions), default=now_ms)))
        else:
            out.append(Verdict(retry_at=max(d.at_ms for d in decisions if not d.granted)))
    return out
