"""The action catalog in the store: repo versions loaded once, new versions added over the API, none edited."""
from __future__ import annotations

import logging
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ..domain.catalog import Action, Catalog
from ..domain.change_control import check_second_person
from ..domain.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, Unauthorized, pointer
from ..ports import ConcurrencyConflict, Services

log = logging.getLogger(__name__)


def record_policy(services: Services) -> None:
    """Keep every policy version the app has run with (author and reason included), added once."""
    deployed = services.deployed_policy or services.policy
    doc = deployed.model_dump(mode="json")
    same = next((d for d in services.reference.policy_versions() if int(d["version"]) == deployed.version), None)
    if same is not None:
        if same.get("origin") == "api":
            # A version added over the API took this number first: the deployed file must be renumbered.
            log.error("catalog/policy.json v%d has the number of a policy added over the API; give it a "
                      "higher version to deploy it", deployed.version)
        return
    with suppress(ConcurrencyConflict):  # another instance recorded it first
        services.reference.add_policy_version(doc)


def sync(services: Services, repo_actions: list[Action]) -> Catalog:
    """Add repo versions the store lacks, then build the catalog from everything stored."""
    stored = {(d["id"], int(d["version"])): d for d in services.reference.action_versions()}
    for action in repo_actions:
        doc = action.model_dump(mode="json")
        held = stored.get((action.id, action.version))
        if held is None:
            with suppress(ConcurrencyConflict):  # another instance loaded it first
                services.reference.add_action_version(doc)
        elif Action.model_validate(held).model_dump(mode="json") != doc:
            # Versions are never edited: the stored one stays in force, and whoever deploys must hear it (a repo
            # file changed under the same number would otherwise look deployed and not be).
            log.error("catalog/actions/%s.v%d.json differs from the stored %s v%d, which stays in force: give the "
                      "change a new version to deploy it", action.id, action.version, action.id, action.version)
    record_policy(services)
    return rebuild(services)


def rebuild(services: Services) -> Catalog:
    """The rules in force from the store: action versions, the policy and prompts, each as activated."""
    from .rule_versions import POLICY_ID, policy_in_use, prompts_in_use

    actions = [Action.model_validate(d) for d in services.reference.action_versions()]
    activations = services.reference.activations()
    activated = [(d["id"], int(d["version"])) for d in activations]
    catalog = Catalog(actions, services.settings.environment, activated)
    catalog.prompts = prompts_in_use(services.reference.prompt_versions(), activations)
    if services.deployed_policy is None:
        services.deployed_policy = services.policy
    services.policy = policy_in_use(services.deployed_policy, services.reference.policy_versions(),
                                    {v for i, v in activated if i == POLICY_ID})
    services.catalog = catalog
    return services.catalog


def activate(services: Services, action_id: str, version: int, principal: Any) -> Action:
    """A second person lets a pending version go live: it needs the catalog approver role, and the
    author cannot approve their own version."""
    action = services.catalog.versions.get((action_id, version))
    if action is None:
        raise NotFound(f"No version {version} of {action_id!r}.", [FieldError("/version", "unknown version")])
    if (action_id, version) not in services.catalog.pending:
        raise Conflict(f"{action_id} v{version} needs no activation (or is already active).")
    current = services.catalog.actions.get(action_id)
    if current is not None and current.version > version:
        # Its reasons were weighed against an older version in use: going live now would undo what went
        # live since (a lower cap, a disable). Add it again to be compared with the version in use.
        raise Conflict(f"{action_id} v{version} is superseded by v{current.version}, now in use; add it again.")
    check_second_person(principal, services.policy.catalogApproverRole, action.author)
    with suppress(ConcurrencyConflict):  # someone activated it meanwhile: the outcome is the same
        services.reference.add_activation({"id": action_id, "version": version, "approvedBy": principal.id,
                                           "approvedAt": datetime.now(UTC).isoformat(),
                                           "reasons": services.catalog.pending[(action_id, version)]})
    rebuild(services)
    log.info("action %s v%d activated by %s", action_id, version, principal.id)
    return action


def view(action: Action, latest_version: int, pending: list[str] | None = None) -> dict[str, Any]:
    state = {"state": "pending", "activationNeeded": pending} if pending else {"state": "active"}
    return {**action.model_dump(mode="json"), "latestVersion": latest_version, **state}


def list_actions(services: Services, all_versions: bool) -> dict[str, Any]:
    catalog = services.catalog
    latest = {a.id: a.version for a in catalog.actions.values()}
    chosen = sorted(catalog.versions.values(), key=lambda a: (a.id, a.version)) if all_versions else \
        sorted(catalog.actions.values(), key=lambda a: a.id)
    return {"items": [view(a, latest.get(a.id, 0), catalog.pending.get((a.id, a.version))) for a in chosen],
            "continuationToken": None}


def versions_of(services: Services, action_id: str) -> list[Action]:
    found = sorted((a for (i, _), a in services.catalog.versions.items() if i == action_id), key=lambda a: a.version)
    if not found:
        raise NotFound(f"No action {action_id!r}.", [FieldError("/id", "unknown action")])
    return found


def _errors(exc: ValidationError) -> list[FieldError]:
    return [FieldError(pointer(*e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]


def require_author(services: Services, principal: Any) -> Any:
    """Who may add a version of the rules: a signed-in principal holding the catalog approver role."""
    role = services.policy.catalogApproverRole
    if principal is None:
        raise Unauthorized("sign in (Easy Auth) to add a version: its author is the signed-in principal")
    if not principal.holds(role):
        raise Forbidden(f"adding a version needs the role {role}")
    return principal


def _server_fields(doc: dict[str, Any]) -> None:
    """The author is the signed-in principal and the origin is the server's: a body never names them."""
    given = [k for k in ("author", "origin") if k in doc]
    if given:
        raise InvalidInput("The author is the signed-in principal; a body never names a person.",
                           [FieldError(f"/{k}", "leave it out: set by the server") for k in given])


def add_version(services: Services, action_id: str, body: bytes, principal: Any) -> Action:
    """PUT /api/actions/{id}: the body becomes the next version of the action (or its first), authored by
    the signed-in principal; it goes live at once only when it tightens the version in use."""
    from ..ingest.generic import decode_json

    author = require_author(services, principal).id
    doc = decode_json(body)
    if not isinstance(doc, dict):
        raise InvalidInput("Send the action definition as a JSON object.", [FieldError("", "expected an object")])
    if doc.get("id", action_id) != action_id:
        raise InvalidInput("The id in the body differs from the one in the URL.", [FieldError("/id", "must match")])
    if "version" in doc:
        raise InvalidInput("Versions are assigned by the catalog.", [FieldError("/version", "leave it out")])
    _server_fields(doc)
    for _ in range(3):
        # Numbered after every stored version, pending ones included.
        version = max((v for i, v in services.catalog.versions if i == action_id), default=0) + 1
        candidate = {**doc, "id": action_id, "version": version, "author": author, "origin": "api"}
        try:
            action = Action.model_validate(candidate)
        except ValidationError as exc:
            raise InvalidInput("The action definition is invalid; nothing was stored.", _errors(exc)) from None
        _compiles(action)
        try:
            services.reference.add_action_version(action.model_dump(mode="json"))
        except ConcurrencyConflict:
            rebuild(services)  # someone added a version meanwhile: take the next number
            continue
        rebuild(services)
        log.info("action %s v%d added by %s: %s", action.id, action.version, action.author, action.reason or "")
        return action
    raise Conflict(f"Action {action_id} is being changed by others; try again.")


def _compiles(action: Action) -> None:
    """The data contract is a JSON Schema the planner can compile (422 otherwise, before anything is stored)."""
    import fastjsonschema

    try:
        fastjsonschema.compile(action.dataContract)
    except (fastjsonschema.JsonSchemaDefinitionException, ValueError, TypeError, RecursionError) as exc:
        raise InvalidInput("The data contract is not a JSON Schema the planner can use; nothing was stored.",
                           [FieldError("/dataContract", str(exc)[:200])]) from None
