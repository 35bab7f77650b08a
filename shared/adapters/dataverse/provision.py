"""Create closedloop's Dataverse schema through the Web API metadata endpoints: the status choice, the tables
with their columns, an alternate key per table and the relationships to the opportunity, each added to
the given solution under the publisher prefix. Each step is checked first, so running it twice changes
nothing; --dry-run prints the requests instead of sending them.

    python -m shared.adapters.dataverse.provision --url https://contoso.crm.dynamics.com --prefix cl \\
        --solution closedloop [--dry-run]

Authentication: azure-identity's DefaultAzureCredential (az login, managed identity), scope
`<url>/.default`; the identity needs the System Customizer role (or a custom role with metadata rights).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...domain.status import Status
from .schema import BOOLEAN, CHOICE, DATETIME, DECIMAL, MEMO, STATUS_BASE, STRING, TABLES, Column, Names

if TYPE_CHECKING:  # the client imports requests: main() loads it only when it sends
    from .client import DataverseClient

_TYPES = {STRING: "StringAttributeMetadata", MEMO: "MemoAttributeMetadata", DECIMAL: "DecimalAttributeMetadata",
          BOOLEAN: "BooleanAttributeMetadata", DATETIME: "DateTimeAttributeMetadata",
          CHOICE: "PicklistAttributeMetadata"}


def label(text: str) -> dict[str, Any]:
    return {"@odata.type": "Microsoft.Dynamics.CRM.Label",
            "LocalizedLabels": [{"@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", "Label": text,
                                 "LanguageCode": 1033}]}


@dataclass(frozen=True, slots=True)
class Step:
    what: str
    check: str        # GET: 200 means it exists
    method: str
    path: str
    body: dict[str, Any]


def column(names: Names, c: Column, primary: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"@odata.type": f"Microsoft.Dynamics.CRM.{_TYPES[c.kind]}",
                            "SchemaName": names.column(c.name), "DisplayName": label(c.label),
                            "RequiredLevel": {"Value": "ApplicationRequired" if primary else "None"}}
    if c.kind == STRING:
        body.update(MaxLength=c.max_length or 100, FormatName={"Value": "Text"})
    elif c.kind == MEMO:
        body.update(MaxLength=c.max_length or 1_048_576, Format="TextArea")
    elif c.kind == DECIMAL:
        body.update(Precision=4, MinValue=-100_000_000_000.0, MaxValue=100_000_000_000.0)
    elif c.kind == BOOLEAN:
        body["OptionSet"] = {"@odata.type": "Microsoft.Dynamics.CRM.BooleanOptionSetMetadata",
                             "TrueOption": {"Value": 1, "Label": label("Yes")},
                             "FalseOption": {"Value": 0, "Label": label("No")}}
    elif c.kind == DATETIME:
        body.update(Format="DateAndTime", DateTimeBehavior={"Value": "TimeZoneIndependent"})
    elif c.kind == CHOICE:
        body["GlobalOptionSet@odata.bind"] = f"/GlobalOptionSetDefinitions(Name='{names.status_choice()}')"
    if primary:
        body["IsPrimaryName"] = True
    return body


def plan(names: Names) -> list[Step]:
    """Every request the schema needs, in dependency order."""
    steps = [Step(f"choice {names.status_choice()}", f"GlobalOptionSetDefinitions(Name='{names.status_choice()}')",
                  "POST", "GlobalOptionSetDefinitions", {
                      "@odata.type": "Microsoft.Dynamics.CRM.OptionSetMetadata", "Name": names.status_choice(),
                      "DisplayName": label("Opportunity status"), "OptionSetType": "Picklist", "IsGlobal": True,
                      "Options": [{"Value": STATUS_BASE + i, "Label": label(s.value)} for i, s in enumerate(Status)]})]
    for t in TABLES:
        logical = names.table(t.name)
        check = f"EntityDefinitions(LogicalName='{logical}')"
        steps.append(Step(f"table {logical}", check, "POST", "EntityDefinitions", {
            "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata", "SchemaName": logical,
            "EntitySetName": names.entity_set(t.name), "DisplayName": label(t.label),
            "DisplayCollectionName": label(t.plural), "Description": label(f"closedloop {t.label.lower()} records"),
            "OwnershipType": "OrganizationOwned", "HasActivities": False, "HasNotes": False, "IsActivity": False,
            "Attributes": [column(names, t.columns[0], primary=True)]}))
        for c in t.columns[1:]:
            steps.append(Step(f"column {logical}.{names.column(c.name)}",
                              f"EntityDefinitions(LogicalName='{logical}')/Attributes(LogicalName='{names.column(c.name)}')",
                              "POST", f"EntityDefinitions(LogicalName='{logical}')/Attributes", column(names, c)))
        steps.append(Step(f"alternate key {logical}_key", f"EntityDefinitions(LogicalName='{logical}')/Attributes"
                          f"(LogicalName='{names.column('key')}')#key", "POST",
                          f"EntityDefinitions(LogicalName='{logical}')/Keys",
                          {"SchemaName": f"{logical}_key", "DisplayName": label("Key"),
                           "KeyAttributes": [names.column("key")]}))
    for t in TABLES:
        if t.parent:
            name = f"{names.table(t.parent)}_{t.name}"
            steps.append(Step(f"relationship {name}", f"RelationshipDefinitions(SchemaName='{name}')", "POST",
                              "RelationshipDefinitions", {
                                  "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
                                  "SchemaName": name, "ReferencedEntity": names.table(t.parent),
                                  "ReferencedAttribute": f"{names.table(t.parent)}id",
                                  "ReferencingEntity": names.table(t.name),
                                  "CascadeConfiguration": {"Assign": "NoCascade", "Delete": "RemoveLink",
                                                           "Merge": "NoCascade", "Reparent": "NoCascade",
                                                           "Share": "NoCascade", "Unshare": "NoCascade"},
                                  "Lookup": {"@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata",
                                             "SchemaName": names.lookup(), "DisplayName": label("Opportunity")}}))
    return steps


def _exists(client: DataverseClient, step: Step) -> bool:
    if step.check.endswith("#key"):  # a table's key: listed under its Keys
        table = step.check.split("/")[0]
        keys = client.json("GET", f"{table}/Keys").get("value", [])
        return any(k.get("KeyAttributes") for k in keys)
    return client.send("GET", step.check).status_code == 200


def provision(client: DataverseClient | None, names: Names, dry_run: bool = False,
              out: Callable[[str], None] = print) -> list[Step]:
    """Send (or print) the steps not yet done; returns the ones sent. Dry run without a client prints all."""
    done = []
    for step in plan(names):
        if client is not None and _exists(client, step):
            continue
        if dry_run:
            out(f"{step.method} {step.path}  # {step.what}\n{json.dumps(step.body, indent=1)}")
        elif client is None:
            raise ValueError("only a dry run can go without a Dataverse client")
        else:
            client.json(step.method, step.path, step.body)
        done.append(step)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create closedloop's tables in Dataverse (idempotent).")
    parser.add_argument("--url", required=True, help="environment URL, e.g. https://contoso.crm.dynamics.com")
    parser.add_argument("--prefix", default="cl", help="the solution publisher's customization prefix")
    parser.add_argument("--solution", default="closedloop", help="unique name of the solution to add the schema to")
    parser.add_argument("--dry-run", action="store_true", help="print the requests; send nothing")
    parser.add_argument("--offline", action="store_true", help="with --dry-run: do not even check what exists")
    args = parser.parse_args(argv)
    names = Names(args.prefix)
    client = None
    if not (args.dry_run and args.offline):
        from .client import DataverseClient
        from .token import token_provider
        client = DataverseClient(args.url, token_provider(args.url), solution=args.solution)
    steps = provision(client, names, args.dry_run)
    verb = "would send" if args.dry_run else "sent"
    print(f"{verb} {len(steps)} request(s); {len(plan(names)) - len(steps)} step(s) already done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
