"""The Dataverse schema closedloop keeps its records in: tables, columns, the status choice, alternate keys
and relationships, under a publisher prefix. Read by the store adapter and by provisioning (one source).

Each table has `<prefix>_key` (the record's id, an alternate key: upserts address rows by it), the
columns people filter and chart on, and `<prefix>_doc`, the whole record as JSON, so no field is lost
between the app's model and the table's columns.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...domain.status import Status

STRING, MEMO, DECIMAL, BOOLEAN, DATETIME, CHOICE = "String", "Memo", "Decimal", "Boolean", "DateTime", "Picklist"
STATUS_BASE = 100_000_000  # Dataverse choice values of a publisher start at its option value prefix × 10,000


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str
    label: str
    max_length: int | None = None


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    label: str
    plural: str
    columns: tuple[Column, ...]
    parent: str | None = None  # many-to-one to the opportunity (its lookup column is `<prefix>_opportunity`)


KEY = Column("key", STRING, "Key", 200)
DOC = Column("doc", MEMO, "Record (JSON)", 1_048_576)

TABLES: tuple[Table, ...] = (
    Table("opportunity", "Opportunity", "Opportunities", (
        KEY, Column("status", CHOICE, "Status"), Column("processarea", STRING, "Process area", 100),
        Column("deviationpattern", STRING, "Deviation pattern", 100), Column("casekey", STRING, "Case key", 256),
        Column("priority", DECIMAL, "Priority"), Column("impact", DECIMAL, "Impact"),
        Column("cohort", STRING, "Cohort", 20), Column("updatedat", DATETIME, "Updated at"), DOC)),
    Table("execution", "Execution", "Executions", (
        KEY, Column("opportunitykey", STRING, "Opportunity key", 40), Column("actionid", STRING, "Action", 100),
        Column("execstatus", STRING, "Execution status", 20), Column("updatedat", DATETIME, "Updated at"), DOC),
        parent="opportunity"),
    Table("audit", "Audit entry", "Audit entries", (
        KEY, Column("opportunitykey", STRING, "Opportunity key", 40), Column("event", STRING, "Event", 50),
        Column("at", DATETIME, "At"), DOC), parent="opportunity"),
    Table("approval", "Approval", "Approvals", (
        KEY, Column("opportunitykey", STRING, "Opportunity key", 40), Column("open", BOOLEAN, "Open"),
        Column("decidedat", DATETIME, "Decided at"), DOC), parent="opportunity"),
    Table("incident", "Incident", "Incidents", (KEY, Column("at", DATETIME, "At"), DOC)),
    Table("catalogdoc", "Catalog record", "Catalog records", (KEY, Column("kind", STRING, "Kind", 20), DOC)),
    Table("outcome", "Outcome", "Outcomes", (
        KEY, Column("processarea", STRING, "Process area", 100), Column("casekey", STRING, "Case key", 256),
        Column("metric", STRING, "Metric", 64), Column("value", DECIMAL, "Value"),
        Column("observedat", DATETIME, "Observed at"), DOC)),
    Table("telemetry", "Telemetry", "Telemetry", (
        KEY, Column("kind", STRING, "Kind", 40), Column("at", DATETIME, "At"), DOC)),
)
BY_NAME = {t.name: t for t in TABLES}


def status_value(status: str) -> int:
    """The choice value of an opportunity status (stable: new statuses are only ever appended)."""
    return STATUS_BASE + [s.value for s in Status].index(status)


def status_of(value: int) -> str:
    return [s.value for s in Status][value - STATUS_BASE]


@dataclass(frozen=True, slots=True)
class Names:
    """Logical names under one publisher prefix (`cl` → `cl_opportunity`, entity set `cl_opportunities`)."""

    prefix: str

    def table(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def entity_set(self, name: str) -> str:
        return f"{self.prefix}_{name[:-1]}ies" if name.endswith("y") else f"{self.prefix}_{name}s"

    def column(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def lookup(self) -> str:
        """The lookup column of a child row to its opportunity."""
        return f"{self.prefix}_opportunity"

    def status_choice(self) -> str:
        return f"{self.prefix}_status"
