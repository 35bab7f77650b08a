"""LLM-assisted planning: one model call per plan template, cached; the deterministic plan otherwise.

The template for (processArea, pattern, candidate versions, prompt version, attribute shape) comes from
this process's memory, else the State table (shared by every instance and kept across restarts), else
the model, once: concurrent misses on one key wait for the first caller rather than call again.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ..domain import llm_plan
from ..domain.catalog import Action
from ..domain.opportunity import Opportunity
from ..domain.pii import scrub
from ..domain.planning import Decision
from ..logs import bind
from ..ports import Services
from . import prompts

log = logging.getLogger(__name__)
MEMORY = 512
_templates: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def reset() -> None:
    """Forget the in-process cache (tests; a new prompt version needs no reset: it is in the key)."""
    with _guard:
        _templates.clear()
        _locks.clear()


def _remember(key: str, doc: dict[str, Any] | None) -> None:
    with _guard:
        _templates[key] = doc
        _templates.move_to_end(key)
        while len(_templates) > MEMORY:
            _templates.popitem(last=False)


def _telemetry(services: Services, cid: str, doc: dict[str, Any]) -> None:
    """Record one LLM telemetry row; a refused write is logged, never a reason to fail the plan."""
    try:
        services.reference.add_telemetry("llm", doc)
    except Exception:
        bind(log, cid).warning("LLM telemetry not recorded", exc_info=True)


def _ask(services: Services, key: str, prompt: llm_plan.Prompt, messages: list[dict[str, str]],
         cid: str) -> dict[str, Any] | None:
    """The model's plan template as stored (None when it gave none), with one telemetry record."""
    llm = services.llm
    if llm is None:
        raise RuntimeError("no LLM is configured")  # planner.decide asks only when one is
    reply = llm.complete(messages, llm_plan.PlanProposal)
    doc = reply.parsed.model_dump() if reply.outcome == "ok" else None
    if reply.outcome == "ok":  # stored before anything else can fail: it is what the call paid for
        services.coordination.put_state(f"llmplan~{key}", {"proposal": doc, "promptVersion": prompt.version})
    _telemetry(services, cid, {
        "at": services.clock.now().isoformat(), "promptVersion": prompt.version, "model": llm.model,
        "purpose": "plan", "outcome": reply.outcome, "detail": scrub(reply.detail), "key": key,
        "promptTokens": reply.prompt_tokens, "completionTokens": reply.completion_tokens,
        "latencyMs": reply.latency_ms, "correlationId": cid,
        # Masked already: the prompt carries no values, and the answer is a template.
        "prompt": messages[-1]["content"][:4000], "response": scrub(reply.text)[:4000]})
    bind(log, cid).info("LLM plan template %s: %s in %.0f ms (%d+%d tokens)", key[:8], reply.outcome,
                        reply.latency_ms, reply.prompt_tokens, reply.completion_tokens)
    return doc if reply.outcome == "ok" else {"failed": reply.outcome, "detail": reply.detail}


def template(services: Services, opp: Opportunity, candidates: Sequence[Action], cid: str
             ) -> tuple[dict[str, Any] | None, str, str]:
    """(the stored answer for this opportunity's key, its prompt version, the key)."""
    prompt = prompts.in_use(services)  # the deployed file, or a newer version activated over the API
    shape = llm_plan.shape(opp.attributes)
    signals = llm_plan.signal_names(opp.signals)  # names only: a signal's value never reaches the model
    key = llm_plan.cache_key(opp.processArea, opp.deviationPattern, candidates, prompt.version, shape, signals)
    if key in _templates:
        try:
            return _templates[key], prompt.version, key
        except KeyError:  # another thread evicted it meanwhile: read it as a miss
            pass
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        if key in _templates:
            return _templates[key], prompt.version, key
        stored = services.coordination.state(f"llmplan~{key}")
        if stored is not None:
            doc: dict[str, Any] | None = stored["proposal"]
        else:
            messages = llm_plan.messages(prompt, opp.processArea, opp.deviationPattern, candidates, shape, signals)
            doc = _ask(services, key, prompt, messages, cid)
            if doc is not None and "failed" in doc:
                # A failed call is not cached: the next opportunity of this shape asks again.
                return doc, prompt.version, key
        _remember(key, doc)
        return doc, prompt.version, key


def decide(services: Services, opp: Opportunity, candidates: Sequence[Action], fallback: Decision,
           cid: str) -> Decision:
    """The LLM's plan for this opportunity when it gave a valid one, else `fallback` (never a guess)."""
    try:
        doc, version, key = template(services, opp, candidates, cid)
    except Exception:  # a broken prompt file or store hiccup must not stop planning: deterministic it is
        bind(log, cid, opportunityId=opp.id).exception("LLM planning failed; the deterministic plan stands")
        return fallback
    if doc is None or "failed" in doc:
        why = doc["failed"] if doc else "no answer"
        return Decision(fallback.outcome, fallback.plan, f"{fallback.reason} (LLM: {why}; deterministic plan)",
                        fallback.problems)
    proposal = llm_plan.PlanProposal.model_validate(doc)
    decision, verdict = llm_plan.adopt(proposal, candidates, opp.attributes, fallback,
                                       services.policy.confidenceThreshold, version, services.catalog.pii_fields)
    if verdict.outcome != "adopted":
        _telemetry(services, cid, {"at": services.clock.now().isoformat(), "promptVersion": version,
                                   "purpose": "plan", "outcome": verdict.outcome, "key": key,
                                   "detail": scrub(verdict.detail), "correlationId": cid, "opportunityId": opp.id})
        bind(log, cid, opportunityId=opp.id).warning("LLM plan not adopted (%s): %s", verdict.outcome,
                                                     scrub(verdict.detail))
        if verdict.outcome == "contract":
            return Decision(fallback.outcome, fallback.plan, f"{fallback.reason} (LLM plan broke the contract: "
                            f"{scrub(verdict.detail)[:120]}; deterministic plan)", fallback.problems)
    return decision
