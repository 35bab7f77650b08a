"""LLM planning cost and speed: model calls per 1,000 opportunities of the demo workload, and planner time.

The demo's five sample sources (normalized as the ingest routes do), repeated with new case keys and
entity ids up to 1,000 findings, are triaged against the sandbox's flows, then planned one by one with
the real openai client against devhost/llm_server.py. Every plan template is asked for once; the rest
come from the cache. Prints JSON: {"llm_calls_per_1000", "planner_ms_p50", "planner_ms_p95", "templates"}.
"""
from __future__ import annotations

import json
import statistics
import time
from typing import Any

import msgspec


def demo_findings(n: int = 1000) -> list[Any]:
    """The demo's findings, cloned with fresh case keys (and the ids naming the case) until there are n."""
    from devhost.demo import SAMPLES, SOURCES
    from shared.ingest import celonis, process_mining
    from shared.ingest.generic import parse_findings

    base = []
    for _, route, name, params, kind in SOURCES:
        body = (SAMPLES / name).read_bytes()
        if route == "findings/celonis":
            base += celonis.normalize(body, params).findings
        elif route == "findings/process-mining":
            base += process_mining.normalize(body, kind, params).findings
        else:
            base += parse_findings(body)
    out = []
    for i in range(n):
        f = base[i % len(base)]
        case = f"{f.caseKey}-{i}"
        attributes = {k: (case if v == f.caseKey else v) for k, v in f.attributes.items()}
        out.append(msgspec.structs.replace(f, eventId=f"{f.eventId}-{i}", caseKey=case, attributes=attributes))
    return out


def main(n: int = 1000) -> None:
    import logging

    from devhost.llm_server import LlmServer
    from devhost.sandbox import Sandbox
    from shared.adapters.http_flows import HttpFlows
    from shared.adapters.openai_llm import build
    from shared.domain.status import Status
    from shared.services import llm_planner, pipeline
    from shared.services.ingest import ingest
    from shared.settings import Settings
    from tests.factories import RecordingBus, memory_services

    logging.disable(logging.WARNING)
    with Sandbox(seed=1) as sandbox, LlmServer() as server:
        svc = memory_services(flows=HttpFlows(sandbox.settings()))
        svc.llm = build(Settings.from_env({"LLM_BASE_URL": server.base_url, "LLM_TIMEOUT_SECONDS": "10"}))
        llm_planner.reset()
        report = ingest(svc, demo_findings(n), "bench-llm")
        ids = [r.opportunity.id for r in report.results]
        assert isinstance(svc.bus, RecordingBus)
        for m in svc.bus.take("triage"):
            pipeline.handle(svc, "triage", json.dumps(m.body).encode())
        ready = [o for o in map(svc.store.get, ids) if o is not None and o.status is Status.triaged]
        timings = []
        for opp in ready:
            start = time.perf_counter()
            pipeline.handle(svc, "plan", json.dumps({"type": "plan", "opportunityId": opp.id,
                                                     "correlationId": "bench-llm"}).encode())
            timings.append((time.perf_counter() - start) * 1000)
        timings.sort()
        methods = [o.plan if (o := svc.store.get(r.id)) else None for r in ready]
    print(json.dumps({"llm_calls_per_1000": round(server.calls() * 1000 / len(ids), 1),
                      "planner_ms_p50": round(statistics.median(timings), 3),
                      "planner_ms_p95": round(timings[int(len(timings) * 0.95)], 3),
                      "llm_planned": sum(1 for p in methods if p and p.get("method") == "llm"),
                      "planned": len(ready), "opportunities": len(ids)}))


if __name__ == "__main__":
    main()
