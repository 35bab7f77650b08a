"""HTTP/1.1 keep-alive plumbing for the sandbox: one thread per connection, one write per response."""
from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..httpio import read_body

log = logging.getLogger("devhost.sandbox")

# (method, target, headers with case-insensitive .get, body) → (status, headers, body)
Dispatch = Callable[[str, str, Any, bytes], tuple[int, dict[str, str], bytes]]
_REASONS = {s.value: s.phrase for s in HTTPStatus}


class Server(ThreadingHTTPServer):
    """Tracks open connections so that `close()` ends keep-alive sessions too, not only the listener."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, dispatch: Dispatch):
        self.dispatch = dispatch
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__((host, port), Handler)

    def close(self) -> None:
        """Stop accepting, then cut every open connection so no thread keeps serving a stopped sandbox."""
        self.shutdown()
        self.server_close()
        with self.connections_lock:
            open_now = list(self.connections)
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "closedloop-sandbox"
    # Without it, a small response after a small request waits on Nagle + delayed ACK (~40 ms a call).
    disable_nagle_algorithm = True
    server: Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _serve(self) -> None:
        body = read_body(self)
        try:
            status, headers, payload = self.server.dispatch(self.command, self.path, self.headers, body)
        except Exception:
            log.exception("%s %s crashed the sandbox", self.command, self.path)
            status, headers, payload = 500, {"Content-Type": "application/json"}, b'{"error":{"code":"SandboxBug"}}'
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", f"Server: {self.server_version}",
                 f"Content-Length: {len(payload)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if self.close_connection:
            lines.append("Connection: close")
        # Status line, headers and body in one write: one segment on the wire for the usual small answer.
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)
