"""Child flows over HTTP (Power Automate "When an HTTP request is received", or the local sandbox).

Flow URLs carry a SAS signature, so they are secrets: the catalog names the app setting that holds
each URL (a Key Vault reference in Azure) and the URL is read here, at call time, never stored.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping, Optional

from ..domain.flowcall import FlowResponse


class FlowNotConfigured(Exception):
    pass


def _retry_after(headers: Mapping[str, str]) -> Optional[float]:
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff


class HttpFlows:
    def __init__(self, environ: Optional[Mapping[str, str]] = None, pool_size: int = 32):
        import urllib3

        self._env = os.environ if environ is None else environ
        self._http = urllib3.PoolManager(maxsize=pool_size, retries=False)

    def url(self, setting: str) -> str:
        value = self._env.get(setting)
        if not value:
            raise FlowNotConfigured(f"app setting {setting} (the flow's URL) is not set")
        return value

    def _send(self, method: str, url: str, body: Optional[bytes], headers: dict[str, str],
              timeout: float) -> FlowResponse:
        import urllib3

        try:
            r = self._http.request(method, url, body=body, headers=headers, timeout=urllib3.Timeout(total=timeout),
                                   redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            return FlowResponse(0, error=type(exc).__name__)
        try:
            parsed: Any = json.loads(r.data) if r.data else None
        except ValueError:
            parsed = None
        return FlowResponse(r.status, parsed if isinstance(parsed, dict) else None, _retry_after(r.headers),
                            r.headers.get("Location"))

    def call(self, setting: str, payload: dict[str, Any], idempotency_key: str, correlation_id: str,
             timeout: float) -> FlowResponse:
        """POST the ARCHITECTURE §5 request to the flow named by `setting`."""
        return self._send("POST", self.url(setting), json.dumps(payload).encode(), {
            "Content-Type": "application/json", "Idempotency-Key": idempotency_key,
            "x-correlation-id": correlation_id}, timeout)

    def poll(self, location: str, correlation_id: str, timeout: float) -> FlowResponse:
        return self._send("GET", location, None, {"x-correlation-id": correlation_id}, timeout)
