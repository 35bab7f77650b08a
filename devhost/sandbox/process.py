"""The sandbox in a process of its own: what the local host uses, since real flows never share its CPU."""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from typing import Any

from ..azurite import free_port, port_open, stop_process
from .core import REPO, Sandbox


class SandboxProcess:
    """Starts `python -m devhost.sandbox`; `settings()` and `stats()` as the in-process Sandbox has them."""

    def __init__(self, **knobs: Any):
        self.knobs = {k: sorted(v) if isinstance(v, set) else v for k, v in knobs.items()}
        self.port = free_port()
        self.key = secrets.token_hex(16)
        self._signer = Sandbox(port=self.port, key=self.key)  # never started: it only signs the URLs
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> SandboxProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devhost.sandbox", "--port", str(self.port), "--key", self.key,
             "--knobs", json.dumps(self.knobs)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sandbox flows did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    @property
    def base_url(self) -> str:
        return self._signer.base_url

    def settings(self) -> dict[str, str]:
        return self._signer.settings()

    def people_settings(self) -> dict[str, str]:
        return self._signer.people_settings()

    def stats(self) -> dict[str, Any]:
        import urllib.request
        with urllib.request.urlopen(self._signer.stats_url(), timeout=10) as r:
            return json.loads(r.read())

    def received(self) -> list[dict[str, Any]]:
        import urllib.request
        with urllib.request.urlopen(self._signer.received_url(), timeout=10) as r:
            return json.loads(r.read())
