"""Reading the system of record through the read flow (app setting FLOW_READ_RECORD), when there is one."""
from __future__ import annotations

from typing import Any

from ..ports import Services

READ_SETTING = "FLOW_READ_RECORD"


def read(services: Services, params: dict[str, Any], key: str, cid: str,
         opportunity_id: str) -> dict[str, Any] | None:
    """The record as the system of record has it now; None when there is no read flow or no such record."""
    from ..ports import FlowNotConfigured
    if services.flows is None:
        return None
    try:
        r = services.flows.call(READ_SETTING, {"idempotencyKey": key, "correlationId": cid,
                                               "opportunityId": opportunity_id,
                                               "action": {"id": "sor.read", "version": 1}, "parameters": params},
                                key, cid, services.policy.flowTimeoutSeconds)
    except FlowNotConfigured:
        return None
    if r.status == 200 and isinstance(r.body, dict) and r.body.get("status") == "succeeded":
        after = (r.body.get("evidence") or {}).get("after")
        return after if isinstance(after, dict) else None
    return None
