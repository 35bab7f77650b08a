"""The loop's Learn step: what each action version was expected to do against what it measurably did, and what
the sweep changes because of it (docs/learning.md).

`report` is GET /api/learning: per action version × pattern × KPI the miners' expectation beside the measured
effect, the calibration (domain/learning.py) and, on the action's primary KPI, a verdict. `learn` is the sweep's
step: it writes the calibrations scoring reads (services/calibrations.py), freezes an action version whose effect
is significantly harmful (once; a person lifts it), flags a null one (ramp stops widening it), rescores the open
opportunities a moved calibration changes (in batches, rescoring.py) and audits each change as a policy event.
"""
from __future__ import annotations

import logging
from typing import Any

from ..domain import learning
from ..domain.autonomy import Autonomy
from ..domain.catalog import Action
from ..domain.learning import judge
from ..domain.policy import Policy
from ..logs import bind
from ..ports import Incident, Services
from . import answers, autonomy, calibrations, notices, policy_events, rescoring
from .measure import kpis

log = logging.getLogger(__name__)
STATE = "learning"  # the learn step's own record: verdicts, the versions it froze or flagged, rescoring
ACTOR = "learning"
# Verdicts that stop a version: a harmful one is frozen to approval, neither widens its ramp.
STOPS = ("harmful", "null")


def entry(row: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """One action version × pattern × KPI: expected beside measured (the effect on the cases the action ran on
    when there is one, else the intention-to-treat difference, saying which), n, CI, calibration, SRM, verdict."""
    ok = row["status"] == "ok"
    acted = row.get("acted") if ok else None
    itt = {"difference": row["difference"], "se": row.get("se"), "ci": row["ci"],
           "population": row.get("population") or "intention to treat"} if ok else None
    measured = ({**acted, "basis": "acted"} if acted else {**itt, "basis": "itt"} if itt else None)
    expected = row.get("expected")
    cal = None
    if measured is not None and expected and measured.get("se") is not None:
        found = learning.calibrate(row["processArea"], row["deviationPattern"], row["actionId"],
                                   int(row["actionVersion"]), row["metric"], expected.get("unit") or row.get("unit"),
                                   float(expected["change"]), int(expected["n"]), float(measured["difference"]),
                                   float(measured["se"]), row["treated"]["n"], row["control"]["n"],
                                   policy.learning.priorSd, policy.learning.maxFactor)
        cal = found.to_dict() if found else None
    primary = policy.measurement.primary_for(row["actionId"]) == row["metric"]
    return {"processArea": row["processArea"], "deviationPattern": row["deviationPattern"],
            "actionId": row["actionId"], "actionVersion": row["actionVersion"], "metric": row["metric"],
            "unit": row.get("unit"), "better": row.get("better"), "primary": primary, "status": row["status"],
            **({"reason": row["reason"]} if not ok and row.get("reason") else {}),
            "n": {"treated": row["treated"]["n"], "control": row["control"]["n"]}, "cases": row.get("cases"),
            "expected": expected, "measured": measured, "itt": itt, "calibration": cal,
            "srm": row.get("srm"), "srmAssigned": row.get("srmAssigned"),
            "verdict": judge(row, policy.learning) if primary else None}


def entries(report: dict[str, Any], policy: Policy) -> list[dict[str, Any]]:
    """Every metric row of a KPI report (measure.kpis) as a learning entry."""
    keys = ("processArea", "deviationPattern", "actionId", "actionVersion")
    return [entry({**{k: e[k] for k in keys}, "cases": e.get("cases"), **m}, policy)
            for e in report["items"] for m in e["metrics"]]


def version_key(action_id: str, version: int) -> str:
    return f"{action_id}@v{version}"


def verdicts(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The primary-KPI verdict of each action version × pattern, flat (what the record keeps and ramp reads)."""
    return [{"processArea": i["processArea"], "deviationPattern": i["deviationPattern"], "actionId": i["actionId"],
             "actionVersion": i["actionVersion"], "metric": i["metric"], **i["verdict"]}
            for i in items if i["verdict"] is not None]


def stored(services: Services) -> dict[str, Any]:
    """The learn step's record as last written ({} before the first sweep)."""
    return services.coordination.state(STATE) or {}


def flags(services: Services) -> dict[tuple[str, int], dict[str, Any]]:
    """Action versions the last sweep judged harmful or null on their primary KPI (for insights and ramp):
    (actionId, version) → {"verdict", "why", "processArea", "deviationPattern", "metric"}."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for v in stored(services).get("verdicts", []):
        if v["verdict"] in STOPS and out.get((v["actionId"], v["actionVersion"]), {}).get("verdict") != "harmful":
            out[(v["actionId"], int(v["actionVersion"]))] = {k: v[k] for k in ("verdict", "why", "processArea",
                                                                               "deviationPattern", "metric")}
    return out


def ramp_hold(services: Services, action: Action, record: dict[str, Any] | None = None) -> str | None:
    """Why the ramp of `action` (its current version) must not widen now, or None when the evidence allows it:
    never over a harmful or null verdict or a significantly harmful direction; with `rampNeedsMeasurement`, only
    over a measured (status ok), trusted effect on the primary KPI."""
    found = [v for v in (record if record is not None else stored(services)).get("verdicts", [])
             if v["actionId"] == action.id and int(v["actionVersion"]) == action.version]
    for v in found:
        # An outcome-count mismatch (warnings) holds too: widening is not the safe side of a doubtful comparison.
        if v["verdict"] in STOPS or v.get("side") == "harmful" or v.get("warnings"):
            return f"{action.id} v{action.version} in {v['deviationPattern']}: {v['why']}"
    if services.policy.learning.rampNeedsMeasurement and not any(
            v["measured"] and v["verdict"] != "srm_mismatch" for v in found):
        return (f"{action.id} v{action.version} has no measured effect on its primary KPI "
                f"({services.policy.measurement.primary_for(action.id)}) yet")
    return None


def ramp_evidence(services: Services, action: Action, record: dict[str, Any] | None = None) -> str:
    """The verdicts on the current version of `action` a ramp widened over, as text (the figures)."""
    found = [f"{v['deviationPattern']}: {v['why']}"
             for v in (record if record is not None else stored(services)).get("verdicts", [])
             if v["actionId"] == action.id and int(v["actionVersion"]) == action.version]
    return "; ".join(found) or f"no measured effect on {services.policy.measurement.primary_for(action.id)} yet"


def event(services: Services, kind: str, text: str, **evidence: Any) -> dict[str, Any]:
    """Audit one automatic change of the learning step as a policy event naming its evidence."""
    return policy_events.record(services, kind, ACTOR, text, **evidence)


def report(services: Services, measured: dict[str, Any] | None = None) -> dict[str, Any]:
    """GET /api/learning: expected vs measured per action version × pattern × KPI, the verdicts, the versions the
    learn step froze or flagged, the recent policy events and people's answers (from `measured`, a KPI report
    already read, when given: the dashboard reads it once for both)."""
    items = entries(measured if measured is not None else kpis(services, weekly=False), services.policy)
    record = stored(services)
    frozen = set(autonomy.current(services).frozenActions)
    froze = record.get("froze", {})
    versions = [{**v, "frozen": v["actionId"] in frozen,
                 "frozenByLearning": version_key(v["actionId"], v["actionVersion"]) in froze,
                 "lifted": bool(froze.get(version_key(v["actionId"], v["actionVersion"]), {}).get("lifted"))}
                for v in verdicts(items)]
    return {"generatedAt": services.clock.now().isoformat(), "learnedAt": record.get("at"),
            "items": items, "verdicts": versions, "froze": froze, "flagged": record.get("flagged", {}),
            "rescoring": record.get("rescore", []), "policyEvents": policy_events.recent(services),
            "answers": answers.summary(services), "policy": services.policy.learning.model_dump(),
            "method": "measured: the effect on the cases the action ran on (acted) when estimated, else the "
                      "intention-to-treat difference (itt); ratio = measured ÷ expected, factor shrunk toward 1"}


def _lifted_by_person(current: Autonomy, action_id: str) -> bool:
    """Whether the freeze on `action_id` was lifted by a person: it is not frozen and the autonomy record's latest
    change is a person's. Agents only add freezes (freezeAdd, onto a fresh read), so an agent's write is never a
    lift; the record keeps only its latest change, so after an agent's later change (drift freezing another
    action) the lift is not taken for one yet. It waits for a person's change: refreezing then could undo them."""
    return action_id not in current.frozenActions and current.changedBy not in policy_events.AGENTS


def _freeze(services: Services, record: dict[str, Any], harmful: list[dict[str, Any]], cid: str) -> list[str]:
    """Freeze the current version of each harmful action (once per version), tell one escalation each; never
    lift a freeze, and never freeze again a version whose freeze a person lifted (record["froze"]). The record
    is saved at each step that changed it, so a later failure neither resends nor undoes anything."""
    now = services.clock.now()
    froze: dict[str, dict[str, Any]] = record.setdefault("froze", {})
    current = autonomy.current(services, fresh=True)
    todo: dict[str, dict[str, Any]] = {}
    lifts = 0
    for v in harmful:
        key = version_key(v["actionId"], v["actionVersion"])
        action = services.catalog.actions.get(v["actionId"])
        if action is None or action.version != v["actionVersion"] or key in todo:
            continue  # an older version: what runs now has no evidence against it
        done = froze.get(key)
        frozen = v["actionId"] in current.frozenActions
        if done is None:
            if frozen:
                continue  # already stopped by someone else; judged again should that freeze be lifted
            todo[key] = v
        elif done.get("lifted"):
            continue  # a person lifted it: that stands for this version
        elif frozen:
            if not done.get("told"):
                todo[key] = v  # frozen, but the escalation was never sent
        elif not (done.get("landed") or done.get("told")):
            todo[key] = v  # recorded, but the freeze never landed (a crash in between): do it now
        elif _lifted_by_person(current, v["actionId"]):
            # The learning record is shown (GET /api/learning): a person by pseudonym; the event keeps the id.
            done.update(lifted=now.isoformat(), liftedBy=policy_events.pseudonym(current.changedBy),
                        liftedAt=current.changedAt)
            lifts += 1
            policy_events.record(services, "freeze-lifted", current.changedBy, f"{key}: a person lifted the harm "
                                 "freeze; the harm rule does not freeze this version again", actionId=v["actionId"],
                                 actionVersion=v["actionVersion"], evidence=v["why"])
    if lifts:
        services.coordination.put_state(STATE, record)  # the lift stands even if a later step fails
    if not todo:
        return []
    for key, v in todo.items():
        froze.setdefault(key, {"at": now.isoformat(), "why": v["why"], "processArea": v["processArea"],
                               "deviationPattern": v["deviationPattern"], "metric": v["metric"], "told": False})
    services.coordination.put_state(STATE, record)  # before the freeze: a crash after it is finished next sweep
    why = "; ".join(f"{key} {v['why']}" for key, v in todo.items())
    # freezeAdd: added to the autonomy record as read at the write, so a person's freeze or unfreeze of another
    # action since our read stands (a whole list from this read would overwrite it).
    autonomy.change(services, {"freezeAdd": sorted({v["actionId"] for v in todo.values()}),
                               "reason": f"harm: {why}"}, None, actor=ACTOR)
    for key in todo:
        froze[key]["landed"] = now.isoformat()
    services.coordination.put_state(STATE, record)  # landed: a person's lift from now on is a lift
    for key, v in todo.items():
        event(services, "freeze", f"{v['actionId']} frozen to approval: {key} {v['why']}",
              actionId=v["actionId"], actionVersion=v["actionVersion"], processArea=v["processArea"],
              deviationPattern=v["deviationPattern"], metric=v["metric"], evidence=v["why"])
        notices.incident(services, Incident(f"harm-{v['actionId']}-v{v['actionVersion']}", now, "harm", "sweep",
                                            f"{v['actionId']} frozen (approval required) by the learning sweep: "
                                            f"{key} {v['why']}", correlationId=cid))
        froze[key]["told"] = True
        services.coordination.put_state(STATE, record)  # told: a failure on the next one does not resend this
    bind(log, cid).warning("learning froze %s: %s", sorted(todo), why)
    return sorted(todo)


def _flag(services: Services, record: dict[str, Any], nulls: list[dict[str, Any]]) -> list[str]:
    """Record each newly null version × pattern (insights and ramp read it) with one policy event."""
    flagged: dict[str, dict[str, Any]] = record.setdefault("flagged", {})
    new = []
    for v in nulls:
        key = f"{version_key(v['actionId'], v['actionVersion'])}|{v['processArea']}|{v['deviationPattern']}"
        if key in flagged:
            continue
        flagged[key] = {"at": services.clock.now().isoformat(), "why": v["why"], "actionId": v["actionId"],
                        "actionVersion": v["actionVersion"], "processArea": v["processArea"],
                        "deviationPattern": v["deviationPattern"], "metric": v["metric"]}
        event(services, "flag-null", f"{v['actionId']} v{v['actionVersion']} flagged in {v['deviationPattern']}: "
              f"{v['why']}; its ramp does not widen", actionId=v["actionId"], actionVersion=v["actionVersion"],
              processArea=v["processArea"], deviationPattern=v["deviationPattern"], metric=v["metric"],
              evidence=v["why"])
        new.append(key)
    return new


def learn(services: Services, cid: str) -> dict[str, Any]:
    """The sweep's learn step, callable on its own: calibrate, freeze the harmful, flag the null, rescore a batch.
    Returns its figures: calibrations written, versions frozen and flagged, opportunities rescored and skipped."""
    items = entries(kpis(services, weekly=False), services.policy)
    cals = [i["calibration"] for i in items if i["calibration"] is not None]
    services.coordination.put_state(calibrations.STATE, {"items": cals, "at": services.clock.now().isoformat()})
    calibrations.forget(services)
    record = stored(services)
    judged = verdicts(items)
    record.update(at=services.clock.now().isoformat(), verdicts=judged)
    try:
        frozen = _freeze(services, record, [v for v in judged if v["verdict"] == "harmful"], cid)
        flagged = _flag(services, record, [v for v in judged if v["verdict"] == "null"])
        queued = rescoring.enqueue(services, record, cals)
        done = rescoring.run(services, record, cid)
    finally:
        # Saved even when a step raised: its events went out, so the flags, the factors applied and the
        # rescoring cursor they belong to must stand, or every sweep would send them again.
        services.coordination.put_state(STATE, record)
    figures = {"calibrations": len(cals), "frozen": frozen, "flagged": flagged, "queued": queued, **done}
    bind(log, cid).info("learned: %s", figures)
    return figures
