"""Boot the local host: its settings in a dict, logging, the in-process bus and sandbox flows, services built
from those and installed, then the functions of function_app served."""
from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.logs import JsonFormatter
from shared.settings import Settings

from .host import LocalHost

if TYPE_CHECKING:
    from .sandbox import Sandbox
    from .sandbox.process import SandboxProcess

REPO = Path(__file__).resolve().parent.parent


# Azurite re-indexes a whole table on every replace: eight tables of ~9,000 rows instead of one of 75,000 took
# the 10,000-finding e2e benchmark from 154 to 227 opportunities/s (README "Partitions spread over tables").
# Azure needs no shards: there the default, 1, holds.
AZURITE_SHARDS = "8"


def on_azurite(values: Mapping[str, str]) -> bool:
    """Whether these settings put the store's tables on Azurite (the development storage account)."""
    connection = Settings.from_env(values).tables_connection.lower()
    return connection.startswith("usedevelopmentstorage=true") or "accountname=devstoreaccount1" in connection


def load_settings(overrides: Mapping[str, str] | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The local host's app settings: local.settings.json (else the example), under the process environment
    (`environ`, read once here), under `overrides`; as `func start` reads them, into a dict of its own."""
    path = REPO / "local.settings.json"
    if not path.exists():
        path = REPO / "local.settings.example.json"
    values = {key: str(value) for key, value in json.loads(path.read_text()).get("Values", {}).items()
              if value != ""}
    values.update(os.environ if environ is None else environ)
    # The local host is the one place local trust is switched on (an empty name elsewhere means prod).
    values.setdefault("CLOSEDLOOP_ENV", "local")
    values["BUS"] = "local"
    values.update(overrides or {})
    if not values.get("TABLE_SHARDS") and on_azurite(values):
        values["TABLE_SHARDS"] = AZURITE_SHARDS
    return values


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The SDKs log every HTTP request at INFO; that drowns the app's own lines.
    for noisy in ("azure", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def boot(port: int = 7071, overrides: Mapping[str, str] | None = None, workers_per_queue: int = 4,
         sandbox: str | None = "thread", sandbox_knobs: Mapping[str, Any] | None = None,
         consume: bool = True, approvals_via_sandbox: bool = False, scheduled: bool = True) -> LocalHost:
    """Start serving function_app on `port` (0 picks a free one) with a fresh in-process bus, and the sandbox
    child flows for every flow setting that local.settings.json does not point elsewhere.

    sandbox: "thread" (in this process: tests read its counters), "process" (its own process, as real
    flows never share the app's CPU), or None. approvals_via_sandbox: cards go to the sandbox's approval
    flow, which answers as the `approver` of sandbox_knobs. scheduled=False: timers run only when asked
    (tests), so a wall-clock boundary cannot fire the sweep in the middle of a test."""
    from shared import runtime
    from shared.adapters.local_bus import LocalBus
    from shared.bootstrap import bootstrap

    values = load_settings(overrides)
    flows: Sandbox | SandboxProcess | None = None
    if sandbox == "process":
        from .sandbox.process import SandboxProcess

        flows = SandboxProcess(**dict(sandbox_knobs or {})).start()
    elif sandbox:
        from .sandbox import Sandbox

        flows = Sandbox(**dict(sandbox_knobs or {})).start()
    host: LocalHost | None = None
    try:
        if flows is not None:
            wanted = {**flows.settings(), **(flows.people_settings() if approvals_via_sandbox else {})}
            values.update({name: url for name, url in wanted.items() if not values.get(name)})
        bus = LocalBus(workers_per_queue=workers_per_queue)
        import function_app

        host = LocalHost(function_app.app, bus, values, port=port).bind()
        # Approval links on cards point at this host: its port is known once bound.
        values["PUBLIC_BASE_URL"] = values.get("PUBLIC_BASE_URL") or host.base_url.removesuffix("/api")
        services = bootstrap(Settings.from_env(values), bus=bus)
    except BaseException:
        if host is not None:
            host.stop()
        if flows is not None:
            flows.stop()  # a sandbox process must not outlive a failed boot
        raise
    host.sandbox = flows
    previous = runtime.install(services)
    host.on_stop.append(lambda: runtime.reset(previous))  # a host booted inside another gives the outer one back
    return host.start(consume, scheduled)


def settle(server: LocalHost, timeout: float = 120.0) -> None:
    """Wait until the host's bus is idle and nothing is scheduled within the next 30 s (a retry after a 429
    is waited for; a rate-limit slot tomorrow is not)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        if not server.bus.wait_idle(max(0.1, deadline - time.monotonic()), include_scheduled=False):
            raise TimeoutError(f"the pipeline did not settle in {timeout:.0f}s")
        soon = server.bus.next_due()
        if soon is None or soon > 30:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"a message is still scheduled {soon:.1f}s out")
        time.sleep(0.1)
