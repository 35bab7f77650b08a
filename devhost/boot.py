"""Boot the local host: settings, logging, the in-process bus, then the functions of function_app."""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Mapping, Optional

from shared.logs import JsonFormatter

from .host import LocalHost

REPO = Path(__file__).resolve().parent.parent


def load_settings(overrides: Optional[Mapping[str, str]] = None) -> None:
    """local.settings.json (else the example) into the environment, as `func start` does; the real
    environment and `overrides` win."""
    path = REPO / "local.settings.json"
    if not path.exists():
        path = REPO / "local.settings.example.json"
    values = json.loads(path.read_text()).get("Values", {})
    for key, value in values.items():
        if value != "":
            os.environ.setdefault(key, str(value))
    # The local host is the one place local trust is switched on (an empty name elsewhere means prod).
    os.environ.setdefault("CLOSEDLOOP_ENV", "local")
    os.environ["BUS"] = "local"
    os.environ.update(overrides or {})


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The SDKs log every HTTP request at INFO; that drowns the app's own lines.
    for noisy in ("azure", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def boot(port: int = 7071, overrides: Optional[Mapping[str, str]] = None, workers_per_queue: int = 4,
         sandbox: Optional[str] = "thread", sandbox_knobs: Optional[Mapping[str, object]] = None,
         consume: bool = True, approvals_via_sandbox: bool = False, scheduled: bool = True) -> LocalHost:
    """Start serving function_app on `port` (0 picks a free one) with a fresh in-process bus, and the sandbox
    child flows for every flow setting that local.settings.json does not point elsewhere.

    sandbox: "thread" (in this process: tests read its counters), "process" (its own process, as real
    flows never share the app's CPU), or None. approvals_via_sandbox: cards go to the sandbox's approval
    flow, which answers as the `approver` of sandbox_knobs. scheduled=False: timers run only when asked
    (tests), so a wall-clock boundary cannot fire the sweep in the middle of a test."""
    from shared import runtime
    from shared.adapters.local_bus import LocalBus

    load_settings(overrides)
    flows = None
    if sandbox == "process":
        from .sandbox.process import SandboxProcess

        flows = SandboxProcess(**dict(sandbox_knobs or {})).start()
    elif sandbox:
        from .sandbox import Sandbox

        flows = Sandbox(**dict(sandbox_knobs or {})).start()
    pointed: list[str] = []
    try:
        if flows is not None:
            wanted = {**flows.settings(), **(flows.people_settings() if approvals_via_sandbox else {})}
            for name, url in wanted.items():
                if not os.environ.get(name):
                    os.environ[name] = url
                    pointed.append(name)
        runtime.reset()
        bus = LocalBus(workers_per_queue=workers_per_queue)
        runtime.use_local_bus(bus)
        import function_app

        host = LocalHost(function_app.app, bus, port=port)
    except BaseException:
        if flows is not None:
            flows.stop()  # a sandbox process must not outlive a failed boot
        raise
    host.sandbox = flows
    host.pointed_settings = pointed  # unset again on stop, so a later boot in this process points afresh
    host.start(consume, scheduled)
    if not os.environ.get("PUBLIC_BASE_URL"):  # approval links on cards point at this host (its port is known now)
        os.environ["PUBLIC_BASE_URL"] = host.base_url.removesuffix("/api")
        pointed.append("PUBLIC_BASE_URL")
        runtime.reset()  # settings are read when services are first built: build them with the URL
    return host
