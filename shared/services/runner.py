"""One runner for every agent stage: read what a batch needs, let the stage decide, write what it decided.

Each Azure SDK request costs ~3 ms of CPU here, so a stage that read and wrote per message topped out near
30 opportunities a second. The runner reads a batch's opportunities, claims and executions in one call
each, overlaps system-of-record reads and flow calls on threads, and writes the commits in a few table
transactions. Only a message whose commit landed has its sends, notifications, incidents and metrics
released; one whose commit was refused (someone moved the opportunity meanwhile) is read and decided
again, a flow's answer it got already applied again rather than asked for twice. A single
message is a batch of one. Every stage is idempotent: a message for an opportunity that has moved past
the stage re-sends the nudge its status needs, under the same deterministic id, so a send lost in a crash
after a commit is repaired by the redelivery (and dropped by duplicate detection if it was not lost).
"""
from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..domain.messages import StageMessage, nudge
from ..domain.opportunity import Opportunity
from ..logs import bind
from ..ports import ConcurrencyConflict, Incident, Message, Services
from . import executor, flowrun, messaging, notices, planner, sor, triage, watchdog
from .stage import RESUME, Call, Found, Needs, Outcome, Result

log = logging.getLogger(__name__)
REFUSALS = 3  # a message refused this often in one batch goes back to the bus (raising redelivers the batch)
_pool: ThreadPoolExecutor | None = None


@dataclass(eq=False)
class Job:
    body: bytes
    delivery: int
    msg: StageMessage = field(init=False)  # set once parsed: only parsed messages reach a stage
    opp: Opportunity = field(init=False)  # set by each round's read
    found: Found = field(default_factory=Found)
    result: Result | None = None
    refused: int = 0
    # A flow's answer whose commit was refused: (execution id, its ETag when called, the flowrun.Attempt). If the
    # execution is read unchanged when the message is decided again, the answer is applied, not asked again.
    kept: tuple[str, str | None, Any] | None = None


def run(services: Services, stage: str, bodies: Sequence[tuple[bytes, int]]) -> list[Result]:
    """Run one stage for many messages; returns what happened to each, in order. Raising makes the bus redeliver."""
    jobs = [Job(body, delivery) for body, delivery in bodies]
    live = [job for job in jobs if _parsed(services, stage, job)]
    while live:
        live = _round(services, stage, live)
    results = [job.result for job in jobs]
    if log.isEnabledFor(logging.DEBUG):
        for job in jobs:
            if hasattr(job, "msg"):
                _log(job, stage).debug("%s: %s", stage, job.result)
    # One info line a batch (up to 100 messages: host.json maxMessageBatchSize); each message's at debug. The
    # line names every correlation id it covers, so a search for one run still finds it.
    cids = sorted({job.msg.correlationId for job in jobs if hasattr(job, "msg")})
    log.info("%s: %s", stage, dict(Counter(results)), extra={"correlationId": cids[0] if len(cids) == 1 else None,
                                                            "correlationIds": cids, "stage": stage})
    return results  # type: ignore[return-value]  # every message has settled by now


def _parsed(services: Services, stage: str, job: Job) -> bool:
    """Settle what can never run here: an unreadable body (poison, an incident) or a message for another stage."""
    try:
        job.msg = StageMessage.model_validate_json(job.body)
    except ValidationError as exc:
        # A message that can never parse must settle, not bounce until it is dead-lettered.
        detail = f"unreadable {stage} message: {exc.errors(include_url=False)[:3]}"
        log.error(detail)
        # The same unreadable body is the same incident, however often it is delivered.
        incident_id = hashlib.sha256(stage.encode() + b"\0" + job.body).hexdigest()[:32]
        kept, note = notices.incident_of(services, Incident(incident_id, services.clock.now(), "poison", stage,
                                                            f"{detail}; body {job.body[:500]!r}"))
        _write(services, [(job, Outcome(Result.POISON, notes=[note], incidents=[kept]))])
        return False
    if job.msg.type != stage:
        _log(job, stage).error("message of type %s arrived on the %s queue; dropped", job.msg.type, stage)
        job.result = Result.MISROUTED
        return False
    return True


def _round(services: Services, stage: str, jobs: list[Job]) -> list[Job]:
    """Read, decide and write once for one message per opportunity; returns the messages to run again."""
    opps = services.store.get_many(list({job.msg.opportunityId for job in jobs}))
    now, later, seen = [], [], set()
    for job in jobs:
        opp, job.found = opps.get(job.msg.opportunityId), Found()
        if opp is None:
            _log(job, stage).warning("opportunity not found; message dropped")
            job.result = Result.MISSING
            continue
        job.opp = opp
        if opp.id in seen:
            later.append(job)  # a second message for it decides on what the first one leaves
        else:
            seen.add(opp.id)
            now.append(job)
    _gather(services, stage, now)
    decided = [(job, _decide(services, stage, job)) for job in now]
    refused = _write(services, decided)
    calls = [(job, o.call) for job, o in decided if o.call is not None and job not in refused]
    if calls:  # only now: each call's execution is on record, so a crash after it replays its key
        refused += _write(services, _called(services, calls))
    for job in refused:
        job.refused += 1
        if job.refused >= REFUSALS:
            raise ConcurrencyConflict(f"{job.opp.id}: refused {job.refused} times in one batch")
    return refused + later


def _needs(services: Services, stage: str) -> Callable[[Job], Needs] | None:
    return {"triage": lambda job: triage.needs(services, job.opp),
            "plan": lambda job: planner.needs(services, job.opp),
            "execute": lambda job: executor.needs(job.opp),
            "verify": lambda job: watchdog.needs(services, job.opp, job.found)}.get(stage)


def _gather(services: Services, stage: str, jobs: list[Job]) -> None:
    """Read what the stage needs, a kind at a time for the batch, until it needs nothing more (the
    watchdog needs up to three turns: its execution, then the record to check, then on a breach the
    opportunity's executions for a compensation already begun)."""
    needs = _needs(services, stage)
    while needs is not None:
        wanted = [(job, lacking) for job in jobs if (lacking := job.found.lacks(needs(job)))]
        if not wanted:
            return
        reads = [(job, r) for job, n in wanted for r in n.reads]
        # System-of-record reads are flow calls: overlapped on threads while the claims and executions are read.
        records = _threads().map(lambda p: sor.read(services, p[1].params, p[1].key, p[0].msg.correlationId,
                                                    p[0].opp.id), reads) if reads else iter(())
        claims = [(job.opp.id, c) for job, n in wanted for c in n.claims]
        twins = iter(triage.twins(services, claims)) if claims else iter(())
        # An opportunity's executions are one query each: overlapped on threads as well.
        owners = list({o for _, n in wanted for o in n.histories})
        listed = _threads().map(services.store.executions, owners) if owners else iter(())
        pairs = list({k for _, n in wanted for k in n.executions})
        executions = services.store.executions_by_id(pairs) if pairs else {}
        # A handful of actions per batch: one read of each ramp stage and cap, not one per message.
        states = {name: services.coordination.state(name) for name in {s for _, n in wanted for s in n.states}}
        now_ms = int(services.clock.now().timestamp() * 1000)
        rules = {r.key: r for _, n in wanted for r in n.limits}
        full = {key: services.coordination.limit_full(rule, now_ms) for key, rule in rules.items()}
        histories = dict(zip(owners, listed, strict=True))
        for job, n in wanted:
            for c in n.claims:
                job.found.twins[c.key] = next(twins)
            for k in n.executions:
                job.found.executions[k] = executions.get(k)
            job.found.states.update((name, states[name]) for name in n.states)
            job.found.full.update((r.key, full[r.key]) for r in n.limits)
            job.found.histories.update((o, histories[o]) for o in n.histories)
        for (job, r), record in zip(reads, records, strict=True):
            job.found.records[r.key] = record


def _decide(services: Services, stage: str, job: Job) -> Outcome:
    opp, cid = job.opp, job.msg.correlationId
    if stage == "triage":
        outcome = triage.decide(services, opp, cid, job.found)
    elif stage == "plan":
        outcome = planner.decide(services, opp, cid, job.found)
    elif stage == "execute":
        outcome = executor.decide(services, opp, job.msg, job.found)
    else:
        outcome = watchdog.decide(services, opp, job.msg, job.found)
    next_stage = RESUME.get(opp.status)
    if outcome.result.passed and next_stage and next_stage != stage:
        outcome.send(nudge(next_stage, opp.id, opp.revision, cid))
    return outcome


def _called(services: Services, calls: list[tuple[Job, Call]]) -> list[tuple[Job, Outcome]]:
    """Admit the batch's calls in one limiter round, make the granted ones concurrently, and let each stage
    say what its answer means (a throttled call is rescheduled, never made)."""
    needed = [(job, c) for job, c in calls if c.needed]
    # Answered already, its commit refused since, and the execution unchanged: its answer again, no call.
    attempts = {id(job): flowrun.again(c.execution, job.kept[2]) for job, c in needed
                if job.kept and job.kept[:2] == (c.execution.id, c.execution.etag)}
    needed = [(job, c) for job, c in needed if id(job) not in attempts]
    ruled = [(job, c) for job, c in needed if c.rules]
    verdicts = services.coordination.acquire_many(
        [c.rules for _, c in ruled], int(services.clock.now().timestamp() * 1000)) if ruled else []
    over = {id(job): v for (job, _), v in zip(ruled, verdicts, strict=True) if not v.granted}
    go = [(job, c) for job, c in needed if id(job) not in over]
    called = [(job, c.execution.id, c.execution.etag) for job, c in go]  # as they stood when called
    answers = _threads().map(
        lambda p: flowrun.call(services, p[1].action, p[1].execution, p[0].msg.correlationId, p[1].poll_url), go)
    for (job, xid, etag), answer in zip(called, answers, strict=True):
        job.kept = (xid, etag, answer)
        attempts[id(job)] = answer
    return [(job, c.over(over[id(job)]) if id(job) in over else c.done(attempts.get(id(job)))) for job, c in calls]


def _write(services: Services, decided: list[tuple[Job, Outcome]]) -> list[Job]:
    """Write the commits; release the sends, incidents and notifications of the landed ones; return the refused."""
    owned = [(job, c) for job, o in decided for c in o.commits]
    results = services.store.commit_many([c for _, c in owned]) if owned else []
    refused = {id(job) for (job, _), r in zip(owned, results, strict=True) if r is not None}
    messages: list[Message] = []
    landed = [(job, o) for job, o in decided if id(job) not in refused]
    for job, o in landed:
        job.result = o.result
        for send in o.sends:
            messages += messaging.messages(services, send.nudges, send.at)
    if messages:
        services.bus.send(messages)
    notifier = services.notifier
    for _, o in landed:
        for count in o.counts:
            count()
        for found in o.incidents:
            services.reference.record_incident(found)
        for note in o.notes:
            if notifier is not None:
                notifier.notify(note.kind, note.opportunity_id, note.subject, note.details)
    return [job for job, _ in decided if id(job) in refused]


def _threads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(16, thread_name_prefix="flows")  # flow calls are I/O: overlap them
    return _pool


def _log(job: Job, stage: str) -> Any:
    return bind(log, job.msg.correlationId, opportunityId=job.msg.opportunityId, stage=stage,
                deliveryCount=job.delivery)
