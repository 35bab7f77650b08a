"""Rescoring the open backlog when a calibration moved (the learn step, services/learning.py; docs/learning.md).

A calibration factor that moved by more than `learning.rescoreDelta` from the one the backlog was last rescored
with queues a job for its pattern and action version; each sweep rescores at most `learning.rescoreBatch` open
opportunities over all jobs, in id order from the cursor the job keeps in the learning record, so a busy backlog
is never rewritten in one sweep. Each goes through calibrations.rescored and is saved under its ETag: one changed
meanwhile (ConcurrencyConflict) is kept in the job's retry list for the next sweep.
"""
from __future__ import annotations

import logging
from typing import Any

from ..domain.opportunity import Opportunity
from ..domain.status import FINISHED, Status
from ..logs import bind
from ..ports import ConcurrencyConflict, Filter, Services
from . import calibrations

log = logging.getLogger(__name__)
# In flight: the work is under way (a flow call may be out), so its rank decides nothing any more, and a write
# now would only make the stage that holds it retry on a changed ETag.
IN_FLIGHT = frozenset({Status.approved, Status.executing, Status.executed})


def _key(c: dict[str, Any]) -> str:
    return "|".join((c["processArea"], c["deviationPattern"], c["actionId"], str(c["actionVersion"])))


def enqueue(services: Services, record: dict[str, Any], items: list[dict[str, Any]]) -> int:
    """Queue a rescoring job for each pattern × action version whose factor for any KPI moved by more than
    rescoreDelta from the one applied last (1.0 before any); returns how many were queued (or restarted)."""
    from .learning import event

    applied: dict[str, dict[str, float]] = record.setdefault("applied", {})
    jobs: list[dict[str, Any]] = record.setdefault("rescore", [])
    now = services.clock.now().isoformat()
    delta = services.policy.learning.rescoreDelta
    new: dict[str, dict[str, float]] = {}
    about: dict[str, dict[str, Any]] = {}
    for c in items:
        new.setdefault(_key(c), {})[c["metric"]] = float(c["factor"])
        about.setdefault(_key(c), c)
    queued = 0
    for key in sorted(set(new) | set(applied)):
        now_f, was = new.get(key, {}), applied.get(key, {})
        moved = {m: [was.get(m, 1.0), now_f.get(m, 1.0)] for m in sorted(set(now_f) | set(was))
                 if abs(now_f.get(m, 1.0) - was.get(m, 1.0)) > delta}
        if not moved:
            continue
        if now_f:
            applied[key] = now_f
        else:
            applied.pop(key, None)
        area, pattern, action_id, version = key.rsplit("|", 3)
        action = services.catalog.actions.get(action_id)
        if action is None or action.version != int(version):
            continue  # scoring calibrates the current version only: nothing in the backlog would change
        job = next((j for j in jobs if j["key"] == key), None)
        if job is None:
            job = {"key": key, "processArea": area, "deviationPattern": pattern, "actionId": action_id,
                   "actionVersion": int(version)}
            jobs.append(job)
        job.update(after=None, scanned=False, retry=[], rescored=0, skipped=0, since=now, factors=moved)
        text = about[key]["text"] if key in about else f"{action_id} v{version}: no calibration any more"
        event(services, "calibration", f"{area} · {pattern}: factor moved "
              + ", ".join(f"{m} {a:.2f} → {b:.2f}" for m, (a, b) in moved.items())
              + f" ({text}); its open opportunities are rescored", processArea=area, deviationPattern=pattern,
              actionId=action_id, actionVersion=int(version), factors=moved, evidence=text)
        queued += 1
    return queued


def _unchanged(old: Opportunity, new: Opportunity) -> bool:
    a, b = old.scores, new.scores
    return (abs(a.priority - b.priority) <= 1e-9 * max(1.0, abs(a.priority)) and a.actionId == b.actionId
            and old.rationale == new.explained())


def _batch(services: Services, job: dict[str, Any], budget: int) -> list[str]:
    """The next ids of the job: its retries first, then open ones after its cursor (id order)."""
    ids = job["retry"][:budget]
    job["retry"] = job["retry"][len(ids):]
    left = budget - len(ids)
    if left > 0 and not job["scanned"]:
        after = job["after"]
        where = Filter(state="open", processArea=job["processArea"], deviationPattern=job["deviationPattern"])
        rows = sorted(r["RowKey"] for r in services.store.scan(where, ["RowKey", "actionId", "status"])
                      if r["actionId"] == job["actionId"] and r["status"] not in IN_FLIGHT
                      and (after is None or r["RowKey"] > after))
        take = rows[:left]
        ids += take
        if take:
            job["after"] = take[-1]
        job["scanned"] = len(rows) <= left
    return ids


def run(services: Services, record: dict[str, Any], cid: str) -> dict[str, int]:
    """Rescore at most rescoreBatch open opportunities of the queued jobs; returns rescored, skipped (changed
    meanwhile: retried next sweep) and the opportunities still pending in unfinished jobs' retry lists."""
    from .learning import event

    jobs: list[dict[str, Any]] = record.get("rescore", [])
    budget = services.policy.learning.rescoreBatch
    rescored = skipped = 0
    for job in list(jobs):
        if budget <= 0:
            break
        ids = _batch(services, job, budget)
        budget -= len(ids)
        done = missed = handled = 0
        try:
            opps = services.store.get_many(ids) if ids else {}
            for oid in ids:
                opp = opps.get(oid)
                if opp is not None and opp.status not in FINISHED and opp.status not in IN_FLIGHT \
                        and opp.scores.actionId == job["actionId"]:  # else finished, under way or another's
                    new = calibrations.rescored(services, opp)
                    if not _unchanged(opp, new):
                        try:
                            services.store.save(new)
                            done += 1
                        except ConcurrencyConflict:
                            job["retry"].append(oid)
                            missed += 1
                handled += 1
        except Exception:
            # The learn step saves the record even so (its cursor is past this batch): what was not handled
            # goes first next sweep.
            job["retry"] = [*ids[handled:], *job["retry"]]
            job["rescored"] += done
            job["skipped"] += missed
            raise
        job["rescored"] += done
        job["skipped"] += missed
        rescored, skipped = rescored + done, skipped + missed
        finished = job["scanned"] and not job["retry"]
        if done or missed:  # a batch that changed nothing is no policy event
            event(services, "rescored", f"{job['processArea']} · {job['deviationPattern']}: {done} open "
                  f"opportunit{'y' if done == 1 else 'ies'} rescored with {job['actionId']} v{job['actionVersion']}'s "
                  f"calibration this sweep ({job['rescored']} in all), {missed} changed meanwhile"
                  + ("; done" if finished else "; continuing next sweep"), processArea=job["processArea"],
                  deviationPattern=job["deviationPattern"], actionId=job["actionId"],
                  actionVersion=job["actionVersion"], rescored=done, skipped=missed, factors=job["factors"])
        if finished:
            jobs.remove(job)
    if rescored or skipped:
        bind(log, cid).info("rescored %d open opportunities (%d changed meanwhile)", rescored, skipped)
    return {"rescored": rescored, "skipped": skipped, "pending": len(jobs)}
