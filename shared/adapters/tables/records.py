"""The records port on Azure Table Storage (Azurite locally) through azure-data-tables.

Layout: PartitionKey = group key (processArea + pattern), RowKey = id, so a batch of findings on one
pattern lands in few partitions and is written 100 entities per transaction. An opportunity's executions
and audit rows share its partition, so one transaction writes all three atomically.

Partitions are spread over several tables by a stable hash (see shards.py for why).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ...domain.approvals import Approval, opportunity_of
from ...domain.audit import AuditEntry
from ...domain.execution import Execution
from ...domain.opportunity import Opportunity, group_key, partition_of
from ...domain.status import FINISHED
from ...ports import Commit, ConcurrencyConflict, Cursor, Filter, IngestResult, MergeFn
from ..entities import (
    APPROVAL,
    EXECUTION,
    OPPORTUNITY,
    approval_entity,
    approval_from,
    approval_key,
    audit_entity,
    audit_from,
    execution_entity,
    execution_from,
    execution_key,
    from_entity,
    matches,
    to_entity,
    ts,
)
from ..ingest_plan import fold, outcomes
from ..recent import Recent
from . import batch as tables_batch
from . import query as tables_query
from . import shards as tables_shards

_RETRIES = 5
_RANK_FIELDS = ["PartitionKey", "RowKey", "priority"]


def _filter(where: Filter) -> tuple[str, dict[str, Any]]:
    clauses, params = ["rowType eq @rowType"], {"rowType": OPPORTUNITY}
    if where.processArea is not None and where.deviationPattern is not None:
        clauses.append("PartitionKey eq @pk")
        params["pk"] = group_key(where.processArea, where.deviationPattern)
    # Exact-case filters server-side would miss "AP" vs "ap"; the group key above is case-free,
    # and single-field filters are checked again in Python.
    if where.status is not None:
        clauses.append("status eq @status")
        params["status"] = where.status
    if where.state is not None:
        # The finished statuses are the shorter list (Table Storage allows 15 comparisons in one filter).
        finished = sorted(FINISHED)
        params.update({f"f{i}": s.value for i, s in enumerate(finished)})
        if where.state == "finished":
            clauses.append("( " + " or ".join(f"status eq @f{i}" for i in range(len(finished))) + " )")
        else:
            clauses.extend(f"status ne @f{i}" for i in range(len(finished)))
    return " and ".join(clauses), params


def _weight(opp: Opportunity) -> int:
    """Bytes an opportunity's row may take in a transaction, from its variable-length fields (str() runs in
    C: encoding the row here would double the ingest path's work)."""
    text = len(str(opp.attributes)) + sum(map(len, opp.sourceEventIds)) + len(opp.rootCause or "") \
        + len(opp.recommendedAction or "") + len(opp.rationale or "") + len(str(opp.history)) \
        + (len(str(opp.kpis)) + len(str(opp.signals)) + len(str(opp.extensions)) if opp.kpis or opp.signals
           or opp.extensions else 0)
    return 8_000 + 4 * text


class TablesRecords:
    """Serves the Records port: opportunities with their executions, approvals and audit, over the shard tables."""

    def __init__(self, shards: Sequence[Any], prepared: tables_shards.Prepared, remember: int = 20_000):
        self._tables = list(shards)
        self._prepared = prepared
        # What this process wrote last (see recent.py): the next stage reads it from here, not the service.
        self._opps: Recent[str, Opportunity] = Recent(remember)
        self._execs: Recent[tuple[str, str], Execution] = Recent(remember, copy_on_put=True)

    def _table(self, partition: str) -> Any:
        return tables_shards.shard_of(self._tables, partition)

    def _query(self, partition: str, where: str, params: dict[str, Any] | None = None,
               select: Sequence[str] | None = None, top: int | None = None) -> Iterable[dict[str, Any]]:
        """Rows of one partition (the filter must pin PartitionKey to `partition`)."""
        return tables_query.query(self._table(partition), tables_query.bind(where, params or {}), select, top)

    def _query_all(self, where: str, params: dict[str, Any],
                   select: Sequence[str] | None = None) -> Iterable[dict[str, Any]]:
        """Rows of every shard matching a cross-partition filter."""
        bound = tables_query.bind(where, params)
        for table in self._tables:
            yield from tables_query.query(table, bound, select)

    def _ensure(self) -> None:
        self._prepared.ensure()

    # -- writes --------------------------------------------------------------------------------------
    def ingest(self, incoming: Sequence[Opportunity], merge: MergeFn) -> list[IngestResult]:
        self._ensure()
        pending = fold(incoming, merge)
        known: dict[str, set[str] | None] = {}
        final: dict[str, Opportunity] = {}
        by_partition: dict[str, list[Opportunity]] = {}
        for opp in pending.values():
            by_partition.setdefault(opp.group, []).append(opp)
        for opps in by_partition.values():
            chunk: list[Opportunity] = []
            nbytes = 0
            for opp in opps:
                # Bounded like a merged record, which may be twice as large as the new finding.
                n = 2 * _weight(opp)
                if chunk and not tables_batch.fits(len(chunk), nbytes, 1, n):
                    self._write_chunk(chunk, merge, known, final)
                    chunk, nbytes = [], 0
                chunk.append(opp)
                nbytes += n
            if chunk:
                self._write_chunk(chunk, merge, known, final)
        return outcomes(incoming, final, known)

    def _write_chunk(self, chunk: list[Opportunity], merge: MergeFn,
                     known: dict[str, set[str] | None], final: dict[str, Opportunity]) -> None:
        # Fast path: new findings are the common case, so try to create them all in one transaction.
        try:
            etags = tables_batch.submit(self._table(chunk[0].group),
                                        [tables_batch.Operation("create", to_entity(o)) for o in chunk])
        except tables_batch.TransactionFailed as exc:
            if not exc.conflict:
                raise
        else:
            for opp, etag in zip(chunk, etags, strict=True):
                known[opp.id], opp.etag, final[opp.id] = None, etag, opp
                self._opps.put(opp.id, opp)
            return
        for _ in range(_RETRIES):
            existing = self._get_many([o.id for o in chunk])
            ops: list[tables_batch.Operation] = []
            placed: list[tuple[Opportunity, set[str] | None, bool]] = []  # (record, events before, written)
            for opp in chunk:
                current = existing.get(opp.id)
                if current is None:
                    ops.append(tables_batch.Operation("create", to_entity(opp)))
                    placed.append((opp, None, True))
                    continue
                merged = merge(current, opp)
                if merged is None:  # every event already known: a redelivery changes nothing
                    placed.append((current, set(current.sourceEventIds), False))
                    continue
                ops.append(tables_batch.Operation("replace", to_entity(merged), current.etag))
                placed.append((merged, set(current.sourceEventIds), True))
            try:
                written = iter(tables_batch.submit(self._table(chunk[0].group), ops))
            except tables_batch.TransactionFailed as exc:
                if exc.conflict:
                    continue  # a concurrent writer won; read again and re-merge
                raise
            for opp, events, wrote in placed:
                if wrote:
                    opp.etag = next(written)
                known[opp.id], final[opp.id] = events, opp
                self._opps.put(opp.id, opp)
            return
        raise ConcurrencyConflict(f"ingest lost {_RETRIES} races for partition {chunk[0].group}")

    @staticmethod
    def _ops(c: Commit) -> list[tables_batch.Operation]:
        """Opportunity, executions, approvals, audit: in this order (the ETags come back in it)."""
        ops = [tables_batch.Operation("replace", to_entity(c.opportunity), c.opportunity.etag)]
        ops += [tables_batch.Operation("replace" if x.etag else "create", execution_entity(x), x.etag)
                for x in c.executions]
        ops += [tables_batch.Operation("replace" if a.etag else "create", approval_entity(a), a.etag)
                for a in c.approvals]
        ops += [tables_batch.Operation("create", audit_entity(a)) for a in c.audit]
        return ops

    @staticmethod
    def _landed(c: Commit, etags: Sequence[str | None]) -> None:
        c.opportunity.etag = etags[0]
        records: list[Execution | Approval] = [*c.executions, *c.approvals]
        for record, etag in zip(records, etags[1:], strict=False):  # the audit entries' ETags follow
            record.etag = etag

    def commit_many(self, commits: Sequence[Commit]) -> list[Exception | None]:
        # One transaction per partition chunk; a refused commit is dropped and the rest resubmitted.
        self._ensure()
        results: list[Exception | None] = [None] * len(commits)
        by_partition: dict[str, list[int]] = {}
        for i, c in enumerate(commits):
            by_partition.setdefault(c.opportunity.group, []).append(i)
        for partition, indexes in by_partition.items():
            table = self._table(partition)
            pending = list(indexes)
            ops_of = {i: self._ops(commits[i]) for i in indexes}
            bytes_of = {i: sum(tables_batch.weight(op.entity) for op in ops_of[i]) for i in indexes}
            while pending:
                chunk: list[int] = []
                size = nbytes = 0
                for i in pending:
                    if chunk and not tables_batch.fits(size, nbytes, len(ops_of[i]), bytes_of[i]):
                        break
                    chunk.append(i)
                    size += len(ops_of[i])
                    nbytes += bytes_of[i]
                ops, owner = [], []
                for i in chunk:
                    mine = ops_of[i]
                    ops += mine
                    owner += [i] * len(mine)
                try:
                    etags = tables_batch.submit(table, ops)
                except tables_batch.TransactionFailed as exc:
                    if exc.status not in (404, 409, 412):
                        raise
                    bad = owner[min(exc.index, len(owner) - 1)]
                    results[bad] = ConcurrencyConflict(f"{commits[bad].opportunity.id}: {exc.code}")
                    self._forget(commits[bad])
                    pending.remove(bad)
                    continue
                cursor = 0
                for i in chunk:
                    c = commits[i]
                    self._landed(c, etags[cursor:cursor + len(ops_of[i])])
                    cursor += len(ops_of[i])
                    self._remember(c)
                pending = [i for i in pending if i not in chunk]
        return results

    def save(self, opportunity: Opportunity) -> Opportunity:
        return self.commit(opportunity)

    def _remember(self, c: Commit) -> None:
        self._opps.put(c.opportunity.id, c.opportunity)
        for x in c.executions:
            self._execs.put((x.opportunityId, x.id), x)

    def _forget(self, c: Commit) -> None:
        self._opps.forget(c.opportunity.id)
        for x in c.executions:
            self._execs.forget((x.opportunityId, x.id))

    def get_many(self, ids: Sequence[str]) -> dict[str, Opportunity]:
        self._ensure()
        found, missing = self._opps.split(ids)
        if missing:
            fetched = self._get_many(missing)
            for opp in fetched.values():
                self._opps.put(opp.id, opp)
            found.update({k: replace(v) for k, v in fetched.items()})
        return found

    def execution(self, opportunity_id: str, execution_id: str) -> Execution | None:
        self._ensure()
        found = self.executions_by_id([(opportunity_id, execution_id)])
        return found.get((opportunity_id, execution_id))

    def commit(self, opportunity: Opportunity, executions: Sequence[Execution] = (),
               audit: Sequence[AuditEntry] = (), approvals: Sequence[Approval] = ()) -> Opportunity:
        self._ensure()
        c = Commit(opportunity, executions, audit, approvals)
        try:
            etags = tables_batch.submit(self._table(opportunity.group), self._ops(c))
        except tables_batch.TransactionFailed as exc:
            if exc.status in (404, 409, 412):
                self._forget(c)
                raise ConcurrencyConflict(f"{opportunity.id}: {exc.code} at operation {exc.index}") from exc
            raise
        self._landed(c, etags)
        self._remember(c)
        return opportunity

    def _rows(self, opportunity_id: str, marker: str) -> Iterable[dict[str, Any]]:
        self._ensure()
        low, pk = f"{opportunity_id}~{marker}~", partition_of(opportunity_id)
        return self._query(pk, "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                           {"pk": pk, "low": low, "high": low[:-1] + chr(ord("~") + 1)})

    def executions(self, opportunity_id: str) -> list[Execution]:
        return [execution_from(e, e["etag"]) for e in self._rows(opportunity_id, "x")]

    def audit(self, opportunity_id: str) -> list[AuditEntry]:
        return [audit_from(e) for e in self._rows(opportunity_id, "a")]

    def approvals(self, opportunity_id: str) -> list[Approval]:
        return [approval_from(e, e["etag"]) for e in self._rows(opportunity_id, "p")]

    def approval(self, approval_id: str) -> Approval | None:
        self._ensure()
        opportunity_id = opportunity_of(approval_id)
        if opportunity_id is None:
            return None
        rows = tables_query.rows_by_key([(partition_of(opportunity_id), approval_key(approval_id))], self._table)
        return next((approval_from(e, e["etag"]) for e in rows), None)

    def pending_approvals(self) -> list[Approval]:
        self._ensure()
        rows = self._query_all("rowType eq @t and open eq true", {"t": APPROVAL})
        return [approval_from(e, e["etag"]) for e in rows]

    def decided_approvals(self, since: datetime) -> list[Approval]:
        self._ensure()
        rows = self._query_all("rowType eq @t and open eq false and decidedAt ge @since",
                               {"t": APPROVAL, "since": ts(since)})
        return [approval_from(e, e["etag"]) for e in rows]

    # -- reads ---------------------------------------------------------------------------------------
    def get(self, opportunity_id: str) -> Opportunity | None:
        return self.get_many([opportunity_id]).get(opportunity_id)

    def _get_many(self, ids: Sequence[str]) -> dict[str, Opportunity]:
        return {e["RowKey"]: from_entity(e, e["etag"])
                for e in tables_query.rows_by_key([(partition_of(i), i) for i in ids], self._table)}

    def executions_by_id(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Execution]:
        self._ensure()
        # An execution this process never wrote may still exist (written elsewhere, or before a restart).
        found, missing = self._execs.split(pairs)
        rows = tables_query.rows_by_key([(partition_of(o), execution_key(o, x)) for o, x in missing], self._table)
        for x in (execution_from(e, e["etag"]) for e in rows):
            found[(x.opportunityId, x.id)] = x
            self._execs.put((x.opportunityId, x.id), replace(x))
        return found

    def ranked(self, where: Filter, top: int, after: Cursor | None) -> list[Opportunity]:
        # Table Storage sorts only by key, so rank a narrow projection and fetch the page's rows after.
        extra = {"p": float(after.priority)} if after is not None else {}
        keys = sorted((-float(e["priority"]), e["RowKey"])
                      for e in self._project(where, _RANK_FIELDS, "priority le @p" if extra else "", extra))
        if after is not None:
            bound = (-float(after.priority), after.id)
            keys = [k for k in keys if k > bound]
        page = [oid for _, oid in keys[:top]]
        found = self._get_many(page)
        return [found[oid] for oid in page if oid in found]

    def _project(self, where: Filter, fields: Sequence[str], clause: str = "",
                 extra: dict[str, Any] | None = None) -> Iterable[dict[str, Any]]:
        """Matching rows with only `fields` (plus the filter's own), narrowed server-side where it can be."""
        self._ensure()
        query, params = _filter(where)
        if clause:
            query = f"{query} and {clause}" if query else clause
            params.update(extra or {})
        select = list(dict.fromkeys([*fields, "processArea", "deviationPattern", "status"]))
        pk = params.get("pk")
        rows = self._query(pk, query, params, select) if pk else self._query_all(query, params, select)
        return (e for e in rows if matches(e, where))

    def scan(self, where: Filter, fields: Sequence[str]) -> Iterable[dict[str, Any]]:
        return ({f: e.get(f) for f in fields} for e in self._project(where, fields))

    def executions_since(self, since: datetime) -> list[Execution]:
        self._ensure()
        rows = self._query_all("rowType eq @t and updatedAt ge @since", {"t": EXECUTION, "since": ts(since)})
        return [execution_from(e, e["etag"]) for e in rows]

    def stale(self, statuses: Iterable[str], updated_before: datetime) -> list[Opportunity]:
        self._ensure()
        statuses = list(statuses)
        params = {f"s{i}": s for i, s in enumerate(statuses)}
        params["before"] = ts(updated_before)
        either = " or ".join(f"status eq @s{i}" for i in range(len(statuses)))
        params["rowType"] = OPPORTUNITY
        rows = self._query_all(f"rowType eq @rowType and ( {either} ) and updatedAt lt @before", params)
        return [from_entity(e, e["etag"]) for e in rows]

    def ping(self) -> None:
        self._ensure()
        for table in self._tables:
            next(iter(tables_query.query(table, "PartitionKey eq 'ping'", ["RowKey"], top=1)), None)
