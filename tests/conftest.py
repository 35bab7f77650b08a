"""Shared fixtures: a real Azurite for the session, and the local host serving function_app over HTTP."""
from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devhost.azurite import Azurite, free_port  # noqa: E402


@pytest.fixture(scope="session")
def azurite():
    """Azurite's table service, in memory, on a free port; stopped when the session ends."""
    with Azurite(free_port(), location=None) as server:
        yield server


@pytest.fixture
def table_client(azurite):
    """A fresh table for one test."""
    from azure.data.tables import TableClient

    client = TableClient.from_connection_string(azurite.connection_string, table_name=f"t{uuid.uuid4().hex[:16]}")
    client.create_table()
    yield client
    client.delete_table()


@pytest.fixture
def shard_clients(azurite):
    """Three fresh tables, for a store sharded over them."""
    from azure.data.tables import TableClient

    name = f"t{uuid.uuid4().hex[:16]}"
    clients = [TableClient.from_connection_string(azurite.connection_string, table_name=f"{name}{i}")
               for i in range(3)]
    yield clients
    for client in clients:
        client.delete_table()


@contextlib.contextmanager
def hosted(azurite, boot_kwargs=None, **settings):
    """A local host for a block, on fresh tables, with cards in a folder of its own; its settings are its own
    (nothing in os.environ changes), and the app's services are as before once it stops."""
    from devhost.boot import boot

    outbox = tempfile.mkdtemp(prefix="closedloop-outbox-")
    overrides = {"TABLES_CONNECTION": azurite.connection_string, "TABLE_PREFIX": f"t{uuid.uuid4().hex[:12]}",
                 "INGEST_API_KEY": "", "OUTBOX_DIR": outbox, **settings}
    try:
        # Timers run when a test asks (run_timer): the 5-minute sweep must not fire because a test crossed :05.
        server = boot(0, overrides, **{"scheduled": False, **(boot_kwargs or {})})
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(outbox, ignore_errors=True)


@pytest.fixture(scope="module")
def host(azurite):
    with hosted(azurite) as server:
        yield server


@pytest.fixture(scope="module")
def api(host):
    """A requests session bound to the host's /api base URL."""
    import requests

    class Api(requests.Session):
        def request(self, method, url, *args, **kwargs):
            return super().request(method, host.base_url + url, *args, **kwargs)

    with Api() as session:
        yield session


@pytest.fixture(scope="module")
def sandbox():
    """The child-flow sandbox over real HTTP, in this process so tests can read its counters."""
    from devhost.sandbox import Sandbox

    with Sandbox(seed=1) as server:
        yield server


@pytest.fixture
def svc(sandbox):
    """Services on the in-memory store and recording bus (no holdout), calling the sandbox's flows."""
    from shared.adapters.http_flows import HttpFlows
    from tests.factories import memory_services

    sandbox.reset()
    return memory_services(flows=HttpFlows(sandbox.settings()))


def settle(server, timeout: float = 120.0) -> None:
    """Wait until the host's bus is idle and nothing is scheduled within the next 30 s (devhost.boot.settle)."""
    from devhost.boot import settle as settled

    settled(server, timeout)
