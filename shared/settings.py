"""App settings from one mapping: the environment (Functions app settings) or the local host's dict
(local.settings.json plus its overrides).

Read on first use, never at import; a malformed number falls back to its default with a warning
rather than failing the whole host. The mapping is kept: a setting only a catalog action names (a flow
URL such as FLOW_AP_REQUEST_MISSING_FIELDS) is read from it with `get`, never from os.environ later.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .domain.keyvault import is_reference

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent

# Every setting the app reads, with its local default (mirrored in local.settings.example.json).
DEFAULTS: dict[str, str] = {
    # No name means production: local trust (forged principals, a made-up signing key) is opt-in, and only
    # the local host (devhost) opts in. An app on App Service (WEBSITE_INSTANCE_ID set) refuses it.
    "CLOSEDLOOP_ENV": "prod",
    "STORE": "tables",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "TABLES_CONNECTION": "",
    "AzureWebJobsStorage__tableServiceUri": "",
    "TABLE_PREFIX": "closedloop",
    # One table per kind: in Azure every extra shard costs a query per cross-partition read. The local host
    # uses 8 on Azurite (devhost/boot.py), where one big table makes every write slower (README "Partitions
    # spread over tables").
    "TABLE_SHARDS": "1",
    "BUS": "servicebus",
    "ServiceBusConnection": "",
    "ServiceBusConnection__fullyQualifiedNamespace": "",
    "TRIAGE_QUEUE": "triage",
    "PLAN_QUEUE": "plan",
    "EXECUTE_QUEUE": "execute",
    "VERIFY_QUEUE": "verify",
    "SWEEP_SCHEDULE": "0 */5 * * * *",
    "INGEST_API_KEY": "",
    # Sources whose findings must hold only known fields (comma-separated, e.g. "celonis,generic"); any other
    # source keeps unknown fields under `extensions` and names them in the response. `?strict=true` asks per call.
    "INGEST_STRICT_SOURCES": "",
    # The HMAC secret Celonis signs its events with (Key Vault); unset: the Celonis route takes unsigned bodies.
    "CELONIS_SIGNING_SECRET": "",
    "MAX_BODY_BYTES": "4194304",
    # Seconds any one store call may take before the route answers 503 with Retry-After.
    "STORE_TIMEOUT_SECONDS": "5",
    # Hosts a flow's 202 Location may point at (comma-separated); empty: the hosts of the configured flow URLs.
    "FLOW_POLL_HOSTS": "",
    "CATALOG_DIR": "",
    "OUTBOX_DIR": "",
    "PUBLIC_BASE_URL": "",
    "APPROVAL_SIGNING_KEY": "",
    "APPROVAL_TTL_HOURS": "72",
    "APPROVAL_FLOW_URL": "",
    "APPROVAL_FLOW_KEY": "",
    "TEAMS_WEBHOOK_URL": "",
    "WEBSITE_AUTH_ENABLED": "",
    "AZURE_OPENAI_ENDPOINT": "",
    "AZURE_OPENAI_DEPLOYMENT": "",
    "AZURE_OPENAI_API_VERSION": "2024-10-21",
    "AZURE_OPENAI_API_KEY": "",
    "LLM_BASE_URL": "",
    "LLM_API_KEY": "",
    "LLM_MODEL": "gpt-4o-mini",
    "LLM_TIMEOUT_SECONDS": "10",
    "PLAN_PROMPT": "plan.v1",
    "PROMPT_DIR": "",
    "DATAVERSE_URL": "",
    "DATAVERSE_PREFIX": "cl",
    "DATAVERSE_TOKEN": "",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "",
    "OTEL_SAMPLING_PERCENTAGE": "100",
}


# The settings that hold a secret or a secret URL (infra/main.bicep makes each a Key Vault reference), plus every
# FLOW_* child-flow URL a catalog action names. Listed for whoever reads this; `Settings.unresolved` looks at
# every setting, so a secret added later is covered without being listed here.
SECRETS = ("APPROVAL_SIGNING_KEY", "APPROVAL_FLOW_KEY", "APPROVAL_FLOW_URL", "TEAMS_WEBHOOK_URL", "INGEST_API_KEY",
           "CELONIS_SIGNING_SECRET", "AZURE_OPENAI_API_KEY", "LLM_API_KEY", "DATAVERSE_TOKEN", "FLOW_*")
# What an operator does about an unresolved reference: App Service resolves references when the app starts (and
# when its settings change), so access granted later takes effect on the next restart.
UNRESOLVED_FIX = ("grant the app's managed identity the Key Vault Secrets User role on the vault (or fix the "
                  "reference's vault or secret name), then restart the app")


def unresolved_in(env: Mapping[str, str]) -> tuple[str, ...]:
    """The names of the settings in `env` that still hold a Key Vault reference's text, sorted; never raises."""
    return tuple(sorted(name for name, value in env.items() if is_reference(value)))


def _int(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name) or DEFAULTS[name]
    try:
        return int(raw)
    except ValueError:
        log.warning("setting %s=%r is not an integer; using %s", name, raw, DEFAULTS[name])
        return int(DEFAULTS[name])


@dataclass(frozen=True)
class Settings:
    environment: str
    store: str
    tables_connection: str
    tables_endpoint: str
    table_prefix: str
    table_shards: int
    bus: str
    servicebus_connection: str
    servicebus_namespace: str
    queues: Mapping[str, str]
    ingest_api_key: str | None
    max_body_bytes: int
    catalog_dir: Path
    outbox_dir: Path | None
    public_base_url: str
    approval_signing_key: str
    approval_ttl_hours: int
    approval_flow_url: str
    approval_flow_key: str
    teams_webhook_url: str
    easy_auth: bool
    azure_openai_endpoint: str = ""
    azure_openai_deployment: str = ""
    azure_openai_api_version: str = "2024-10-21"
    azure_openai_api_key: str = ""
    llm_base_url: str = ""
    llm_api_key: str = ""
    llm_model: str = "gpt-4o-mini"
    llm_timeout: float = 10.0
    plan_prompt: str = "plan.v1"
    prompt_dir: Path = REPO / "prompts"
    dataverse_url: str = ""
    dataverse_prefix: str = "cl"
    dataverse_token: str = ""
    appinsights_connection_string: str = ""
    appinsights_entra: bool = False
    sampling_percentage: int = 100
    # Set only where CLOSEDLOOP_ENV=local was asked for on a machine that is not App Service.
    local_refused: bool = False
    store_timeout: float = 5.0
    flow_poll_hosts: tuple[str, ...] = ()
    strict_sources: frozenset[str] = frozenset()
    celonis_signing_secret: str = ""
    # Settings whose value is still a Key Vault reference's text (App Service could not resolve it): the app
    # refuses to act while any is (shared/api/edge.py services(), health says why). Never used as a value.
    unresolved: tuple[str, ...] = ()
    # Every setting as given (a snapshot of the environment, or the local host's dict): see `get`.
    source: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def get(self, name: str) -> str:
        """A setting by name from the same mapping as the rest (empty when unset and without a default)."""
        return (self.source.get(name) or DEFAULTS.get(name, "")).strip()

    @property
    def local(self) -> bool:
        """Local trust: the Easy Auth header is believed without Easy Auth, approvals may sign with a
        per-process key. Only the local host asks for it; never on App Service."""
        return self.environment == "local"

    @property
    def unresolved_why(self) -> str | None:
        """Why the app refuses to act, or None: the settings still holding a Key Vault reference, and the fix."""
        if not self.unresolved:
            return None
        return (f"{', '.join(self.unresolved)} still hold{'s' if len(self.unresolved) == 1 else ''} an unresolved "
                f"Key Vault reference: {UNRESOLVED_FIX}")

    @property
    def approvals_off(self) -> str | None:
        """Why no person can be asked (approval and data requests), or None when they can: links are signed
        with APPROVAL_SIGNING_KEY, and only the local host may make up a per-process key."""
        if "APPROVAL_SIGNING_KEY" in self.unresolved or is_reference(self.approval_signing_key):
            return f"approvals are off: APPROVAL_SIGNING_KEY holds an unresolved Key Vault reference ({UNRESOLVED_FIX})"
        if self.approval_signing_key or self.local:
            return None
        return "approvals are off: APPROVAL_SIGNING_KEY is not set (Key Vault), so no request can be signed"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from `env` (default: a snapshot of os.environ, taken now and never read again)."""
        env = dict(os.environ) if env is None else dict(env)

        def get(name: str) -> str:
            return (env.get(name) or DEFAULTS[name]).strip()

        environment = get("CLOSEDLOOP_ENV")
        on_app_service = bool((env.get("WEBSITE_INSTANCE_ID") or "").strip())  # App Service sets it on every site
        refused = environment == "local" and on_app_service
        if refused:
            # An App Service app is never "local": a forged X-MS-CLIENT-PRINCIPAL would be believed.
            log.error("CLOSEDLOOP_ENV=local is refused on App Service (WEBSITE_INSTANCE_ID is set); "
                      "running as prod")
            environment = "prod"
        return cls(
            source=env,
            unresolved=unresolved_in(env),  # logged once by whoever refuses (shared/api/edge.py), not per read
            environment=environment,
            local_refused=refused,
            store_timeout=max(0.5, float(_int(env, "STORE_TIMEOUT_SECONDS"))),
            strict_sources=frozenset(s.strip() for s in get("INGEST_STRICT_SOURCES").split(",") if s.strip()),
            celonis_signing_secret=get("CELONIS_SIGNING_SECRET"),
            flow_poll_hosts=tuple(h.strip().lower() for h in get("FLOW_POLL_HOSTS").split(",") if h.strip()),
            store=get("STORE").lower(),
            tables_connection=get("TABLES_CONNECTION") or (
                "" if get("AzureWebJobsStorage__tableServiceUri") else get("AzureWebJobsStorage")),
            tables_endpoint=get("AzureWebJobsStorage__tableServiceUri"),
            table_prefix=get("TABLE_PREFIX"),
            table_shards=max(1, _int(env, "TABLE_SHARDS")),
            bus=get("BUS").lower(),
            servicebus_connection=get("ServiceBusConnection"),
            servicebus_namespace=get("ServiceBusConnection__fullyQualifiedNamespace"),
            queues={stage: get(f"{stage.upper()}_QUEUE") for stage in ("triage", "plan", "execute", "verify")},
            ingest_api_key=get("INGEST_API_KEY") or None,
            max_body_bytes=_int(env, "MAX_BODY_BYTES"),
            catalog_dir=Path(get("CATALOG_DIR")) if get("CATALOG_DIR") else REPO / "catalog",
            outbox_dir=Path(get("OUTBOX_DIR")) if get("OUTBOX_DIR") else None,
            public_base_url=get("PUBLIC_BASE_URL").rstrip("/"),
            approval_signing_key=get("APPROVAL_SIGNING_KEY"),
            approval_ttl_hours=max(1, _int(env, "APPROVAL_TTL_HOURS")),
            approval_flow_url=get("APPROVAL_FLOW_URL"),
            approval_flow_key=get("APPROVAL_FLOW_KEY"),
            teams_webhook_url=get("TEAMS_WEBHOOK_URL"),
            easy_auth=get("WEBSITE_AUTH_ENABLED").lower() == "true",
            azure_openai_endpoint=get("AZURE_OPENAI_ENDPOINT").rstrip("/"),
            azure_openai_deployment=get("AZURE_OPENAI_DEPLOYMENT"),
            azure_openai_api_version=get("AZURE_OPENAI_API_VERSION"),
            azure_openai_api_key=get("AZURE_OPENAI_API_KEY"),
            llm_base_url=get("LLM_BASE_URL").rstrip("/"),
            llm_api_key=get("LLM_API_KEY"),
            llm_model=get("LLM_MODEL"),
            llm_timeout=max(0.5, float(_int(env, "LLM_TIMEOUT_SECONDS"))),
            plan_prompt=get("PLAN_PROMPT"),
            prompt_dir=Path(get("PROMPT_DIR")) if get("PROMPT_DIR") else REPO / "prompts",
            dataverse_url=get("DATAVERSE_URL").rstrip("/"),
            dataverse_prefix=get("DATAVERSE_PREFIX"),
            dataverse_token=get("DATAVERSE_TOKEN"),
            appinsights_connection_string=get("APPLICATIONINSIGHTS_CONNECTION_STRING"),
            appinsights_entra=get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING").startswith("Authorization=AAD"),
            sampling_percentage=max(0, min(100, _int(env, "OTEL_SAMPLING_PERCENTAGE"))),
        )
