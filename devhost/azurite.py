"""Start Azurite (the npm package in node_modules) when nothing answers on its port, stop it after."""
from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
log = logging.getLogger("devhost.azurite")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def stop_process(process: subprocess.Popen | None, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not gone after `grace` seconds."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connection_string(table_port: int) -> str:
    from shared.adapters.tables.shards import AZURITE_ACCOUNT_KEY
    return ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_ACCOUNT_KEY};TableEndpoint=http://127.0.0.1:{table_port}/devstoreaccount1;")


class Azurite:
    """Azurite's table service. `location=None` keeps data in memory (tests); else under that folder."""

    def __init__(self, table_port: int = 10002, location: Path | None = None):
        self.table_port = table_port
        self.location = location
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> Azurite:
        if port_open(self.table_port):
            log.info("Azurite already answers on port %d; using it", self.table_port)
            return self
        binary = REPO / "node_modules" / ".bin" / "azurite-table"
        if not binary.exists():
            raise RuntimeError("Azurite is not installed: run `npm ci` (make does it for you)")
        args = [str(binary), "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
                "--disableTelemetry", "--skipApiVersionCheck", "--loose"]
        if self.location is None:
            args.append("--inMemoryPersistence")
        else:
            self.location.mkdir(parents=True, exist_ok=True)
            args += ["--location", str(self.location)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while not port_open(self.table_port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                self.stop()
                raise RuntimeError(f"Azurite did not start on port {self.table_port}: {err[-500:]}")
            time.sleep(0.1)
        log.info("Azurite started on port %d (%s)", self.table_port,
                 "in memory" if self.location is None else self.location)
        return self

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.table_port)

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
