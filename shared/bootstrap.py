"""The composition root: `bootstrap(settings, **overrides)` builds every adapter the settings ask for, once.

No globals here: the Functions host gets its services through shared/runtime.py, the local host
(devhost/boot.py) and tests call `bootstrap` with their own settings and adapters.
"""
from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from .domain.aliases import Aliases
from .domain.catalog import Action, Catalog
from .domain.keyvault import is_reference
from .domain.policy import Policy
from .ports import Bus, Clock, Coordination, Flows, Llm, Notifier, Records, Reference, Services
from .settings import REPO, Settings

REPO_CATALOG = REPO / "catalog"
log = logging.getLogger(__name__)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def load_catalog(directory: Path, environment: str) -> Catalog:
    """Every action version kept as JSON under `<dir>/actions`."""
    actions = [Action.model_validate_json(p.read_bytes()) for p in sorted((directory / "actions").glob("*.json"))]
    return Catalog(actions, environment)


def load_policy(directory: Path) -> Policy:
    """The deployed policy (`<dir>/policy.json`), else the defaults."""
    path = directory / "policy.json"
    return Policy.model_validate_json(path.read_bytes()) if path.exists() else Policy()


def load_aliases(directory: Path) -> Aliases:
    """Any miner's names → the catalog's (`<dir>/aliases.json`), else none."""
    path = directory / "aliases.json"
    return Aliases.from_doc(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else Aliases()


def sync_stored_catalog(services: Services, repo: Catalog) -> None:
    """The store's catalog (repo versions added to it first); the repo's alone if the store is down."""
    from .services.catalog import sync
    try:
        sync(services, list(repo.versions.values()))
    except Exception:  # the app still serves with the repo's catalog; the next start syncs
        log.exception("could not load the catalog from the store; using the repo's")


def open_tables(settings: Settings) -> tuple[Records, Reference, Coordination]:
    """The Azure Tables backend of all three ports: the one place the composition opens it."""
    from .adapters.tables import open_tables as open_azure_tables
    return open_azure_tables(settings.tables_connection, settings.tables_endpoint, settings.table_prefix,
                             settings.table_shards, settings.store_timeout)


def build_stores(settings: Settings) -> tuple[Records, Reference, Coordination]:
    """The backends of the three store ports: one for all (memory, Azure Tables), or Dataverse for records and
    reference data with Azure Tables for coordination."""
    if settings.store == "memory":
        from .adapters.memory.store import MemoryStore
        memory = MemoryStore()
        return memory, memory, memory
    _, _, coordination = tables = open_tables(settings)
    if settings.store != "dataverse":
        return tables
    # Records in Dataverse; claims, rate limits, autonomy and heartbeats stay in Azure Tables.
    from .adapters.dataverse.client import DataverseClient
    from .adapters.dataverse.schema import Names
    from .adapters.dataverse.store import DataverseStore
    if not settings.dataverse_url:
        raise RuntimeError("STORE=dataverse needs DATAVERSE_URL (https://<org>.crm.dynamics.com)")
    if _usable(settings, "DATAVERSE_TOKEN", settings.dataverse_token):  # a fixed token: the local fake Dataverse only
        token = settings.dataverse_token
        provider = lambda: token  # noqa: E731
    else:
        from .adapters.dataverse.token import token_provider
        provider = token_provider(settings.dataverse_url)
    dataverse = DataverseStore(DataverseClient(settings.dataverse_url, provider, timeout=settings.store_timeout),
                               Names(settings.dataverse_prefix))
    return dataverse, dataverse, coordination


def build_bus(settings: Settings) -> Bus:
    """Service Bus; BUS=local has no bus to build here: the local host passes its own."""
    if settings.bus == "local":
        raise RuntimeError("BUS=local needs the local host (make serve), which provides the in-process bus")
    from .adapters.servicebus_bus import ServiceBusBus
    return ServiceBusBus(settings.servicebus_connection or None, settings.servicebus_namespace or None)


def resolved(settings: Settings) -> dict[str, str]:
    """The settings' mapping without the settings that hold an unresolved Key Vault reference: a flow URL that is
    one reads as unset (FlowNotConfigured), never as a URL to call. Each is logged once where it is dropped."""
    for name in settings.unresolved:
        if name.startswith("FLOW_"):
            _unresolved_once(name, "the flow is never called (FlowNotConfigured)")
    return {k: v for k, v in settings.source.items() if k not in settings.unresolved}


_said: set[str] = set()


def _unresolved_once(name: str, consequence: str) -> None:
    if name not in _said:
        _said.add(name)
        log.error("%s holds an unresolved Key Vault reference: %s", name, consequence)


def _usable(settings: Settings, name: str, value: str) -> str:
    """`value` (the setting `name`), or "" when it holds an unresolved Key Vault reference (logged once)."""
    if name in settings.unresolved or is_reference(value):
        _unresolved_once(name, "treated as unset")
        return ""
    return value


def build_flows(settings: Settings, catalog: Callable[[], Catalog | None] | None = None) -> Flows:
    """HTTP child flows, their URLs read from the settings' own mapping. A 202's Location is polled only on
    FLOW_POLL_HOSTS, else on the origins of the configured flow URLs (every flow.setting of `catalog()`, and
    FLOW_READ_RECORD); https only outside the local host."""
    from .adapters.http_flows import HttpFlows

    def flow_settings() -> set[str]:
        # Read at each check: the stored catalog replaces the repo's after start, and PUT /api/actions adds to it.
        from .services.sor import READ_SETTING
        current = catalog() if catalog else None
        return {a.flow.setting for a in (current.versions.values() if current else ())} | {READ_SETTING}

    return HttpFlows(resolved(settings), poll_hosts=settings.flow_poll_hosts, flow_settings=flow_settings,
                     https_only=not settings.local)


def build_notifier(settings: Settings) -> Notifier:
    """Questions to the approval flow, else the Teams webhook; news to the webhook; both else to the outbox
    folder (local), else the log."""
    from .adapters import notifiers
    fallback = notifiers.OutboxNotifier(settings.outbox_dir) if settings.outbox_dir else notifiers.LogNotifier()
    # A URL that is an unresolved Key Vault reference is never called: it reads as unset.
    webhook_url = _usable(settings, "TEAMS_WEBHOOK_URL", settings.teams_webhook_url)
    flow_url = _usable(settings, "APPROVAL_FLOW_URL", settings.approval_flow_url)
    webhook = notifiers.WebhookNotifier(webhook_url) if webhook_url else None
    flow = notifiers.FlowNotifier(flow_url, settings.public_base_url) if flow_url else None
    return notifiers.RoutingNotifier(flow or webhook or fallback, webhook or fallback)


def build_llm(settings: Settings) -> Llm | None:
    """The configured LLM, or None; a misconfigured one is logged and planning stays deterministic."""
    if not (settings.azure_openai_endpoint or settings.llm_base_url):
        return None
    if any(name in settings.unresolved for name in ("AZURE_OPENAI_API_KEY", "LLM_API_KEY")):
        _unresolved_once("AZURE_OPENAI_API_KEY/LLM_API_KEY", "planning stays deterministic")
        return None
    try:
        from .adapters.openai_llm import build
        return build(settings)
    except Exception:
        log.exception("the LLM is misconfigured; planning stays deterministic")
        return None


def start_telemetry(settings: Settings) -> None:
    """OpenTelemetry to Azure Monitor when a connection string is set; a failure there never stops the app."""
    try:
        from .telemetry import configure
        configure(settings)
    except Exception:
        log.exception("telemetry could not start; the app runs without it")


def tune_gc() -> None:
    """Fewer, cheaper garbage collections for a batch-ingesting server.

    A 1,000-finding request allocates ~15,000 short-lived objects; with CPython's default young
    generation of 700 that is ~20 collections a request, ~25% of ingest CPU measured here. A larger
    young generation and freezing the startup heap (never garbage) out of full collections cut that.
    """
    gc.set_threshold(10_000, 10, 10)
    gc.freeze()


def bootstrap(settings: Settings, *, store: Records | None = None, reference: Reference | None = None,
              coordination: Coordination | None = None, bus: Bus | None = None,
              flows: Flows | None = None, notifier: Notifier | None = None, llm: Llm | None = None,
              clock: Clock | None = None, catalog: Catalog | None = None, policy: Policy | None = None,
              aliases: Aliases | None = None,
              sync_catalog: bool = True, telemetry: bool = True, process_wide: bool = True) -> Services:
    """Services for `settings`: every adapter not passed in is built from them. The repo's catalog is synced with
    the store's (sync_catalog); telemetry starts (telemetry); process_wide tunes the GC and installs the log
    scrubber, which a process does once whoever builds its services."""
    if store is None or reference is None or coordination is None:
        built = build_stores(settings)
        store, reference, coordination = store or built[0], reference or built[1], coordination or built[2]
    repo = catalog or load_catalog(settings.catalog_dir, settings.environment)
    services: Services | None = None
    services = Services(
        settings=settings, store=store, reference=reference, coordination=coordination,
        bus=bus or build_bus(settings), catalog=repo,
        policy=policy or load_policy(settings.catalog_dir), clock=clock or SystemClock(),
        aliases=aliases or load_aliases(settings.catalog_dir),
        flows=flows or build_flows(settings, lambda: services.catalog if services else None),
        notifier=notifier or build_notifier(settings), llm=llm if llm is not None else build_llm(settings))
    if sync_catalog and not settings.unresolved:  # the app refuses to act meanwhile (shared/api/edge.py)
        sync_stored_catalog(services, repo)
    if telemetry:
        start_telemetry(settings)
    if process_wide:
        tune_gc()
        from .logs import install_scrubber
        install_scrubber()
    return services
