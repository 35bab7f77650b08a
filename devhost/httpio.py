"""Reading a request body off a stdlib HTTP handler, for the local host and the sandbox alike."""
from __future__ import annotations

from http.server import BaseHTTPRequestHandler


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The body by Content-Length, or decoded from chunked transfer encoding."""
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = handler.headers.get("Content-Length") or ""
    return handler.rfile.read(int(length)) if length.isdigit() and length != "0" else b""
