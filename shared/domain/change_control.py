"""Change control: which new versions of the rules wait for a second person before they are used.

The rule an auditor can read: a version added over the API goes live on its own only when it is a pure
*tightening* of the version in use; anything else (a new action, a looser limit, another flow, a wider
match, a changed contract, holdout, verify or compensation) waits until someone other than its author,
holding the policy's catalogApproverRole, activates it. docs/change-control.md lists every field.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .catalog import Action, RiskTier

_TIERS = {"low": 0, "medium": 1, "high": 2}
# Fields that change neither what runs nor on which cases. Not `name` or `description`: the planner's model
# reads them, so new words there can steer which action it picks and how it fills the parameters.
NEUTRAL = frozenset({"id", "version", "author", "reason", "complexity", "origin"})
_INF = float("inf")


def _cap(value: int | None) -> float:
    return _INF if value is None else float(value)


def _risk(old: Action, new: Action) -> str | None:
    # A higher tier asks people more often (medium and high need approval): that is a tightening.
    if _TIERS[new.riskTier.value] < _TIERS[old.riskTier.value]:
        return f"risk tier lowered {old.riskTier.value} → {new.riskTier.value}"
    return None


def _approval_role(old: Action, new: Action) -> str | None:
    if old.approvalRole is not None and new.approvalRole != old.approvalRole:
        return f"approval role {old.approvalRole} → {new.approvalRole or 'none'}"
    return None


def _daily_cap(old: Action, new: Action) -> str | None:
    if _cap(new.dailyCap) > _cap(old.dailyCap):
        return f"daily cap {old.dailyCap} → {new.dailyCap or 'none'}"
    return None


def _rate_limit(old: Action, new: Action) -> str | None:
    before, after = old.rateLimit or {}, new.rateLimit or {}
    looser = [k for k in ("perMinute", "perEntityPerDay") if _cap(after.get(k)) > _cap(before.get(k))]
    if before.get("entityField") and after.get("entityField") != before.get("entityField"):
        looser.append("entityField")
    return f"rate limit loosened ({', '.join(looser)})" if looser else None


def _environments(old: Action, new: Action) -> str | None:
    added = set(new.environments) - set(old.environments)
    return f"environments added: {', '.join(sorted(added))}" if added else None


def _matches(old: Action, new: Action) -> str | None:
    if new.matches is None:
        return None  # matching nothing: only the watchdog may run it as a compensation
    if old.matches is None or new.matches.processArea.casefold() != old.matches.processArea.casefold():
        return "matches another process area"
    before = {p.casefold() for p in old.matches.deviationPatterns}
    wider = {p.casefold() for p in new.matches.deviationPatterns} - before
    return f"matches more patterns: {', '.join(sorted(wider))}" if wider else None


def _contract(old: Action, new: Action) -> str | None:
    """Only more `required` fields or more `x-pii` marks tighten a contract; any other change may widen it.
    Its x-approvalThresholds are weighed with the action's own (_thresholds)."""
    def rest(contract: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in contract.items() if k not in ("required", "x-pii", "x-approvalThresholds")}

    same_rest = rest(old.dataContract) == rest(new.dataContract)
    more_required = set(new.dataContract.get("required") or ()) >= set(old.dataContract.get("required") or ())
    more_pii = set(new.dataContract.get("x-pii") or ()) >= set(old.dataContract.get("x-pii") or ())
    return None if same_rest and more_required and more_pii else "data contract changed"


_LIMITS = (("approvalAbove", "approval threshold"), ("secondApproverAbove", "second-approver threshold"))


def _limits(action: Action) -> dict[tuple[str, str], float]:
    """The lowest limit of each kind per field, from the action's thresholds and its contract's: the one that asks."""
    out: dict[tuple[str, str], float] = {}
    for t in action.thresholds():
        for kind, _ in _LIMITS:
            value = getattr(t, kind)
            if value is not None:
                out[(t.field, kind)] = min(out.get((t.field, kind), _INF), float(value))
    return out


def _threshold_changes(old: Action, new: Action) -> list[str]:
    """Each amount threshold raised or removed: fewer cases asked for one (or a second) approver."""
    try:
        before, after = _limits(old), _limits(new)
    except (AttributeError, TypeError, ValueError):  # thresholds that cannot be read cannot be weighed
        return ["approval thresholds changed"]
    labels = dict(_LIMITS)
    changes = []
    for (field, kind), limit in sorted(before.items()):
        now = after.get((field, kind), _INF)
        if now > limit:
            changes.append(f"{labels[kind]} on {field} {limit:g} → {'none' if now == _INF else f'{now:g}'}")
    return changes


def _thresholds(old: Action, new: Action) -> str | None:
    found = _threshold_changes(old, new)
    return "; ".join(found) if found else None


def _enabled(old: Action, new: Action) -> str | None:
    return "re-enabled" if new.enabled and not old.enabled else None


# Fields with a direction: only a change one way is a tightening. Every other non-neutral field must be
# unchanged (holdoutPercent, verify, compensation, ramp, flow, parameterMap, lookup, and any field added later).
_DIRECTED: dict[str, Callable[[Action, Action], str | None]] = {
    "riskTier": _risk, "approvalRole": _approval_role, "dailyCap": _daily_cap, "rateLimit": _rate_limit,
    "environments": _environments, "matches": _matches, "dataContract": _contract, "enabled": _enabled,
    "approvalThresholds": _thresholds,
}


def loosenings(old: Action, new: Action) -> list[str]:
    """Every way `new` is not a pure tightening of `old`; empty when it only tightens (or changes wording)."""
    reasons = []
    for name in type(new).model_fields:
        if name in NEUTRAL:
            continue
        rule = _DIRECTED.get(name)
        if rule is not None:
            found = rule(old, new)
            if found:
                reasons.append(found)
        elif getattr(old, name) != getattr(new, name):
            reasons.append(f"{name} changed")
    return reasons


def activation_needed(new: Action, active: Action | None) -> list[str]:
    """Why `new` waits for a second person. Versions added over the API: unless a pure tightening of the
    version in use. Versions shipped with the deployment (reviewed where the repository is): when high risk,
    or raising the tier, the daily cap, the per-minute rate or an amount threshold (or removing one)."""
    reasons = ["high-risk action"] if new.riskTier is RiskTier.high else []
    if new.origin == "api":
        return reasons + (["a new action"] if active is None else loosenings(active, new))
    if active is None:
        return reasons
    if _TIERS[new.riskTier.value] > _TIERS[active.riskTier.value]:
        reasons.append(f"risk tier {active.riskTier.value} → {new.riskTier.value}")
    if _cap(new.dailyCap) > _cap(active.dailyCap):
        reasons.append(f"daily cap {active.dailyCap} → {new.dailyCap}")
    old_rate, new_rate = (active.rateLimit or {}).get("perMinute"), (new.rateLimit or {}).get("perMinute")
    if new_rate is not None and (old_rate is None or new_rate > old_rate):
        reasons.append(f"rate limit {old_rate or 'none'} → {new_rate} per minute")
    if not active.enabled and new.enabled:
        reasons.append("re-enabled")
    return reasons + _threshold_changes(active, new)


def check_second_person(principal: Any, role: str, author: str | None) -> None:
    """The activator must be signed in, hold `role`, and not be the author (401/403 otherwise)."""
    from .errors import Forbidden, Unauthorized

    if principal is None:
        raise Unauthorized("sign in (Easy Auth) to activate a version")
    if not principal.holds(role):
        raise Forbidden(f"activating a version needs the role {role}")
    if author and author in (principal.id, principal.name):
        raise Forbidden("the author of a version cannot approve it: a second person must")
