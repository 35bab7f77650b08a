"""The demo child flows: one function per catalog action, acting on `Records` with before/after evidence.

Each flow runs under the records' lock and returns (status, Touched, message). With `breach` set it still
answers "succeeded" but leaves the record in the wrong state, so that a verify policy has something to catch.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .records import COLLECTIONS, Record, Records, clone

READ_ACTION = "sor.read"
Outcome = tuple[str, "Touched", str]


class Touched:
    """The records a flow touched, snapshotted before the change and read again for the evidence."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.before: dict[str, Record | None] = {}
        self.live: dict[str, Record] = {}

    def track(self, label: str, record: Record, created: bool = False) -> Record:
        """Snapshot `record` (None when the flow just created it) under `label` and hand it back."""
        self.ids.append(record["id"])
        self.before[label] = None if created else clone(record)
        self.live[label] = record
        return record

    def evidence(self) -> dict[str, Any]:
        return {"recordIds": list(self.ids), "before": self.before,
                "after": {label: clone(r) for label, r in self.live.items()}}


# -- contract validation: the subset of JSON Schema the catalog uses -----------------------------------
_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}
_pattern_cache: dict[str, re.Pattern] = {}


def problems(schema: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """What is wrong with `params` under a dataContract: required names, types, bounds, lengths, patterns."""
    errs = [f"parameters.{n} is required" for n in schema.get("required", ()) if n not in params]
    props = schema.get("properties", {})
    for name, value in params.items():
        prop = props.get(name)
        if not prop:
            continue
        types = prop.get("type")
        types = [types] if isinstance(types, str) else types or []
        if types and not any(_TYPES.get(t, lambda _: True)(value) for t in types):
            errs.append(f"parameters.{name} must be of type {'|'.join(types)}")
            continue
        errs += [f"parameters.{name} {msg}" for msg in _bounds(prop, value)]
    return errs


def _bounds(prop: dict[str, Any], v: Any) -> list[str]:
    out = []
    if _TYPES["number"](v):
        if "maximum" in prop and v > prop["maximum"]:
            out.append(f"must be at most {prop['maximum']}")
        if "minimum" in prop and v < prop["minimum"]:
            out.append(f"must be at least {prop['minimum']}")
        if "exclusiveMinimum" in prop and v <= prop["exclusiveMinimum"]:
            out.append(f"must be greater than {prop['exclusiveMinimum']}")
        if "exclusiveMaximum" in prop and v >= prop["exclusiveMaximum"]:
            out.append(f"must be less than {prop['exclusiveMaximum']}")
    elif isinstance(v, str):
        if len(v) < prop.get("minLength", 0) or len(v) > prop.get("maxLength", len(v)):
            out.append(f"must have {prop.get('minLength', 0)}..{prop.get('maxLength', '')} characters")
        if "pattern" in prop:
            rx = _pattern_cache.setdefault(prop["pattern"], re.compile(prop["pattern"]))
            if not rx.search(v):
                out.append(f"must match {prop['pattern']}")
    elif isinstance(v, list) and len(v) < prop.get("minItems", 0):
        out.append(f"must have at least {prop['minItems']} item(s)")
    return out


# -- accounts payable ------------------------------------------------------------------------------------
def request_missing_fields(db: Records, p: dict, breach: bool) -> Outcome:
    t = Touched()
    inv = t.track("invoice", db.ensure("invoice", p["invoiceId"], vendorId=p["vendorId"]))
    vendor = db.ensure("vendor", p["vendorId"])
    req = t.track("request", db.create("notification", kind="vendor-request", invoiceId=inv["id"],
                                       vendorId=p["vendorId"], to=p.get("vendorEmail") or vendor["email"],
                                       missingFields=list(p["missingFields"]), previousStatus=inv["status"],
                                       status="open"), created=True)
    inv["status"] = "blocked" if breach else "awaiting_vendor"
    return "succeeded", t, f"asked {req['to']} for {', '.join(p['missingFields'])} on {inv['id']}"


def cancel_field_request(db: Records, p: dict, breach: bool) -> Outcome:
    t = Touched()
    inv = t.track("invoice", db.ensure("invoice", p["invoiceId"]))
    open_requests = db.find("notification", kind="vendor-request", invoiceId=inv["id"], status="open")
    if not open_requests:
        return "succeeded", t, f"no open field request on {inv['id']}; nothing to cancel"
    req = t.track("request", open_requests[-1])
    req["status"] = "cancelled"
    if not breach:
        inv["status"] = req["previousStatus"]
    return "succeeded", t, f"cancelled {req['id']}; {inv['id']} is {inv['status']} again"


def post_gl_adjustment(db: Records, p: dict, breach: bool) -> Outcome:
    t = Touched()
    inv = t.track("invoice", db.ensure("invoice", p["invoiceId"], vendorId=p["vendorId"],
                                       matchStatus="price-variance"))
    entry = t.track("glEntry", db.create("glEntry", invoiceId=inv["id"], vendorId=p["vendorId"], amount=p["amount"],
                                         glAccount=p["glAccount"], reverses=None, reversed=False), created=True)
    inv["matchStatus"] = "price-variance" if breach else "matched"
    return "succeeded", t, f"posted {entry['id']} of {p['amount']} to {p['glAccount']} for {inv['id']}"


def reverse_gl_adjustment(db: Records, p: dict, breach: bool) -> Outcome:
    t = Touched()
    inv = t.track("invoice", db.ensure("invoice", p["invoiceId"]))
    posted = db.find("glEntry", invoiceId=inv["id"], reverses=None, reversed=False)
    if not posted:
        return "succeeded", t, f"no adjustment on {inv['id']} to reverse"
    same_account = [e for e in posted if e["glAccount"] == p["glAccount"]]
    original = t.track("reversedEntry", (same_account or posted)[-1])
    t.track("glEntry", db.create("glEntry", invoiceId=inv["id"], vendorId=original["vendorId"],
                                 amount=-abs(p["amount"]), glAccount=p["glAccount"], reverses=original["id"],
                                 reversed=False), created=True)
    original["reversed"] = True
    if not breach:
        inv["matchStatus"] = "price-variance"
    return "succeeded", t, f"reversed {original['id']} on {inv['id']}"


# -- leads -----------------------------------------------------------------------------------------------
def reassign_lead(db: Records, p: dict, breach: bool) -> Outcome:
    t = Touched()
    lead = t.track("lead", db.ensure("lead", p["leadId"], region=p["region"]))
    owner = db.next_owner(p["region"], avoid=lead["ownerId"] or p.get("currentOwnerId"))
    if owner is None:
        return "failed", t, f"no owners in region {p['region']}"
    lead["region"] = p["region"]
    lead["ownerId"] = None if breach else owner
    return "succeeded", t, f"{lead['id']} assigned to {owner}"


def restore_owner(db: Records, p: dict, breach: bool) -> Outcome:
    t = Touched()
    lead = t.track("lead", db.ensure("lead", p["leadId"]))
    if not breach:
        lead["ownerId"] = p.get("ownerId")
    return "succeeded", t, f"{lead['id']} owner restored to {p.get('ownerId')}"


def escalate_lead(db: Records, p: dict, breach: bool) -> Outcome:
    t = Touched()
    lead = t.track("lead", db.ensure("lead", p["leadId"]))
    to = p.get("managerEmail") or f"sales-manager-{lead['region'].lower()}@example.com"
    t.track("notification", db.create("notification", kind="escalation", leadId=lead["id"], ownerId=p["ownerId"],
                                      to=to, status="sent"), created=True)
    lead["escalated"] = not breach
    return "succeeded", t, f"escalated {lead['id']} to {to}"


# -- order to cash ---------------------------------------------------------------------------------------
def open_case(db: Records, p: dict, breach: bool) -> Outcome:
    t = Touched()
    order = db.ensure("order", p["orderId"], customerId=p["customerId"])
    case = t.track("case", db.create("case", orderId=order["id"], customerId=p["customerId"],
                                     promisedDate=p.get("promisedDate"), status="pending" if breach else "open"),
                   created=True)
    return "succeeded", t, f"opened {case['id']} for {order['id']}"


def close_case(db: Records, p: dict, breach: bool) -> Outcome:
    t = Touched()
    if p.get("caseId"):
        case = db.get("case", p["caseId"])
        if case is None:
            return "failed", t, f"no case {p['caseId']}"
    else:
        still_open = [c for c in db.find("case", orderId=p["orderId"]) if c["status"] != "closed"]
        if not still_open:
            return "succeeded", t, f"no open case for {p['orderId']}; nothing to close"
        case = still_open[-1]
    t.track("case", case)
    if not breach:
        case["status"] = "closed"
    return "succeeded", t, f"closed {case['id']}"


def credit_expedited_shipping(db: Records, p: dict, breach: bool) -> Outcome:
    t = Touched()
    order = t.track("order", db.ensure("order", p["orderId"], customerId=p["customerId"]))
    credit = t.track("credit", db.create("credit", orderId=order["id"], customerId=p["customerId"],
                                         amount=p["shippingCost"], status="posted"), created=True)
    order["shippingMethod"] = "standard" if breach else "expedited"
    return "succeeded", t, f"credited {credit['amount']} on {order['id']} ({credit['id']}) and expedited it"


def reverse_credit(db: Records, p: dict, breach: bool) -> Outcome:
    t = Touched()
    order = t.track("order", db.ensure("order", p["orderId"]))
    posted = db.find("credit", orderId=order["id"], status="posted")
    if not posted:
        return "succeeded", t, f"no credit on {order['id']} to reverse"
    credit = t.track("credit", posted[-1])
    credit["status"] = "reversed"
    credit["reversedAmount"] = p.get("amount", credit["amount"])
    if not breach:
        order["shippingMethod"] = "standard"
    return "succeeded", t, f"reversed {credit['id']} on {order['id']}"


def unmodelled(db: Records, p: dict, breach: bool) -> Outcome:
    """For catalog actions added after the sandbox: accepted, touching nothing, so the flow URL still works."""
    return "succeeded", Touched(), "the sandbox has no model of this action; accepted without a side effect"


FLOWS: dict[str, Callable[[Records, dict, bool], Outcome]] = {
    "ap.request-missing-fields": request_missing_fields, "ap.cancel-field-request": cancel_field_request,
    "ap.post-gl-adjustment": post_gl_adjustment, "ap.reverse-gl-adjustment": reverse_gl_adjustment,
    "leads.reassign": reassign_lead, "leads.restore-owner": restore_owner, "leads.escalate": escalate_lead,
    "o2c.open-case": open_case, "o2c.close-case": close_case,
    "o2c.credit-expedited-shipping": credit_expedited_shipping, "o2c.reverse-credit": reverse_credit,
}


# -- the read flow -----------------------------------------------------------------------------------------
def read(db: Records, p: dict) -> tuple[int, dict[str, Any]]:
    """`{"type", "id"}` (or `{"type": "case", "orderId"}`) → (HTTP status, body); no side effect."""
    kind, rid = p.get("type"), p.get("id")
    if kind not in COLLECTIONS:
        return 400, {"status": "rejected", "message": f"parameters.type must be one of {', '.join(COLLECTIONS)}"}
    if not isinstance(rid, str) or not rid:
        if kind == "case" and isinstance(p.get("orderId"), str):
            with db.lock:
                cases = db.find("case", orderId=p["orderId"])
                record = clone(cases[-1]) if cases else None
            if record is None:
                return 200, {"status": "failed", "evidence": _no_evidence(), "message": f"no case for {p['orderId']}"}
            return 200, _found(record)
        return 400, {"status": "rejected", "message": "parameters.id is required"}
    with db.lock:
        # Records a finding names are made up on first reference, as the action flows do.
        record = db.ensure(kind, rid) if kind in ("invoice", "lead", "order", "vendor") else db.get(kind, rid)
        record = clone(record)
    if record is None:
        return 200, {"status": "failed", "evidence": _no_evidence(), "message": f"no {kind} {rid}"}
    return 200, _found(record)


def _found(record: Record) -> dict[str, Any]:
    return {"status": "succeeded", "evidence": {"recordIds": [record["id"]], "before": record, "after": record},
            "message": f"read {record['id']}"}


def _no_evidence() -> dict[str, Any]:
    return {"recordIds": [], "before": {}, "after": {}}
