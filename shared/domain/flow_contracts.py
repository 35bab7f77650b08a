"""The contracts between the app and its Power Automate flows, as the models the app validates with.

`python -m shared.domain.flow_contracts` writes them as JSON Schemas under infra/flows/, inlined (no
$ref) so they paste into "When a HTTP request is received" and "Parse JSON"; a test keeps the files equal
to these models, so a flow built from them and the app cannot drift apart.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FOLDER = Path(__file__).resolve().parents[2] / "infra" / "flows"


class ActionRef(BaseModel):
    id: str = Field(description="Catalog action id, e.g. ap.request-missing-fields")
    version: int = Field(ge=1)


class ChildFlowRequest(BaseModel):
    """What the executor POSTs to a child flow (also sent as headers Idempotency-Key and x-correlation-id)."""

    model_config = ConfigDict(extra="forbid")

    idempotencyKey: str = Field(description="The same decision always carries the same key: act at most once")
    correlationId: str
    opportunityId: str
    action: ActionRef
    parameters: dict[str, Any] = Field(description="Valid against the action's data contract")


class Evidence(BaseModel):
    model_config = ConfigDict(extra="allow")

    recordIds: list[str] = Field(default_factory=list)
    before: dict[str, Any] = Field(default_factory=dict, description="Record state before, keyed by record type")
    after: dict[str, Any] = Field(default_factory=dict, description="Record state after, keyed by record type")


class ChildFlowResponse(BaseModel):
    """A child flow's answer (200); 202 + Location for long work, 429 + Retry-After when throttled."""

    model_config = ConfigDict(extra="allow")

    status: Literal["succeeded", "failed", "rejected"]
    evidence: Evidence = Field(default_factory=Evidence)
    message: str | None = Field(default=None, max_length=2000)


class ApprovalFlowRequest(BaseModel):
    """What the app POSTs to the approval flow: post `card` to the approver, then POST the answer to
    `callbackUrl` (an ApprovalAnswer, signed with x-closedloop-signature)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="approve, enrich, review or escalate")
    opportunityId: str
    subject: str
    approvalId: str | None = None
    token: str | None = Field(default=None, description="Single-use, signed; send it back unchanged")
    expiresAt: str | None = None
    requiredRole: str | None = None
    parameters: dict[str, Any] | None = None
    callbackUrl: str | None = None
    card: dict[str, Any] | None = Field(default=None, description="Adaptive Card 1.5")
    correlationId: str | None = Field(default=None, description="The run that asked: quote it in the flow's logs")


class Approver(BaseModel):
    """The person who answered, as the flow's responder. `id` is the person's Entra object id (the responder's
    `objectId`/`oid`), never an e-mail or a display name: Easy Auth names people by it too, and two-approver
    checks compare ids only (one person answering through both channels is one id)."""

    model_config = ConfigDict(extra="allow")

    # A GUID by pattern: an e-mail here would be a second identity for a person Easy Auth knows by oid, and one
    # person could then approve both stages of a two-approver amount (one through the flow, one signed in).
    id: str = Field(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                    description="The responder's Entra object id (oid, a GUID), as Easy Auth reports it; "
                                "never an e-mail alias or a display name")
    name: str | None = Field(default=None, description="Display name or e-mail, for people to read only")
    roles: list[str] = Field(default_factory=list)


class ApprovalAnswer(BaseModel):
    """The decision POSTed to /api/approvals/{id}: by the approval flow (signed) or a signed-in person."""

    model_config = ConfigDict(extra="ignore")

    token: str = Field(min_length=1, description="The token from the request, unchanged")
    decision: Literal["approve", "reject", "provide", "run", "handover", "dismiss", "retry", "undo", "accept",
                      "close"] = Field(description="approve/reject an approval; provide data; a review: run, provide, "
                                                   "handover or dismiss; an escalation: retry, undo, accept, handover "
                                                   "or close")
    data: dict[str, Any] | None = Field(default=None, description="For provide: the missing contract fields")
    comment: str | None = Field(default=None, max_length=1000)
    actionId: str | None = Field(default=None, max_length=100, description="For run: the candidate action chosen")
    parameters: dict[str, Any] | None = Field(default=None, description="For run: contract fields, as edited")
    owner: str | None = Field(default=None, max_length=200, description="For handover: who takes the case")
    reason: str | None = Field(default=None, max_length=500, description="For dismiss, accept or close: why")
    helpful: bool | Literal["yes", "no"] | None = None
    approver: Approver | None = Field(default=None, description="Who answered (the flow's responder)")


CONTRACTS: dict[str, type[BaseModel]] = {
    "child-flow-request": ChildFlowRequest, "child-flow-response": ChildFlowResponse,
    "approval-flow-request": ApprovalFlowRequest, "approval-answer": ApprovalAnswer}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema with every $ref inlined (Power Automate's triggers do not follow $ref)."""
    raw = model.model_json_schema()
    return _inline(raw, raw.get("$defs", {}))


def write(folder: Path = FOLDER) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, model in CONTRACTS.items():
        (folder / f"{name}.schema.json").write_text(json.dumps(schema(model), indent=2) + "\n")


if __name__ == "__main__":
    write()
    print(f"wrote {len(CONTRACTS)} schemas to {FOLDER}", file=sys.stderr)
