"""In-memory store for tests of services; the same semantics as the Azure Tables ports, no I/O."""
from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ...domain.approvals import Approval, opportunity_of
from ...domain.audit import AuditEntry
from ...domain.execution import Execution
from ...domain.opportunity import Opportunity
from ...domain.outcomes import Outcome
from ...domain.rate_limit import Log, Rule, Verdict, admit, admit_all
from ...ports import Claim, Commit, ConcurrencyConflict, Cursor, Filter, Incident, IngestResult, MergeFn
from ..entities import (
    approval_entity,
    approval_from,
    audit_entity,
    audit_from,
    execution_entity,
    execution_from,
    from_entity,
    matches,
    parse_ts,
    to_entity,
)
from ..ingest_plan import fold, outcomes

_STATE_PREFIX = re.compile(r"[A-Za-z0-9._-]{1,100}")


class MemoryStore:
    """Serves all three store ports (Records, Reference, Coordination: ports.Store) from one object."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[dict[str, Any], str]] = {}
        self._etags = itertools.count(1)
        self._lock = threading.Lock()
        self._executions: dict[str, dict[str, tuple[dict[str, Any], str]]] = {}
        self._audit: dict[str, list[dict[str, Any]]] = {}
        self._incidents: list[Incident] = []
        self._actions: dict[tuple[str, int], dict[str, Any]] = {}
        self._claims: dict[tuple[str, str], Claim] = {}
        self._activations: dict[tuple[str, int], dict[str, Any]] = {}
        self._policies: dict[int, dict[str, Any]] = {}
        self._prompts: dict[tuple[str, int], dict[str, Any]] = {}
        self._limits: dict[str, Log] = {}
        self._autonomy: tuple[dict[str, Any], str] | None = None
        self._state: dict[str, dict[str, Any]] = {}
        self._state_etags: dict[str, str] = {}
        self._approvals: dict[str, dict[str, tuple[dict[str, Any], str]]] = {}
        self._outcomes: dict[str, Outcome] = {}
        self._telemetry: list[tuple[str, datetime, dict[str, Any]]] = []

    def _put(self, opp: Opportunity) -> Opportunity:
        etag = f'W/"{next(self._etags)}"'
        self._rows[opp.id] = (to_entity(opp), etag)
        opp.etag = etag
        return opp

    def ingest(self, incoming: Sequence[Opportunity], merge: MergeFn) -> list[IngestResult]:
        with self._lock:
            pending = fold(incoming, merge)
            known: dict[str, set[str] | None] = {}
            final: dict[str, Opportunity] = {}
            for oid, opp in pending.items():
                row = self._rows.get(oid)
                if row is None:
                    known[oid] = None
                    final[oid] = self._put(opp)
                    continue
                existing = from_entity(*row)
                known[oid] = set(existing.sourceEventIds)
                merged = merge(existing, opp)
                final[oid] = existing if merged is None else self._put(merged)
            return outcomes(incoming, final, known)

    def commit(self, opportunity: Opportunity, executions: Sequence[Execution] = (),
               audit: Sequence[AuditEntry] = (), approvals: Sequence[Approval] = ()) -> Opportunity:
        with self._lock:
            row = self._rows.get(opportunity.id)
            if row is None or row[1] != opportunity.etag:
                raise ConcurrencyConflict(opportunity.id)
            stored = self._executions.setdefault(opportunity.id, {})
            asked = self._approvals.setdefault(opportunity.id, {})
            for table, records in ((stored, executions), (asked, approvals)):
                for r in records:
                    current = table.get(r.id)
                    if (current is None) != (r.etag is None) or (current is not None and current[1] != r.etag):
                        raise ConcurrencyConflict(f"{opportunity.id}: {r.id} changed")
            for x in executions:
                x.etag = f'W/"{next(self._etags)}"'
                stored[x.id] = (execution_entity(x), x.etag)
            for a in approvals:
                a.etag = f'W/"{next(self._etags)}"'
                asked[a.id] = (approval_entity(a), a.etag)
            self._audit.setdefault(opportunity.id, []).extend(audit_entity(a) for a in audit)
            return self._put(opportunity)

    def commit_many(self, commits: Sequence[Commit]) -> list[Exception | None]:
        results: list[Exception | None] = []
        for c in commits:
            try:
                self.commit(c.opportunity, c.executions, c.audit, c.approvals)
                results.append(None)
            except ConcurrencyConflict as exc:
                results.append(exc)
        return results

    def get_many(self, ids: Sequence[str]) -> dict[str, Opportunity]:
        return {i: o for i in ids if (o := self.get(i)) is not None}

    def execution(self, opportunity_id: str, execution_id: str) -> Execution | None:
        row = self._executions.get(opportunity_id, {}).get(execution_id)
        return execution_from(*row) if row else None

    def executions_by_id(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Execution]:
        return {(o, x): found for o, x in pairs if (found := self.execution(o, x)) is not None}

    def executions(self, opportunity_id: str) -> list[Execution]:
        return [execution_from(e, tag) for e, tag in self._executions.get(opportunity_id, {}).values()]

    def approvals(self, opportunity_id: str) -> list[Approval]:
        return [approval_from(e, tag) for e, tag in self._approvals.get(opportunity_id, {}).values()]

    def approval(self, approval_id: str) -> Approval | None:
        row = self._approvals.get(opportunity_of(approval_id) or "", {}).get(approval_id)
        return approval_from(*row) if row else None

    def pending_approvals(self) -> list[Approval]:
        return [approval_from(e, tag) for rows in list(self._approvals.values()) for e, tag in list(rows.values())
                if e["open"]]

    def decided_approvals(self, since: datetime) -> list[Approval]:
        return [approval_from(e, tag) for rows in list(self._approvals.values()) for e, tag in list(rows.values())
                if not e["open"] and e["decidedAt"] and parse_ts(e["decidedAt"]) >= since]

    def audit(self, opportunity_id: str) -> list[AuditEntry]:
        return sorted((audit_from(e) for e in self._audit.get(opportunity_id, [])), key=lambda a: (a.at, a.seq))

    def get(self, opportunity_id: str) -> Opportunity | None:
        row = self._rows.get(opportunity_id)
        return from_entity(*row) if row else None

    def save(self, opportunity: Opportunity) -> Opportunity:
        with self._lock:
            row = self._rows.get(opportunity.id)
            if row is None or row[1] != opportunity.etag:
                raise ConcurrencyConflict(opportunity.id)
            return self._put(opportunity)

    def ranked(self, where: Filter, top: int, after: Cursor | None) -> list[Opportunity]:
        rows = [(e, tag) for e, tag in self._rows.values() if matches(e, where)]
        rows.sort(key=lambda r: (-r[0]["priority"], r[0]["RowKey"]))
        if after is not None:
            rows = [r for r in rows if (-r[0]["priority"], r[0]["RowKey"]) > (-after.priority, after.id)]
        return [from_entity(e, tag) for e, tag in rows[:top]]

    def add_telemetry(self, kind: str, doc: dict[str, Any]) -> None:
        with self._lock:
            self._telemetry.append((kind, datetime.now(UTC), dict(doc)))

    def telemetry(self, kind: str, since: datetime) -> list[dict[str, Any]]:
        return [dict(d) for k, at, d in list(self._telemetry) if k == kind and at >= since]

    def add_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        with self._lock:
            self._outcomes.update((o.id, o) for o in outcomes)

    def outcomes(self) -> Iterable[Outcome]:
        return list(self._outcomes.values())

    def scan(self, where: Filter, fields: Sequence[str]) -> Iterable[dict[str, Any]]:
        return [{f: e.get(f) for f in fields} for e, _ in list(self._rows.values()) if matches(e, where)]

    def executions_since(self, since: datetime) -> list[Execution]:
        return [execution_from(e, tag) for rows in list(self._executions.values()) for e, tag in list(rows.values())
                if parse_ts(e["updatedAt"]) >= since]

    def stale(self, statuses: Iterable[str], updated_before: datetime) -> list[Opportunity]:
        wanted = set(statuses)
        return [from_entity(e, tag) for e, tag in list(self._rows.values())
                if e["status"] in wanted and parse_ts(e["updatedAt"]) < updated_before]

    def record_incident(self, incident: Incident) -> None:
        with self._lock:
            self._incidents = [i for i in self._incidents if i.id != incident.id] + [incident]

    def incidents(self, top: int) -> list[Incident]:
        return sorted(self._incidents, key=lambda i: i.at, reverse=True)[:top]

    def action_versions(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self._actions.values()]

    def add_action_version(self, doc: dict[str, Any]) -> None:
        with self._lock:
            key = (doc["id"], int(doc["version"]))
            if key in self._actions:
                raise ConcurrencyConflict(f"{doc['id']} v{doc['version']} exists")
            self._actions[key] = dict(doc)

    def policy_versions(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self._policies.values()]

    def add_policy_version(self, doc: dict[str, Any]) -> None:
        with self._lock:
            if int(doc["version"]) in self._policies:
                raise ConcurrencyConflict(f"policy v{doc['version']} exists")
            self._policies[int(doc["version"])] = dict(doc)

    def prompt_versions(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self._prompts.values()]

    def add_prompt_version(self, doc: dict[str, Any]) -> None:
        with self._lock:
            key = (doc["name"], int(doc["version"]))
            if key in self._prompts:
                raise ConcurrencyConflict(f"prompt {doc['name']} v{doc['version']} exists")
            self._prompts[key] = dict(doc)

    def activations(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self._activations.values()]

    def add_activation(self, doc: dict[str, Any]) -> None:
        with self._lock:
            key = (doc["id"], int(doc["version"]))
            if key in self._activations:
                raise ConcurrencyConflict(f"{doc['id']} v{doc['version']} is already active")
            self._activations[key] = dict(doc)

    def state(self, name: str) -> dict[str, Any] | None:
        # Deep copies both ways, as Tables stores JSON: a nested change the caller never put is not saved.
        with self._lock:
            found = self._state.get(name)
            return json.loads(json.dumps(found)) if found else None

    def put_state(self, name: str, doc: dict[str, Any]) -> None:
        with self._lock:
            self._state[name] = json.loads(json.dumps(doc, default=str))
            self._state_etags[name] = f'W/"{next(self._etags)}"'

    def state_versioned(self, name: str) -> tuple[dict[str, Any] | None, str | None]:
        with self._lock:
            found = self._state.get(name)
            return (json.loads(json.dumps(found)), self._state_etags[name]) if found is not None else (None, None)

    def save_state(self, name: str, doc: dict[str, Any], etag: str | None) -> str:
        with self._lock:
            if self._state_etags.get(name) != etag:
                raise ConcurrencyConflict(f"state {name} changed meanwhile")
            self._state[name] = json.loads(json.dumps(doc, default=str))  # stored as Tables stores it: JSON
            new = self._state_etags[name] = f'W/"{next(self._etags)}"'
            return new

    def states(self, prefix: str) -> dict[str, dict[str, Any]]:
        if not _STATE_PREFIX.fullmatch(prefix):  # as the Tables adapter refuses it
            raise ValueError(f"state prefix {prefix!r}: letters, digits, '.', '_' or '-' only")
        with self._lock:
            return {name: json.loads(json.dumps(doc)) for name, doc in sorted(self._state.items())
                    if name.startswith(prefix)}

    def autonomy(self) -> tuple[dict[str, Any] | None, str | None]:
        return (dict(self._autonomy[0]), self._autonomy[1]) if self._autonomy else (None, None)

    def save_autonomy(self, doc: dict[str, Any], etag: str | None) -> str:
        with self._lock:
            if (self._autonomy[1] if self._autonomy else None) != etag:
                raise ConcurrencyConflict("autonomy changed meanwhile")
            new = f'W/"{next(self._etags)}"'
            self._autonomy = (dict(doc), new)
            return new

    def limit_full(self, rule: Rule, now_ms: int) -> bool:
        return not admit(self._limits.get(rule.key, ()), now_ms, rule).granted

    def acquire_many(self, requests: Sequence[Sequence[Rule]], now_ms: int) -> list[Verdict]:
        with self._lock:
            return admit_all(self._limits, requests, now_ms)

    def claim_many(self, claims: Sequence[Claim]) -> dict[str, Claim]:
        with self._lock:
            for c in claims:
                self._claims.setdefault((c.space, c.key), Claim(c.space, c.key, c.holder,
                                                                f'W/"{next(self._etags)}"'))
            return {c.key: self._claims[(c.space, c.key)] for c in claims}

    def take_over(self, claim: Claim, holder: str) -> bool:
        with self._lock:
            current = self._claims.get((claim.space, claim.key))
            if current is None or current.etag != claim.etag:
                return False
            self._claims[(claim.space, claim.key)] = Claim(claim.space, claim.key, holder,
                                                           f'W/"{next(self._etags)}"')
            return True

    def ping(self) -> None:
        return None
