"""Rate limits as sliding-window logs: at most `limit` grants in ANY window of `window` seconds.

A fixed-window counter would let a burst straddling two windows through twice over; the log keeps the
times of the last `limit` grants, so the (limit+1)-th grant waits until the oldest leaves the window.
Pure: the store adapter keeps one log per key and writes it back under its ETag (optimistic concurrency).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

MAX_LIMIT = 2000  # one log lives in one table property (64 KB): 2,000 millisecond stamps fit with room


@dataclass(frozen=True, slots=True)
class Rule:
    """`limit` grants per `window` seconds for every key of this rule (a connector, or one entity)."""

    key: str
    limit: int
    window: float

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT or self.window <= 0:
            raise ValueError(f"rate rule {self.key}: limit 1..{MAX_LIMIT} and a positive window")


@dataclass(frozen=True, slots=True)
class Decision:
    granted: bool
    log: tuple[int, ...]  # grant times (ms) still inside the window, this one included when granted
    at_ms: int  # the grant's time, or when denied the earliest moment a grant is possible


def admit(log: Sequence[int], now_ms: int, rule: Rule) -> Decision:
    """Grant if fewer than `limit` grants happened in the last `window`; else say when to come back.

    A grant is never stamped before the newest one in the log: a caller whose clock reading is older
    (it waited on a retry) would otherwise slip a grant into a window others have already filled."""
    now_ms = max([now_ms, *log])
    horizon = now_ms - int(rule.window * 1000)
    kept = tuple(t for t in log if t > horizon)
    if len(kept) < rule.limit:
        return Decision(True, kept + (now_ms,), now_ms)
    oldest_that_must_leave = sorted(kept)[len(kept) - rule.limit]
    return Decision(False, kept, oldest_that_must_leave + int(rule.window * 1000) + 1)


@dataclass(frozen=True, slots=True)
class Verdict:
    granted_at: Optional[int] = None  # ms; None when refused
    retry_at: Optional[int] = None  # ms; when refused, the earliest moment to try again

    @property
    def granted(self) -> bool:
        return self.granted_at is not None


def rules_for(action_id: str, connector: str, rate: Optional[dict], parameters: dict,
              daily_cap: Optional[int] = None) -> list[Rule]:
    """The limits one execution of an action must pass: per connector per minute, per entity per day,
    and the action's cap per 24 hours (over it, the case waits until a slot of the last day frees)."""
    rate = rate or {}
    out = []
    if daily_cap:
        out.append(Rule(f"cap:{action_id}", min(int(daily_cap), MAX_LIMIT), 86400.0))
    if rate.get("perMinute"):
        out.append(Rule(f"connector:{connector}", int(rate["perMinute"]), 60.0))
    field = rate.get("entityField")
    if rate.get("perEntityPerDay") and field and parameters.get(field) not in (None, ""):
        out.append(Rule(f"entity:{action_id}:{field}={parameters[field]}", int(rate["perEntityPerDay"]), 86400.0))
    return out


def admit_all(logs: dict[str, tuple[int, ...]], requests: Sequence[Sequence[Rule]], now_ms: int) -> list[Verdict]:
    """Admit requests in order, each needing every one of its rules (all or none consumed); `logs` is
    updated in place."""
    out: list[Verdict] = []
    for rules in requests:
        decisions = [admit(logs.get(r.key, ()), now_ms, r) for r in rules]
        if all(d.granted for d in decisions):
            for r, d in zip(rules, decisions):
                logs[r.key] = d.log
            out.append(Verdict(granted_at=max((d.at_ms for d in decisions), default=now_ms)))
        else:
            out.append(Verdict(retry_at=max(d.at_ms for d in decisions if not d.granted)))
    return out
