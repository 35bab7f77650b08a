"""What a child flow's answer means for the execution: done, wait, retry, or give up.

The contract is README "Child flows"; infra/flows holds it as JSON Schema."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .flow_contracts import ChildFlowResponse
from .pii import scrub

DONE, WAIT, RETRY, GIVE_UP = "done", "wait", "retry", "give_up"
# Evidence is kept on the execution record, beside its other fields and in a transaction with others.
MAX_EVIDENCE_CHARS = 64_000
MAX_RECORD_IDS = 100


@dataclass(frozen=True, slots=True)
class FlowResponse:
    """One HTTP answer of a flow; status 0 means no answer (timeout or connection failure)."""

    status: int
    body: dict[str, Any] | None = None
    retry_after: float | None = None
    location: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # DONE, WAIT, RETRY or GIVE_UP
    status: str | None = None  # execution status when DONE or GIVE_UP: succeeded, failed, rejected
    delay: float = 0.0  # seconds before the next attempt or poll
    message: str = ""
    evidence: dict[str, Any] | None = None


def _chars(value: Any) -> int:
    return len(json.dumps(value, default=str, ensure_ascii=False))


def bounded_evidence(evidence: dict[str, Any]) -> dict[str, Any]:
    """The flow's evidence as it is, or when its JSON passes MAX_EVIDENCE_CHARS: as many record ids and
    before/after records (what verification and compensation read) as fit, smallest first, marked truncated."""
    size = _chars(evidence)
    if size <= MAX_EVIDENCE_CHARS:
        return evidence
    kept: dict[str, Any] = {"recordIds": [], "truncated": True, "chars": size, "before": {}, "after": {}}
    budget = MAX_EVIDENCE_CHARS - _chars(kept)
    ids_budget = budget // 4  # ids get at most a quarter, so the records the watchdog reads still fit
    for rid in list(evidence.get("recordIds") or [])[:MAX_RECORD_IDS]:
        cost = _chars(rid) + 1
        if cost > ids_budget:
            break
        kept["recordIds"].append(rid)
        ids_budget -= cost
        budget -= cost
    records = [(_chars(record) + _chars(kind) + 2, part, kind, record) for part in ("before", "after")
               for kind, record in (evidence.get(part) or {}).items()]
    for cost, part, kind, record in sorted(records, key=lambda r: r[0]):
        if cost <= budget:
            kept[part][kind] = record
            budget -= cost
    return kept


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: spreads retries so a recovering flow is not stampeded."""
    return rng.uniform(0.5, 1.0) * min(cap, base * 2 ** max(0, attempt - 1))


MAX_POLL_SECONDS = 300.0


def classify(r: FlowResponse, attempt: int, max_attempts: int, base: float, cap: float,
             rng: random.Random, waited: float = 0.0, max_wait: float = float("inf")) -> Outcome:
    """Decide from one response; `attempt` counts calls made so far for this execution (polls too), this one
    included, and `waited` the seconds since the first."""
    body = r.body if isinstance(r.body, dict) else {}
    message = scrub(str(body.get("message") or r.error or ""))[:500]  # a flow may quote what it acted on
    if r.status in (200, 201):
        try:
            answer = ChildFlowResponse.model_validate(body)
        except ValidationError as exc:
            where = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors()[:3])
            return Outcome(GIVE_UP, "failed", message=f"flow answered {r.status} outside its contract ({where})")
        return Outcome(DONE, answer.status, message=message, evidence=bounded_evidence(answer.evidence.model_dump()))
    if r.status == 202 and r.location:
        if waited >= max_wait:
            return Outcome(GIVE_UP, "failed", message=f"flow still running after {waited / 3600:.1f} h "
                                                      f"(flowMaxWaitSeconds); a person must check its outcome")
        # Without Retry-After, polls back off (1, 2, 4 … 300 s): a flow that waits a day costs ~300 polls.
        delay = r.retry_after if r.retry_after is not None else min(MAX_POLL_SECONDS, 2.0 ** max(0, attempt - 1))
        return Outcome(WAIT, delay=delay, message="flow accepted")
    transient = r.status == 0 or r.status == 429 or r.status >= 500 or r.status == 408
    if not transient:
        return Outcome(GIVE_UP, "rejected" if r.status in (400, 422) else "failed",
                       message=f"flow answered {r.status}: {message}".strip(": "))
    if attempt >= max_attempts:
        return Outcome(GIVE_UP, "failed", message=f"gave up after {attempt} attempts: last {r.status or r.error}")
    delay = r.retry_after if r.status == 429 and r.retry_after is not None else backoff(attempt, base, cap, rng)
    return Outcome(RETRY, delay=delay, message=f"transient {r.status or r.error}; retry in {delay:.1f}s")
