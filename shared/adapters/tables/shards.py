"""Which table holds a partition, and opening those tables.

Partitions are spread over `shards` tables (`<prefix>Opportunities`, `<prefix>Opportunities1`, ...) by a
stable hash of the PartitionKey; every row of a partition (an opportunity, its executions and audit) lives
in one table, so transactions stay atomic. Why: Azurite replaces an entity in time linear in its table's
size (LokiJS re-indexes on every remove), so the 10,000-finding benchmark's single 75,000-row table made
each write ~3x slower than eight tables of ~9,000 (e2e 154 -> 227 opportunities/s). Azure does not care;
there the cost is that a cross-partition query reads every shard. The shard count is recorded in the first
table, and a store opened with another count refuses to start rather than silently miss rows.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from ...domain.errors import Unavailable
from . import batch as tables_batch
from . import query as tables_query

AZURITE_ACCOUNT_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
                       "K1SZFPTOtr/KBHBeksoGMGw==")
# STORE_TIMEOUT_SECONDS' default: an adapter takes its settings as arguments and never reads the environment.
DEFAULT_TIMEOUT = 5.0
_LAYOUT = {"PartitionKey": "layout", "RowKey": "shards"}


class LayoutMismatch(RuntimeError):
    """The tables were created with another shard count; reading them with this one would miss rows."""


def resolve_connection_string(value: str, table_port: int = 10002) -> str:
    """Expand `UseDevelopmentStorage=true` (which azure-data-tables does not understand) for Azurite."""
    if value.strip().lower().startswith("usedevelopmentstorage=true"):
        return ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                f"AccountKey={AZURITE_ACCOUNT_KEY};"
                f"TableEndpoint=http://127.0.0.1:{table_port}/devstoreaccount1;")
    return value


def shard_names(table: str, shards: int) -> list[str]:
    return [table if i == 0 else f"{table}{i}" for i in range(max(1, shards))]


def bounded(timeout: float) -> dict[str, Any]:
    """TableClient options that bound one store call to about `timeout` seconds in all (plus one short backoff).

    The SDK's defaults are 300 s connect and read timeouts and 10 retries backing off up to 120 s: with the store
    down a route answered after ~5 s, with it frozen (SIGSTOP) not within 120 s. Here each try may take `timeout`,
    the retries share the same `timeout` (the pipeline refuses a try once it is spent), and backoffs stay short."""
    return {"connection_timeout": timeout, "read_timeout": timeout, "timeout": timeout, "retry_total": 3,
            "retry_connect": 3, "retry_read": 1, "retry_status": 3, "retry_backoff_factor": 0.2,
            "retry_backoff_max": min(2.0, timeout / 2)}


def connect(connection: str | None, endpoint: str | None, names: Sequence[str],
            timeout: float = DEFAULT_TIMEOUT) -> list[Any]:
    """One TableClient per table name over one shared HTTP session, by connection string or managed identity;
    each call bounded by `timeout` seconds (the composition root passes STORE_TIMEOUT_SECONDS)."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from azure.data.tables import TableClient

    options = bounded(timeout)

    # The stages run many threads against these clients; requests' default pool of 10 would churn sockets.
    session = requests.Session()
    # No proxy discovery from the environment: it walks os.environ on every request (~0.8 ms here).
    session.trust_env = False
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
    session.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=64))
    transport = RequestsTransport(session=session, session_owner=True, connection_timeout=timeout,
                                  read_timeout=timeout)
    if connection:
        connection = resolve_connection_string(connection)
        return [TableClient.from_connection_string(connection, table_name=n, transport=transport, **options)
                for n in names]
    if endpoint:
        from azure.identity import DefaultAzureCredential
        credential = DefaultAzureCredential()
        return [TableClient(endpoint=endpoint, table_name=n, credential=credential, transport=transport, **options)
                for n in names]
    raise ValueError("set AzureWebJobsStorage (or TABLES_CONNECTION) or AzureWebJobsStorage__tableServiceUri")


def shard_of(tables: Sequence[Any], partition: str) -> Any:
    """The table holding a partition: the same answer in every process and after every restart."""
    return tables[0] if len(tables) == 1 else tables[zlib.crc32(partition.encode()) % len(tables)]


class Prepared:
    """The store's tables created if missing and their shard count checked, once, before the first call of any
    port that uses them (records, reference data and coordination share one)."""

    def __init__(self, shards: Sequence[Any], *others: Any):
        self._shards, self._others = list(shards), others
        self._done = False

    def ensure(self) -> None:
        # No lock: two first calls racing both prepare, which is idempotent (exists is fine, the layout row
        # is created once and then compared).
        if not self._done:
            prepare(self._shards, *self._others)
            self._done = True


def prepare(tables: Sequence[Any], *others: Any) -> None:
    """Create missing tables and check (or record) the shard count."""
    from azure.core.exceptions import ResourceExistsError, ServiceRequestError, ServiceResponseError

    for table in {id(t): t for t in (*tables, *others)}.values():
        try:
            table.create_table()
        except ResourceExistsError:
            pass
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise Unavailable(f"Table storage did not answer ({type(exc).__name__}); try again shortly.") from exc
    try:
        tables_batch.submit(tables[0], [tables_batch.Operation("create", {**_LAYOUT, "shards": len(tables)})])
        return
    except tables_batch.TransactionFailed as exc:
        if not exc.conflict:
            raise
    where = f"PartitionKey eq '{_LAYOUT['PartitionKey']}' and RowKey eq '{_LAYOUT['RowKey']}'"
    found = next(iter(tables_query.query(tables[0], where)), {})
    if found.get("shards") != len(tables):
        raise LayoutMismatch(f"the tables were created with TABLE_SHARDS={found.get('shards')}, this app has "
                             f"{len(tables)}; set it back (moving rows between shards is a migration, "
                             "not a setting)")
