"""The Store port on Dataverse: records where Power BI, Power Apps and Copilot Studio look; operational state
(claims, rate-limit logs, autonomy, heartbeats, plan cache) stays in Azure Tables.

Rows are addressed by alternate key (`<prefix>_key`), so every write is an upsert by key; a commit is one
`$batch` change set (the opportunity under If-Match, new executions, approvals and audit entries under
If-None-Match: *), so it lands whole or not at all. Ingest reads the batch's opportunities with filtered GETs
inside one `$batch` and writes them with another: two requests per 1,000 findings.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ...domain.approvals import Approval
from ...domain.audit import AuditEntry
from ...domain.execution import Execution
from ...domain.opportunity import Opportunity
from ...domain.outcomes import Outcome
from ...domain.status import FINISHED
from ...ports import Commit, ConcurrencyConflict, Cursor, Filter, Incident, IngestResult, MergeFn
from ..entities import (
    _dumps,
    action_entity,
    activation_entity,
    approval_entity,
    approval_from,
    audit_entity,
    audit_from,
    audit_key,
    execution_entity,
    execution_from,
    execution_key,
    from_entity,
    incident_entity,
    incident_from,
    outcome_entity,
    outcome_from,
    policy_entity,
    prompt_entity,
    to_entity,
    ts,
)
from ..ingest_plan import fold, outcomes
from . import batch
from .client import DataverseClient, key_path, literal, query
from .schema import BY_NAME, Names, status_value

KEYS_PER_GET = 40  # keys per filtered GET inside a $batch: ~2 KB of URL each
_CONFLICT = (404, 412)



# GET and PATCH by an alternate key whose value holds / # < > * % & : \ ? + do not work in Dataverse
# (learn.microsoft.com/power-apps/maker/data-platform/define-alternate-keys-portal), and audit, incident
# and telemetry keys carry times and ids with colons. Such characters (and the escape mark "!") become
# "!xx" in hex: one-to-one, and keys without them are stored as they are.
_RESERVED = frozenset('/#<>*%&:\\?+!')


def dv_key(key: str) -> str:
    """A store key as a Dataverse alternate-key value."""
    if not any(c in _RESERVED for c in key):
        return key
    return "".join(f"!{ord(c):02x}" if c in _RESERVED else c for c in key)

class DataverseStore:
    """Records and reference data in Dataverse; coordination lives elsewhere (the composition root pairs it
    with Azure Tables, which the coordination port needs for ETag-guarded small writes)."""

    def __init__(self, client: DataverseClient, names: Names):
        self.client, self.n = client, names

    # -- naming --------------------------------------------------------------------------------------
    def _set(self, table: str) -> str:
        return self.n.entity_set(table)

    def _col(self, name: str) -> str:
        return self.n.column(name)

    def _path(self, table: str, key: str) -> str:
        return key_path(self._set(table), self._col("key"), dv_key(key))

    def _row(self, table: str, key: str, doc: dict[str, Any], **columns: Any) -> dict[str, Any]:
        row = {self._col("key"): dv_key(key), self._col("doc"): _dumps(doc)}
        row.update({self._col(k): v for k, v in columns.items()})
        if BY_NAME[table].parent:
            row[f"{self.n.lookup()}@odata.bind"] = "/" + self._path("opportunity", columns["opportunitykey"])
        return row

    def _put(self, table: str, key: str, row: dict[str, Any], etag: str | None) -> batch.Op:
        """Create-only without an ETag (If-None-Match: *), else replace-if-unchanged (If-Match)."""
        return batch.Op("PATCH", self._path(table, key), row,
                        {"If-Match": etag} if etag else {"If-None-Match": "*"})

    # -- rows of each kind ---------------------------------------------------------------------------
    def _opp_row(self, opp: Opportunity) -> dict[str, Any]:
        e = to_entity(opp)
        return self._row("opportunity", opp.id, e, status=status_value(e["status"]),
                         processarea=opp.processArea.strip().casefold(),
                         deviationpattern=opp.deviationPattern.strip().casefold(), casekey=opp.caseKey,
                         priority=e["priority"], impact=e["impact"], cohort=opp.cohort, updatedat=e["updatedAt"])

    def _exec_row(self, x: Execution) -> dict[str, Any]:
        e = execution_entity(x)
        return self._row("execution", e["RowKey"], e, opportunitykey=x.opportunityId, actionid=x.actionId,
                         execstatus=x.status, updatedat=e["updatedAt"])

    def _approval_row(self, a: Approval) -> dict[str, Any]:
        e = approval_entity(a)
        return self._row("approval", a.id, e, opportunitykey=a.opportunityId, open=a.decision is None,
                         decidedat=e["decidedAt"])

    def _audit_row(self, a: AuditEntry) -> dict[str, Any]:
        e = audit_entity(a)
        return self._row("audit", e["RowKey"], e, opportunitykey=a.opportunityId, event=a.event, at=e["at"])

    @staticmethod
    def _doc(row: dict[str, Any], names: Names) -> dict[str, Any]:
        return json.loads(row[names.column("doc")])

    def _opp(self, row: dict[str, Any]) -> Opportunity:
        return from_entity(self._doc(row, self.n), row.get("@odata.etag"))

    # -- reads ---------------------------------------------------------------------------------------
    def _select(self, table: str, where: str | None = None, orderby: str | None = None,
                top: int | None = None) -> list[dict[str, Any]]:
        path = query(self._set(table), where, [self._col("key"), self._col("doc")], orderby, top)
        if top is not None:
            return list(self.client.json("GET", path)["value"])
        return list(self.client.pages(path))

    def _by_keys(self, table: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Rows by key: filtered GETs, KEYS_PER_GET keys each, all inside one $batch."""
        stored = {dv_key(k): k for k in keys}
        if not stored:
            return {}
        ops = []
        wanted = list(stored)
        for start in range(0, len(wanted), KEYS_PER_GET):
            part = wanted[start:start + KEYS_PER_GET]
            where = " or ".join(f"{self._col('key')} eq {literal(k)}" for k in part)
            ops.append(batch.Op("GET", query(self._set(table), where, [self._col("key"), self._col("doc")])))
        found: dict[str, dict[str, Any]] = {}
        for reply in self.client.batch(ops):
            if not reply.ok:
                raise ConnectionError(f"Dataverse read failed: HTTP {reply.status}")
            for row in reply.body.get("value", []):
                found[stored[row[self._col("key")]]] = row
        return found

    def get(self, opportunity_id: str) -> Opportunity | None:
        return self.get_many([opportunity_id]).get(opportunity_id)

    def get_many(self, ids: Sequence[str]) -> dict[str, Opportunity]:
        return {k: self._opp(r) for k, r in self._by_keys("opportunity", ids).items()}

    def _children(self, table: str, opportunity_id: str) -> list[dict[str, Any]]:
        return self._select(table, f"{self._col('opportunitykey')} eq {literal(opportunity_id)}")

    def execution(self, opportunity_id: str, execution_id: str) -> Execution | None:
        return self.executions_by_id([(opportunity_id, execution_id)]).get((opportunity_id, execution_id))

    def executions_by_id(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Execution]:
        rows = self._by_keys("execution", [execution_key(o, x) for o, x in pairs])
        out = {}
        for row in rows.values():
            x = execution_from(self._doc(row, self.n), row.get("@odata.etag"))
            out[(x.opportunityId, x.id)] = x
        return out

    def executions(self, opportunity_id: str) -> list[Execution]:
        return [execution_from(self._doc(r, self.n), r.get("@odata.etag"))
                for r in self._children("execution", opportunity_id)]

    def approval(self, approval_id: str) -> Approval | None:
        row = self._by_keys("approval", [approval_id]).get(approval_id)
        return approval_from(self._doc(row, self.n), row.get("@odata.etag")) if row else None

    def approvals(self, opportunity_id: str) -> list[Approval]:
        return [approval_from(self._doc(r, self.n), r.get("@odata.etag"))
                for r in self._children("approval", opportunity_id)]

    def pending_approvals(self) -> list[Approval]:
        return [approval_from(self._doc(r, self.n), r.get("@odata.etag"))
                for r in self._select("approval", f"{self._col('open')} eq true")]

    def decided_approvals(self, since: datetime) -> list[Approval]:
        where = f"{self._col('open')} eq false and {self._col('decidedat')} ge {ts(since)}"
        return [approval_from(self._doc(r, self.n), r.get("@odata.etag")) for r in self._select("approval", where)]

    def audit(self, opportunity_id: str) -> list[AuditEntry]:
        entries = [audit_from(self._doc(r, self.n)) for r in self._children("audit", opportunity_id)]
        return sorted(entries, key=lambda a: (a.at, a.seq))

    def _where(self, where: Filter) -> list[str]:
        clauses = []
        if where.status is not None:
            clauses.append(f"{self._col('status')} eq {status_value(where.status)}")
        if where.state is not None:
            col, finished = self._col("status"), sorted(FINISHED)
            if where.state == "finished":
                clauses.append("(" + " or ".join(f"{col} eq {status_value(s)}" for s in finished) + ")")
            else:
                clauses.extend(f"{col} ne {status_value(s)}" for s in finished)
        if where.processArea is not None:
            clauses.append(f"{self._col('processarea')} eq {literal(where.processArea.strip().casefold())}")
        if where.deviationPattern is not None:
            clauses.append(f"{self._col('deviationpattern')} eq "
                           f"{literal(where.deviationPattern.strip().casefold())}")
        return clauses

    def ranked(self, where: Filter, top: int, after: Cursor | None) -> list[Opportunity]:
        clauses = self._where(where)
        if after is not None:
            p, k = self._col("priority"), self._col("key")
            clauses.append(f"({p} lt {after.priority!r} or ({p} eq {after.priority!r} and {k} gt {literal(after.id)}))")
        rows = self._select("opportunity", " and ".join(clauses) or None,
                            f"{self._col('priority')} desc,{self._col('key')} asc", top)
        return [self._opp(r) for r in rows]

    def scan(self, where: Filter, fields: Sequence[str]) -> Iterable[dict[str, Any]]:
        for row in self._select("opportunity", " and ".join(self._where(where)) or None):
            doc = self._doc(row, self.n)
            yield {f: doc.get(f) for f in fields}

    def executions_since(self, since: datetime) -> list[Execution]:
        rows = self._select("execution", f"{self._col('updatedat')} ge {ts(since)}")
        return [execution_from(self._doc(r, self.n), r.get("@odata.etag")) for r in rows]

    def stale(self, statuses: Iterable[str], updated_before: datetime) -> list[Opportunity]:
        either = " or ".join(f"{self._col('status')} eq {status_value(s)}" for s in statuses)
        rows = self._select("opportunity", f"({either}) and {self._col('updatedat')} lt {ts(updated_before)}")
        return [self._opp(r) for r in rows]

    def ping(self) -> None:
        self.client.json("GET", query(self._set("opportunity"), None, [self._col("key")], None, 1))

    # -- writes --------------------------------------------------------------------------------------
    def ingest(self, incoming: Sequence[Opportunity], merge: MergeFn) -> list[IngestResult]:
        pending = fold(incoming, merge)
        known: dict[str, set[str] | None] = {}
        final: dict[str, Opportunity] = {}
        todo = dict(pending)
        for _ in range(6):
            existing = self.get_many(list(todo))
            ops, order = [], []
            for oid, opp in todo.items():
                current = existing.get(oid)
                if oid not in known:
                    known[oid] = set(current.sourceEventIds) if current else None
                if current is None:
                    ops.append(self._put("opportunity", oid, self._opp_row(opp), None))
                    order.append((oid, opp))
                    continue
                merged = merge(current, opp)
                if merged is None:
                    final[oid] = current
                    continue
                ops.append(self._put("opportunity", oid, self._opp_row(merged), current.etag))
                order.append((oid, merged))
            raced: dict[str, Opportunity] = {}
            for (oid, written), reply in zip(order, self.client.batch(ops), strict=True):
                if reply.ok:
                    written.etag = reply.headers.get("etag")
                    final[oid] = written
                elif reply.status in _CONFLICT:
                    raced[oid] = pending[oid]  # someone wrote it meanwhile: read it again and fold again
                else:
                    raise ConnectionError(f"Dataverse ingest write failed: HTTP {reply.status} {reply.body}")
            if not raced:
                return outcomes(incoming, final, known)
            todo = raced
        raise ConcurrencyConflict(f"ingest lost 6 races for {len(todo)} opportunities")

    def save(self, opportunity: Opportunity) -> Opportunity:
        return self.commit(opportunity)

    def _changeset(self, c: Commit) -> batch.ChangeSet:
        if c.opportunity.etag is None:
            raise ConcurrencyConflict(f"{c.opportunity.id} was never read")
        ops = [self._put("opportunity", c.opportunity.id, self._opp_row(c.opportunity), c.opportunity.etag)]
        ops += [self._put("execution", execution_key(x.opportunityId, x.id), self._exec_row(x), x.etag)
                for x in c.executions]
        ops += [self._put("approval", a.id, self._approval_row(a), a.etag) for a in c.approvals]
        ops += [self._put("audit", audit_key(a), self._audit_row(a), None) for a in c.audit]
        return batch.ChangeSet(ops)

    def commit(self, opportunity: Opportunity, executions: Sequence[Execution] = (),
               audit: Sequence[AuditEntry] = (), approvals: Sequence[Approval] = ()) -> Opportunity:
        [result] = self.commit_many([Commit(opportunity, executions, audit, approvals)])
        if result is not None:
            raise result
        return opportunity

    def commit_many(self, commits: Sequence[Commit]) -> list[Exception | None]:
        results: list[Exception | None] = [None] * len(commits)
        sets, index = [], []
        for i, c in enumerate(commits):
            try:
                sets.append(self._changeset(c))
                index.append(i)
            except ConcurrencyConflict as exc:
                results[i] = exc
        for i, reply in zip(index, self.client.batch(sets), strict=True):
            c = commits[i]
            if isinstance(reply, list) and all(r.ok for r in reply):
                tags = [r.headers.get("etag") for r in reply]
                c.opportunity.etag = tags[0]
                records: list[Execution | Approval] = [*c.executions, *c.approvals]
                # The audit rows' tags come last: an audit entry keeps none.
                for record, tag in zip(records, tags[1:], strict=False):
                    record.etag = tag
                continue
            status = reply.status if not isinstance(reply, list) else next(r.status for r in reply if not r.ok)
            if status not in _CONFLICT:
                raise ConnectionError(f"Dataverse commit failed: HTTP {status}")
            results[i] = ConcurrencyConflict(f"{c.opportunity.id} changed since it was read")
        return results

    # -- incidents, catalog, outcomes, telemetry -----------------------------------------------------
    def record_incident(self, incident: Incident) -> None:
        e = incident_entity(incident)
        self.client.json("PATCH", self._path("incident", incident.id),
                         self._row("incident", incident.id, e, at=e["at"]))

    def incidents(self, top: int) -> list[Incident]:
        found = [incident_from(self._doc(r, self.n)) for r in self._select("incident")]
        return sorted(found, key=lambda i: i.at, reverse=True)[:top]

    def _catalog(self, kind: str) -> list[dict[str, Any]]:
        rows = self._select("catalogdoc", f"{self._col('kind')} eq {literal(kind)}")
        return [json.loads(self._doc(r, self.n)["doc"]) for r in rows]

    def _add_catalog(self, kind: str, entity: dict[str, Any], conflict: str) -> None:
        key = f"{kind}~{entity['RowKey']}"
        reply = self.client.send("PATCH", self._path("catalogdoc", key),
                                 json.dumps(self._row("catalogdoc", key, entity, kind=kind)).encode(),
                                 {"Content-Type": "application/json", "If-None-Match": "*"})
        if reply.status_code in _CONFLICT:
            raise ConcurrencyConflict(conflict)
        if reply.status_code >= 300:
            raise ConnectionError(f"Dataverse write failed: HTTP {reply.status_code}")

    def action_versions(self) -> list[dict[str, Any]]:
        return self._catalog("action")

    def add_action_version(self, doc: dict[str, Any]) -> None:
        self._add_catalog("action", action_entity(doc), f"{doc['id']} v{doc['version']} exists")

    def policy_versions(self) -> list[dict[str, Any]]:
        return self._catalog("policy")

    def add_policy_version(self, doc: dict[str, Any]) -> None:
        self._add_catalog("policy", policy_entity(doc), f"policy v{doc['version']} exists")

    def prompt_versions(self) -> list[dict[str, Any]]:
        return self._catalog("prompt")

    def add_prompt_version(self, doc: dict[str, Any]) -> None:
        self._add_catalog("prompt", prompt_entity(doc), f"prompt {doc['name']} v{doc['version']} exists")

    def activations(self) -> list[dict[str, Any]]:
        return self._catalog("activation")

    def add_activation(self, doc: dict[str, Any]) -> None:
        self._add_catalog("activation", activation_entity(doc), f"{doc['id']} v{doc['version']} is already active")

    def add_outcomes(self, found: Sequence[Outcome]) -> None:
        rows = {o.id: o for o in found}  # the last of a repeated id wins, as one upsert
        ops = []
        for o in rows.values():
            e = outcome_entity(o)
            ops.append(batch.Op("PATCH", self._path("outcome", o.id), self._row(
                "outcome", o.id, e, processarea=o.processArea, casekey=o.caseKey, metric=o.metric,
                value=float(o.value), observedat=e["observedAt"])))
        for reply in self.client.batch(ops):
            if not reply.ok:
                raise ConnectionError(f"Dataverse outcome write failed: HTTP {reply.status}")

    def outcomes(self) -> Iterable[Outcome]:
        return [outcome_from(self._doc(r, self.n)) for r in self._select("outcome")]

    def add_telemetry(self, kind: str, doc: dict[str, Any]) -> None:
        now = ts(datetime.now(UTC))
        key = f"{now}~{uuid.uuid4().hex[:8]}"
        self.client.json("PATCH", self._path("telemetry", key), self._row("telemetry", key, doc, kind=kind, at=now),
                         headers={"If-None-Match": "*"})

    def telemetry(self, kind: str, since: datetime) -> list[dict[str, Any]]:
        rows = self._select("telemetry", f"{self._col('kind')} eq {literal(kind)} and {self._col('at')} ge {ts(since)}")
        return [self._doc(r, self.n) for r in sorted(rows, key=lambda r: r[self._col("key")])]
