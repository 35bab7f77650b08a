"""Findings and services for tests, built from the repo's real catalog and policy."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from shared.ports import Services
from shared.runtime import REPO_CATALOG, load_catalog, load_policy

_ids = itertools.count(1)
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def validated(*items: dict[str, Any]) -> list:
    """Findings through the same validation as the API."""
    from shared.ingest.generic import validate_findings
    return validate_findings(list(items))


def finding(**overrides: Any) -> dict[str, Any]:
    """A valid AP finding (missing PO) whose data contract is complete."""
    n = next(_ids)
    body = {
        "eventId": f"evt-{n}", "source": "generic", "processArea": "accounts-payable",
        "deviationPattern": "invoice-missing-po", "caseKey": f"INV-{n:05d}",
        "detectedAt": "2026-11-19T08:30:00Z",
        "kpiImpact": {"daysSaved": 4, "costOfDelayPerDay": 50.0},
        "attributes": {"invoiceId": f"INV-{n:05d}", "vendorId": "V-100", "missingFields": ["poNumber"]},
    }
    body.update(overrides)
    return body


class FixedClock:
    def __init__(self, now: datetime = NOW):
        self.current = now

    def now(self) -> datetime:
        return self.current


class RecordingBus:
    """Keeps what was sent; drops a repeated message_id as Service Bus duplicate detection does."""

    def __init__(self) -> None:
        self.messages = []
        self.dropped = 0

    def send(self, messages) -> None:
        seen = {m.message_id for m in self.messages}
        for m in messages:
            if m.message_id in seen:
                self.dropped += 1
            else:
                seen.add(m.message_id)
                self.messages.append(m)

    def take(self, stage: str):
        """The messages of one stage sent so far, removed from the record."""
        mine = [m for m in self.messages if m.body["type"] == stage]
        self.messages = [m for m in self.messages if m.body["type"] != stage]
        return mine


def memory_services(flows=None, **settings: str) -> Services:
    """Services over the in-memory store and a recording bus, no holdout: for service tests, no cloud."""
    import random

    from shared.adapters.memory.store import MemoryStore
    from shared.adapters.notifiers import RecordingNotifier
    from shared.settings import Settings

    cfg = Settings.from_env({"STORE": "memory", "BUS": "local", "CLOSEDLOOP_ENV": "local", **settings})
    # No holdout unless a test asks for one: which case keys fall in the control group must not decide
    # what a test sees (factory case keys depend on how many findings earlier tests made).
    catalog = load_catalog(REPO_CATALOG, "local")
    for action in catalog.versions.values():
        action.holdoutPercent = None
    policy = load_policy(REPO_CATALOG).model_copy(update={"holdoutPercent": 0.0})
    store = MemoryStore()
    return Services(settings=cfg, store=store, reference=store, coordination=store, bus=RecordingBus(),
                    catalog=catalog, policy=policy, clock=FixedClock(), flows=flows, notifier=RecordingNotifier(),
                    rng=random.Random(7))


def treated_case(prefix: str, process_area: str = "accounts-payable", action: Optional[str] = None) -> str:
    """A case key the repo's holdout puts in the treated group: tests on the local host (which uses the
    repo's catalog and policy) must not depend on which keys happen to be drawn as control cases."""
    from shared.domain import cohort

    policy = load_policy(REPO_CATALOG)
    share = policy.holdoutPercent
    if action is not None:
        share = load_catalog(REPO_CATALOG, "local").actions[action].holdoutPercent or share
    return next(f"{prefix}-{i}" for i in range(1000)
                if cohort.assign(policy.experimentSalt, f"{process_area}|{prefix}-{i}", share) == cohort.TREATED)


def replace_action(svc: Services, action_id: str, **fields: Any) -> Any:
    """Swap the version in use of one action for a changed copy (rate limits, caps, ramp) in a test."""
    from shared.domain.catalog import Action, Catalog

    current = svc.catalog.actions[action_id]
    changed = Action.model_validate({**current.model_dump(mode="json"), **fields})
    svc.catalog = Catalog([*(a for k, a in svc.catalog.versions.items() if k != (current.id, current.version)),
                           changed], svc.catalog.environment)
    return changed


def principal_header(name: str, *roles: str) -> dict[str, str]:
    """An X-MS-CLIENT-PRINCIPAL header as Easy Auth sends it (trusted only with Easy Auth or on the local host)."""
    import base64
    import json as _json

    claims = [{"typ": "preferred_username", "val": name}] + [{"typ": "roles", "val": r} for r in roles]
    doc = {"auth_typ": "aad", "name_typ": "preferred_username", "role_typ": "roles", "claims": claims}
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(_json.dumps(doc).encode()).decode()}


def person(name: str = "ana@contoso.com", *roles: str) -> Any:
    """A verified principal for service-level calls."""
    from shared.domain.identity import Principal

    return Principal(name, name, frozenset(roles), "easy-auth")


def iso_now(delta: timedelta = timedelta(0)) -> str:
    """The current UTC time (plus delta) as a sender writes it: ISO-8601 seconds with Z."""
    return (datetime.now(timezone.utc) + delta).isoformat(timespec="seconds").replace("+00:00", "Z")


def celonis_envelope(subscription: str, offset: int, created: str | None = None,
                     case_key: str | None = None) -> dict:
    """A Celonis subscription event for the ap-invoice-blocked trigger (created now unless given)."""
    case = case_key or f"{subscription}-{offset}"
    return {"subscriberId": subscription, "triggerId": "ap-invoice-blocked", "offset": offset,
            "creationDate": created or iso_now(),
            "event": {"id": f"ev-{offset}", "fields": [
                {"id": "INVOICE_ID", "value": case, "type": "STRING"},
                {"id": "DAYS_BLOCKED", "value": 2, "type": "INTEGER"}]}}


def post_celonis(base: str, payload: Any, headers: Optional[dict] = None, params: Optional[dict] = None) -> Any:
    """POST a JSON payload to the local host's Celonis route."""
    import json

    import requests

    return requests.post(f"{base}/findings/celonis", data=json.dumps(payload).encode(), params=params,
                         headers={"content-type": "application/json", **(headers or {})}, timeout=30)


def run_stages(svc: Services, *stages: str) -> None:
    """Handle the queued messages of `stages` until none is left (no flows when execute is not among them)."""
    import json

    from shared.services import pipeline

    while True:
        mine = [m for m in svc.bus.messages if m.body["type"] in stages]
        if not mine:
            return
        for m in mine:
            svc.bus.messages.remove(m)
            pipeline.handle(svc, m.body["type"], json.dumps(m.body).encode(), 1)


def settled(api: Any, oid: str, status: str, timeout: float = 60.0) -> None:
    """Wait until the local host's opportunity `oid` reaches `status` (the agents work in the background)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.get(f"/opportunities/{oid}").json()["status"] == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{oid} never reached {status}")
