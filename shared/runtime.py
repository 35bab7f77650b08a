"""The composition root: builds the adapters the settings ask for, once per process, on first use."""
from __future__ import annotations

import gc
import logging
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from .domain.catalog import Action, Catalog
from .domain.policy import Policy
from .ports import Bus, Coordination, Flows, Llm, Notifier, Records, Reference, Services
from .settings import REPO, Settings

REPO_CATALOG = REPO / "catalog"


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


def load_catalog(directory: Path, environment: str) -> Catalog:
    """Every action version kept as JSON under `<dir>/actions`."""
    actions = [Action.model_validate_json(p.read_bytes()) for p in sorted((directory / "actions").glob("*.json"))]
    return Catalog(actions, environment)


def _load_stored_catalog(services: "Services", repo: Catalog) -> None:
    """The store's catalog (repo versions added to it first); the repo's alone if the store is down."""
    from .services.catalog import sync
    try:
        sync(services, list(repo.versions.values()))
    except Exception:  # the app still serves with the repo's catalog; the next start syncs
        logging.getLogger(__name__).exception("could not load the catalog from the store; using the repo's")


def load_policy(directory: Path) -> Policy:
    path = directory / "policy.json"
    return Policy.model_validate_json(path.read_bytes()) if path.exists() else Policy()


def build_stores(settings: Settings) -> tuple[Records, Reference, Coordination]:
    """The backends of the three store ports: one for all (memory, Azure Tables), or Dataverse for records and
    reference data with Azure Tables for coordination."""
    if settings.store == "memory":
        from .adapters.memory.store import MemoryStore
        memory = MemoryStore()
        return memory, memory, memory
    from .adapters.tables.store import TablesStore
    tables = TablesStore.from_settings(settings.tables_connection, settings.tables_endpoint,
                                       settings.table_prefix, settings.table_shards, settings.store_timeout)
    if settings.store == "dataverse":
        # Records in Dataverse; claims, rate limits, autonomy and heartbeats stay in Azure Tables.
        from .adapters.dataverse.client import DataverseClient
        from .adapters.dataverse.schema import Names
        from .adapters.dataverse.store import DataverseStore
        if not settings.dataverse_url:
            raise RuntimeError("STORE=dataverse needs DATAVERSE_URL (https://<org>.crm.dynamics.com)")
        if settings.dataverse_token:  # a fixed token: for the local fake Dataverse only
            token = settings.dataverse_token
            provider = lambda: token  # noqa: E731
        else:
            from .adapters.dataverse.token import token_provider
            provider = token_provider(settings.dataverse_url)
        dataverse = DataverseStore(DataverseClient(settings.dataverse_url, provider, timeout=settings.store_timeout),
                                   Names(settings.dataverse_prefix))
        return dataverse, dataverse, tables
    return tables, tables, tables


def build_bus(settings: Settings) -> Bus:
    if settings.bus == "local":
        if _local_bus is None:
            raise RuntimeError("BUS=local needs the local host (make serve), which provides the in-process bus")
        return _local_bus
    from .adapters.servicebus_bus import ServiceBusBus
    return ServiceBusBus(settings.servicebus_connection or None, settings.servicebus_namespace or None)


def tune_gc() -> None:
    """Fewer, cheaper garbage collections for a batch-ingesting server.

    A 1,000-finding request allocates ~15,000 short-lived objects; with CPython's default young
    generation of 700 that is ~20 collections a request, ~25% of ingest CPU measured here. A larger
    young generation and freezing the startup heap (never garbage) out of full collections cut that.
    """
    gc.set_threshold(10_000, 10, 10)
    gc.freeze()


def build_flows(settings: Optional[Settings] = None) -> Flows:
    """HTTP child flows. A 202's Location is polled only on FLOW_POLL_HOSTS, else on the origins of the configured
    flow URLs (every catalog action's flow.setting, and FLOW_READ_RECORD); https only outside the local host."""
    from .adapters.http_flows import HttpFlows
    settings = settings or Settings.from_env()

    def flow_settings() -> set[str]:
        # Read at each check: the stored catalog replaces the repo's after start, and PUT /api/actions adds to it.
        from .services.sor import READ_SETTING
        built = _services
        return {a.flow.setting for a in (built.catalog.versions.values() if built else ())} | {READ_SETTING}

    return HttpFlows(poll_hosts=settings.flow_poll_hosts, flow_settings=flow_settings, https_only=not settings.local)


def build_llm(settings: Settings) -> Optional[Llm]:
    """The configured LLM, or None; a misconfigured one is logged and planning stays deterministic."""
    if not (settings.azure_openai_endpoint or settings.llm_base_url):
        return None
    try:
        from .adapters.openai_llm import build
        return build(settings)
    except Exception:
        logging.getLogger(__name__).exception("the LLM is misconfigured; planning stays deterministic")
        return None


def _start_telemetry(settings: Settings) -> None:
    """OpenTelemetry to Azure Monitor when a connection string is set; a failure there never stops the app."""
    try:
        from .telemetry import configure
        configure(settings)
    except Exception:
        logging.getLogger(__name__).exception("telemetry could not start; the app runs without it")


def build_notifier(settings: Settings) -> Notifier:
    """Questions to the approval flow, else the Teams webhook; news to the webhook; both else to the outbox
    folder (local), else the log."""
    from .adapters import notifiers
    fallback = notifiers.OutboxNotifier(settings.outbox_dir) if settings.outbox_dir else notifiers.LogNotifier()
    webhook = notifiers.WebhookNotifier(settings.teams_webhook_url) if settings.teams_webhook_url else None
    flow = (notifiers.FlowNotifier(settings.approval_flow_url, settings.public_base_url)
            if settings.approval_flow_url else None)
    return notifiers.RoutingNotifier(flow or webhook or fallback, webhook or fallback)


_lock = threading.Lock()
_services: Optional[Services] = None
_local_bus: Optional[Bus] = None


def use_local_bus(bus: Optional[Bus]) -> None:
    """Called by the local host before it serves: queue sends go to its in-process bus."""
    global _local_bus
    _local_bus = bus


def services() -> Services:
    """The process-wide services, built on first call (not at import: cold start stays cheap)."""
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                settings = Settings.from_env()
                repo = load_catalog(settings.catalog_dir, settings.environment)
                records, reference, coordination = build_stores(settings)
                built = Services(settings=settings, store=records, reference=reference, coordination=coordination,
                                 bus=build_bus(settings), catalog=repo, policy=load_policy(settings.catalog_dir),
                                 clock=SystemClock(), flows=build_flows(), notifier=build_notifier(settings),
                                 llm=build_llm(settings))
                _load_stored_catalog(built, repo)
                _start_telemetry(settings)
                _services = built
                tune_gc()
                from .logs import install_scrubber
                install_scrubber()
    return _services


def reset(replacement: Optional[Services] = None) -> None:
    """Drop (or replace) the cached services: for the local host's restarts and for tests."""
    global _services
    with _lock:
        _services = replacement
