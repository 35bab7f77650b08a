"""The weekly review (`GET /api/insights`): what to build, retire or rework next, from what was measured."""
from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta
from typing import Any

from ..domain.execution import FAILED, REJECTED
from ..domain.impact import acted
from ..ports import Filter, Services
from . import answers, learning
from .measure import kpis

# Statuses where the case waits on a person now.
WITH_PEOPLE = ("needs_review", "needs_data", "awaiting_approval")
_IDS = re.compile(r"\b[0-9a-f]{8,}\b|\b[A-Z]{2,}-?\d+\b|\d+(\.\d+)?")
TOP = 10


def _reason(message: str | None) -> str:
    """A failure message with its ids and numbers blanked, so the same cause groups as one reason."""
    return _IDS.sub("#", (message or "no message").strip())[:160]


def _doc(value: Any) -> Any:
    """A JSON field as a scan returns it: text from the Tables and Dataverse entities, as is otherwise."""
    return json.loads(value) if isinstance(value, str) and value else value


def _acted_before(services: Services, old: list[tuple[str, tuple[str, str]]]) -> Counter[tuple[str, str]]:
    """Acted-on cases per group among closed rows written before the `closedFrom` property existed (id, group):
    only those lack it, so only their plans are read (one get_many; a row closed since carries it)."""
    cases = services.store.get_many([oid for oid, _ in old]) if old else {}
    return Counter(key for oid, key in old
                   if oid in cases and acted("closed", (cases[oid].plan or {}).get("closedFrom")))


def weekly_review(services: Services, days: int = 28) -> dict[str, Any]:
    """Catalog gaps (with the names they were reported under), weak action versions, recurrence rates, recurring
    failures and watchdog flags, card feedback, people's answers as posteriors (tightened pairs, relaxations to
    propose), and the patterns people handle most, over the last `days`."""
    now = services.clock.now()
    since = now - timedelta(days=days)
    measurement = services.policy.measurement
    groups: dict[tuple[str, str], Counter[str]] = {}
    impact: dict[tuple[str, str], float] = {}
    # The names each group was reported under (an alias in catalog/aliases.json may have mapped them).
    names: dict[tuple[str, str], Counter[tuple[str, str]]] = {}
    old: list[tuple[str, tuple[str, str]]] = []  # closed rows without closedFrom: read whole after the scan
    for row in services.store.scan(Filter(), ["RowKey", "processArea", "deviationPattern", "status", "actionId",
                                              "impact", "reported", "closedFrom"]):
        key = (row["processArea"], row["deviationPattern"])
        g = groups.setdefault(key, Counter())
        g["cases"] += 1
        g[row["status"]] += 1
        if row["status"] == "closed" and row.get("closedFrom") is None:
            old.append((row["RowKey"], key))
        else:
            g["acted"] += acted(row["status"], row.get("closedFrom"))
        impact[key] = impact.get(key, 0.0) + (row["impact"] or 0.0)
        was = _doc(row.get("reported")) or {}
        names.setdefault(key, Counter())[(was.get("processArea", key[0]), was.get("deviationPattern", key[1]))] += 1
    for key, n in _acted_before(services, old).items():
        groups[key]["acted"] += n
    gaps: list[dict[str, Any]] = [
        {"processArea": pa, "deviationPattern": p, "cases": c["cases"], "totalImpact": round(impact[(pa, p)], 2),
         "why": "no enabled action in the catalog for this pattern in this environment",
         "reportedAs": [{"processArea": a, "deviationPattern": n, "cases": k}
                        for (a, n), k in sorted(names[(pa, p)].items(), key=lambda kv: (-kv[1], kv[0]))][:TOP]}
        for (pa, p), c in groups.items()
        if c["cases"] >= measurement.gapMinCases and not services.catalog.candidates(pa, p)]
    gaps.sort(key=lambda g: -g["totalImpact"])

    report = kpis(services, weekly=False)
    weak = weak_versions(learning.stored(services))

    executions = services.store.executions_since(since)
    by_id = {x.id: x for x in executions}
    failures: Counter = Counter()
    flags: Counter = Counter()
    for x in executions:
        prompt = (x.planner or {}).get("promptVersion") or "deterministic"
        if x.kind == "action" and x.status in (FAILED, REJECTED):
            failures[(x.actionId, x.actionVersion, prompt, _reason(x.message))] += 1
        if x.kind == "compensation":
            original = by_id.get(x.compensates or "")
            if original is not None:
                flags[(original.actionId, original.actionVersion,
                       (original.planner or {}).get("promptVersion") or "deterministic")] += 1
    decided = services.store.decided_approvals(since)
    seen = answers.read(services, since, decided)
    asked: Counter = Counter()
    for a in decided:
        asked[(a.actionId or "-", a.kind)] += 1
    people: list[dict[str, Any]] = [
        {"processArea": pa, "deviationPattern": p, "waitingOnPeople": sum(c[s] for s in WITH_PEOPLE),
         "handledByAgent": c["acted"], "cases": c["cases"],
         "suggestion": "a new action variant could take these" if not c["acted"]
         else "widen the action's data contract or autonomy"}
        for (pa, p), c in groups.items() if any(c[s] for s in WITH_PEOPLE)]
    people.sort(key=lambda g: -g["waitingOnPeople"])
    return {
        "window": {"from": since.isoformat(), "to": now.isoformat(), "days": days},
        "catalogGaps": gaps[:TOP],
        "weakActionVersions": weak,
        # Versions the learning step judged on their primary KPI: harmful (frozen) or null (ramp held).
        "learningFlags": [{"actionId": a, "actionVersion": v, **f,
                           "suggestion": "roll back or retire: it harms its primary KPI; a person lifts the freeze"
                           if f["verdict"] == "harmful" else
                           "rework or retire: no effect told apart from zero; its ramp does not widen"}
                          for (a, v), f in sorted(learning.flags(services).items())],
        # Deviations back after a verified action, per action version the agent ran (and its echoes).
        "recurrence": report["recurrence"],
        "failureReasons": [{"actionId": a, "actionVersion": v, "promptVersion": p, "reason": r, "count": n}
                           for (a, v, p, r), n in failures.most_common(TOP)],
        "watchdogFlags": [{"actionId": a, "actionVersion": v, "promptVersion": p, "compensations": n}
                          for (a, v, p), n in flags.most_common(TOP)],
        "cardFeedback": card_feedback(seen.helpful),
        # People's answers per action version × pattern as posteriors, the pairs tightened by them, and the
        # relaxations a person with the autonomy role may apply.
        **answers.review(services, days, seen),
        "sentToPeople": people[:TOP],
        "decisionsByPeople": [{"actionId": a, "kind": k, "count": n} for (a, k), n in asked.most_common(TOP)],
        "llm": llm_usage(services.reference.telemetry("llm", since)),
    }


_WEAK = {"harmful": "retire or roll back: it makes the KPI worse",
         "null": "rework or retire: no effect told apart from zero"}


def weak_versions(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Action versions × patterns the learn step judged harmful or null on their primary KPI: its stored verdicts,
    the ones learningFlags, the freeze and the ramp act on (an effect under a sample ratio mismatch, or on another
    KPI, is no verdict), so the review never says otherwise."""
    keys = ("actionId", "actionVersion", "processArea", "deviationPattern", "metric", "verdict", "why")
    return [{**{k: v[k] for k in keys}, "judgedAt": record.get("at"), "suggestion": _WEAK[v["verdict"]]}
            for v in record.get("verdicts", []) if v["verdict"] in _WEAK]


def card_feedback(helpful: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The "was this helpful?" answers per action version, pattern and card kind (answers.read: one per card)."""
    counts: dict[tuple[str, Any, str, str, str], Counter] = {}
    for r in helpful:
        key = (r.get("actionId") or "-", r.get("actionVersion"), r.get("processArea") or "-",
               r.get("deviationPattern") or "-", r.get("cardKind") or "-")
        counts.setdefault(key, Counter())["yes" if r["helpful"] else "no"] += 1
    return [{"actionId": a, "actionVersion": v, "processArea": pa, "deviationPattern": p, "kind": k,
             "helpful": c["yes"], "notHelpful": c["no"], "score": round(c["yes"] / (c["yes"] + c["no"]), 3)}
            for (a, v, pa, p, k), c in sorted(counts.items(), key=lambda kv: str(kv[0]))]


def llm_usage(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Model calls per prompt version: outcomes (ok, refused, timeout, non_candidate…), tokens, median latency."""
    by_version: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_version.setdefault(r.get("promptVersion") or "?", []).append(r)
    out = []
    for version, rows in sorted(by_version.items()):
        calls = [r for r in rows if "latencyMs" in r]
        latencies = sorted(r["latencyMs"] for r in calls)
        out.append({"promptVersion": version, "calls": len(calls),
                    "outcomes": dict(Counter(r["outcome"] for r in rows)),
                    "promptTokens": sum(r.get("promptTokens", 0) for r in calls),
                    "completionTokens": sum(r.get("completionTokens", 0) for r in calls),
                    "latencyP50Ms": latencies[len(latencies) // 2] if latencies else None})
    return out
