"""Child flows over HTTP (Power Automate "When an HTTP request is received", or the local sandbox).

Flow URLs carry a SAS signature, so they are secrets: the catalog names the app setting that holds
each URL (a Key Vault reference in Azure) and the URL is read here, at call time, from the settings
mapping the composition root passes (shared/bootstrap.py), never stored and never read from os.environ.

A 202's Location comes from whoever answered: it is polled only on an allowlisted origin (scheme, host,
port), else the app would send GETs wherever a flow, or whoever stands in for it, points (SSRF).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..domain.flowcall import FlowResponse
from ..ports import FlowNotConfigured, PollRefused

Origin = tuple[str, str, int]
_PORTS = {"https": 443, "http": 80}


def origin(url: str) -> Origin | None:
    """(scheme, host, port) of an absolute http(s) URL, parsed as urllib3 parses what it connects to; None for
    anything else: relative, user info (`https://allowed@evil`), backslashes, spaces or control characters."""
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    if not url or any(c == "\\" or ord(c) <= 0x20 or ord(c) == 0x7f for c in url):
        return None
    try:
        parts = parse_url(url)
    except LocationParseError:
        return None
    if parts.scheme not in _PORTS or not parts.host or parts.auth is not None:
        return None
    return parts.scheme, parts.host.lower().rstrip("."), _PORTS[parts.scheme] if parts.port is None else parts.port


def _listed(entry: str) -> Origin | None:
    """A FLOW_POLL_HOSTS entry: `host` or `host:port` (https), or a URL naming its scheme."""
    return origin(entry if "://" in entry else f"https://{entry}/")


def _flow_settings_in(environ: Mapping[str, str]) -> list[str]:
    # Without a catalog to ask (HttpFlows built by hand), the FLOW_* settings are the flows' URLs.
    return [name for name in environ if name.startswith("FLOW_") and name != "FLOW_POLL_HOSTS"]


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff


class HttpFlows:
    """Calls flows by app setting, each URL looked up in `environ` (the settings' mapping); polls a 202's Location
    only on `poll_hosts` (FLOW_POLL_HOSTS) or, when that is empty, on the origins of the URLs in `flow_settings()`
    (read at each check: the catalog may change). `https_only` (Azure) refuses plain http Locations whatever the
    list says."""

    def __init__(self, environ: Mapping[str, str], pool_size: int = 32,
                 poll_hosts: Iterable[str] = (), flow_settings: Callable[[], Iterable[str]] | None = None,
                 https_only: bool = False):
        import urllib3

        self._env = environ
        self._http = urllib3.PoolManager(maxsize=pool_size, retries=False)
        self._listed = frozenset(o for o in map(_listed, poll_hosts) if o is not None)
        self._flow_settings = flow_settings or (lambda: _flow_settings_in(self._env))
        self._https_only = https_only

    def poll_origins(self) -> frozenset[Origin]:
        """Where a Location may point: the listed hosts, else the configured flow URLs' own origins."""
        if self._listed:
            return self._listed
        urls = (self._env.get(name) or "" for name in self._flow_settings())
        return frozenset(o for o in map(origin, urls) if o is not None)

    def refusal(self, location: str) -> str | None:
        """Why `location` must not be polled, or None when it may; names the origin only (a URL may carry a SAS)."""
        where = origin(location)
        if where is None:
            return "the flow's Location is not an absolute http(s) URL without user info"
        shown = f"{where[0]}://{where[1]}:{where[2]}"
        if self._https_only and where[0] != "https":
            return f"the flow's Location {shown} is not https"
        if where not in self.poll_origins():
            return (f"the flow's Location {shown} is not a flow host (FLOW_POLL_HOSTS, else the configured flow "
                    f"URLs' hosts)")
        return None

    def url(self, setting: str) -> str:
        value = self._env.get(setting)
        if not value:
            raise FlowNotConfigured(f"app setting {setting} (the flow's URL) is not set")
        return value

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str],
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
        """POST the child-flow request (infra/flows, README "Child flows") to the flow named by `setting`."""
        return self._send("POST", self.url(setting), json.dumps(payload).encode(), {
            "Content-Type": "application/json", "Idempotency-Key": idempotency_key,
            "x-correlation-id": correlation_id}, timeout)

    def poll(self, location: str, correlation_id: str, timeout: float) -> FlowResponse:
        """GET a 202's Location; PollRefused, and nothing sent, when its origin is not on the allowlist."""
        refused = self.refusal(location)
        if refused:
            raise PollRefused(refused)
        return self._send("GET", location, None, {"x-correlation-id": correlation_id}, timeout)
