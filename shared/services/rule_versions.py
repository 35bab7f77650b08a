"""Policy and prompt versions over the API: added by a catalog approver, used only once a second person
activates them (the same two-person rule as action versions; docs/change-control.md).

Every policy field can loosen something (weights, holdout, thresholds, roles), and a prompt decides what
the model proposes, so neither has a "pure tightening" shortcut: each version added here waits.
The policy and prompts shipped with the deployment (catalog/policy.json, prompts/) are used as they are.
"""
from __future__ import annotations

import logging
import re
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ..domain.change_control import check_second_person
from ..domain.errors import Conflict, FieldError, InvalidInput, NotFound, pointer
from ..domain.llm_plan import Prompt
from ..domain.policy import Policy
from ..ports import ConcurrencyConflict, Services

log = logging.getLogger(__name__)
POLICY_ID = "~policy"  # "~" is in no action id, so an activation can never be mistaken for an action's
_NAME = re.compile(r"^[a-z0-9_-]{1,40}$")
MAX_PROMPT_CHARS = 20_000  # a system or user section; plan.v1 is ~2,000 characters


def prompt_id(name: str) -> str:
    return f"~prompt~{name}"


def _activated(services: Services, key: str) -> set[int]:
    return {int(a["version"]) for a in services.reference.activations() if a.get("id") == key}


def _object(body: bytes) -> dict[str, Any]:
    from ..ingest.generic import decode_json

    doc = decode_json(body)
    if not isinstance(doc, dict):
        raise InvalidInput("Send a JSON object.", [FieldError("", "expected an object")])
    given = [k for k in ("version", "author", "origin") if k in doc]
    if given:
        raise InvalidInput("The version, author and origin are set by the server; a body never names a person.",
                           [FieldError(f"/{k}", "leave it out: set by the server") for k in given])
    return doc


def policy_in_use(deployed: Policy, stored: list[dict[str, Any]], activated: set[int]) -> Policy:
    """The deployed policy, unless an activated API version is newer."""
    live = [Policy.model_validate(d) for d in stored if d.get("origin") == "api" and int(d["version"]) in activated]
    return max([deployed, *live], key=lambda p: p.version)


def policy_views(services: Services) -> list[dict[str, Any]]:
    """Every stored policy version, newest first, with its state (pending, active) and whether it is in use."""
    activated = _activated(services, POLICY_ID)
    items = []
    for d in sorted(services.reference.policy_versions(), key=lambda d: -int(d["version"])):
        pending = d.get("origin") == "api" and int(d["version"]) not in activated
        items.append({**d, "inUse": int(d["version"]) == services.policy.version,
                      "state": "pending" if pending else "active"})
    return items


def add_policy(services: Services, body: bytes, principal: Any) -> dict[str, Any]:
    """PUT /api/policies: the body becomes the next policy version, pending until a second person activates it."""
    from .catalog import rebuild, require_author

    author = require_author(services, principal).id
    doc = _object(body)
    for _ in range(3):
        version = max([services.policy.version, *(int(d["version"]) for d in services.reference.policy_versions())]) + 1
        try:
            policy = Policy.model_validate({**doc, "version": version, "author": author, "origin": "api"})
        except ValidationError as exc:
            raise InvalidInput("The policy is invalid; nothing was stored.", _errors(exc)) from None
        try:
            services.reference.add_policy_version(policy.model_dump(mode="json"))
        except ConcurrencyConflict:
            continue  # someone added a version meanwhile: take the next number
        rebuild(services)
        log.info("policy v%d added by %s (pending): %s", version, author, policy.reason or "")
        return next(v for v in policy_views(services) if int(v["version"]) == version)
    raise Conflict("The policy is being changed by others; try again.")


def activate_policy(services: Services, version: int, principal: Any) -> dict[str, Any]:
    """A second person (catalog approver, not the author) lets a pending policy version go live."""
    from .catalog import rebuild

    doc = next((d for d in services.reference.policy_versions() if int(d["version"]) == version), None)
    if doc is None:
        raise NotFound(f"No policy version {version}.", [FieldError("/version", "unknown version")])
    if doc.get("origin") != "api" or version in _activated(services, POLICY_ID):
        raise Conflict(f"Policy v{version} needs no activation (or is already active).")
    check_second_person(principal, services.policy.catalogApproverRole, doc.get("author"))
    _activate(services, POLICY_ID, version, principal)
    rebuild(services)
    return next(v for v in policy_views(services) if int(v["version"]) == version)


def prompts_in_use(stored: list[dict[str, Any]], activations: list[dict[str, Any]]) -> dict[str, Prompt]:
    """By prompt name, the newest activated API version (it wins over the deployed file when newer)."""
    live = {(a["id"], int(a["version"])) for a in activations}
    out: dict[str, tuple[int, Prompt]] = {}
    for d in stored:
        n = int(d["version"])
        if (prompt_id(d["name"]), n) in live and n > out.get(d["name"], (0, None))[0]:
            out[d["name"]] = (n, Prompt(f"{d['name']}.v{n}", d["system"], d["user"]))
    return {name: p for name, (_, p) in out.items()}


def _file_versions(services: Services, name: str) -> list[int]:
    return [int(p.stem.rsplit(".v", 1)[1]) for p in services.settings.prompt_dir.glob(f"{name}.v*.md")
            if p.stem.rsplit(".v", 1)[1].isdecimal()]


def prompt_views(services: Services) -> list[dict[str, Any]]:
    """Prompt versions: the deployed files and those added over the API, with state and which one is in use."""
    from .prompts import in_use

    current = in_use(services).version
    activated = {(a["id"], int(a["version"])) for a in services.reference.activations()}
    items = []
    for path in sorted(services.settings.prompt_dir.glob("*.v*.md")):
        name, _, n = path.stem.rpartition(".v")
        if n.isdecimal():
            items.append({"name": name, "version": int(n), "origin": "repo", "state": "active",
                          "inUse": path.stem == current})
    for d in services.reference.prompt_versions():
        state = "active" if (prompt_id(d["name"]), int(d["version"])) in activated else "pending"
        items.append({**d, "state": state, "inUse": f"{d['name']}.v{d['version']}" == current})
    return sorted(items, key=lambda i: (i["name"], -int(i["version"])))


def add_prompt(services: Services, name: str, body: bytes, principal: Any) -> dict[str, Any]:
    """PUT /api/prompts/{name}: the next version of a prompt, pending until a second person activates it."""
    from .catalog import rebuild, require_author

    if not _NAME.match(name):
        raise InvalidInput("A prompt name is lower-case letters, digits, - and _.", [FieldError("/name", "a name")])
    author = require_author(services, principal).id
    doc = _object(body)
    errors = [FieldError(f"/{k}", f"text of 1 to {MAX_PROMPT_CHARS} characters") for k in ("system", "user")
              if not isinstance(doc.get(k), str) or not 0 < len(doc[k]) <= MAX_PROMPT_CHARS]
    if isinstance(doc.get("user"), str) and "{data}" not in doc["user"]:
        errors.append(FieldError("/user", "must contain {data}, where the case's shape goes"))
    if doc.get("reason") is not None and not (isinstance(doc["reason"], str) and len(doc["reason"]) <= 500):
        errors.append(FieldError("/reason", "text of at most 500 characters"))
    errors += [FieldError(f"/{k}", "not a prompt field (system, user, reason)") for k in doc
               if k not in ("system", "user", "reason")]
    if errors:
        raise InvalidInput("The prompt is invalid; nothing was stored.", errors)
    for _ in range(3):
        stored = [int(d["version"]) for d in services.reference.prompt_versions() if d["name"] == name]
        version = max([0, *_file_versions(services, name), *stored]) + 1
        record = {"name": name, "version": version, "system": doc["system"], "user": doc["user"],
                  "reason": doc.get("reason"), "author": author, "origin": "api",
                  "createdAt": services.clock.now().isoformat()}
        try:
            services.reference.add_prompt_version(record)
        except ConcurrencyConflict:
            continue
        rebuild(services)
        log.info("prompt %s.v%d added by %s (pending)", name, version, author)
        return {**record, "state": "pending", "inUse": False}
    raise Conflict(f"Prompt {name} is being changed by others; try again.")


def activate_prompt(services: Services, name: str, version: int, principal: Any) -> dict[str, Any]:
    """A second person (catalog approver, not the author) lets a pending prompt version go live."""
    from .catalog import rebuild

    doc = next((d for d in services.reference.prompt_versions() if d["name"] == name and int(d["version"]) == version),
               None)
    if doc is None:
        raise NotFound(f"No prompt {name}.v{version} added over the API.", [FieldError("/version", "unknown")])
    if version in _activated(services, prompt_id(name)):
        raise Conflict(f"Prompt {name}.v{version} is already active.")
    check_second_person(principal, services.policy.catalogApproverRole, doc.get("author"))
    _activate(services, prompt_id(name), version, principal)
    rebuild(services)
    return {**doc, "state": "active"}


def _activate(services: Services, key: str, version: int, principal: Any) -> None:
    with suppress(ConcurrencyConflict):  # someone activated it meanwhile: the outcome is the same
        services.reference.add_activation({"id": key, "version": version, "approvedBy": principal.id,
                                           "approvedAt": datetime.now(UTC).isoformat()})
    log.info("%s v%d activated by %s", key, version, principal.id)


def _errors(exc: ValidationError) -> list[FieldError]:
    return [FieldError(pointer(*e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]

