"""The sandbox: demo child flows behind signed URLs, with knobs for latency, failures, throttling and async."""
from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import random
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from . import flows
from .people import People
from .records import Record, Records, clone
from .server import Server

log = logging.getLogger("devhost.sandbox")
REPO = Path(__file__).resolve().parents[2]
JSON = {"Content-Type": "application/json"}
Response = tuple[int, dict[str, str], bytes]
KNOBS = {"latency_ms": 0, "failure_rate": 0.0, "reject_rate": 0.0, "throttle_rate": 0.0, "throttle_retry_after": 1,
         "async_actions": frozenset(), "async_polls": 1, "async_retry_after": 1, "breach_actions": frozenset()}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return status, {**JSON, **(headers or {})}, json.dumps(body, separators=(",", ":")).encode()


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    # Transport-level failures have Power Automate's error shape, not the flow contract's.
    return _json(status, {"error": {"code": code, "message": message}}, headers)


def _rejected(message: str) -> Response:
    return _json(400, {"status": "rejected", "message": message})


def load_catalog(catalog_dir: Path) -> tuple[dict[str, dict[int, dict]], dict[str, str]]:
    """Contracts per action id and version, and each action's flow setting name, from `actions/*.json`."""
    contracts: dict[str, dict[int, dict]] = {}
    settings: dict[str, str] = {}
    for path in sorted((catalog_dir / "actions").glob("*.json")):
        action = json.loads(path.read_text(encoding="utf-8"))
        contracts.setdefault(action["id"], {})[int(action["version"])] = action.get("dataContract") or {}
        if (action.get("flow") or {}).get("setting"):
            settings[action["flow"]["setting"]] = action["id"]
    return contracts, settings


class Sandbox:
    """Demo child flows over real HTTP. Knobs (see `configure`) may change while it runs."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", key: bytes | str | None = None,
                 catalog_dir: Path | None = None, owners: dict[str, Iterable[str]] | None = None,
                 seed: int | None = None, approver: dict[str, Any] | None = None, **knobs: Any):
        self.host, self.port = host, port
        self.key = key.encode() if isinstance(key, str) else key or secrets.token_bytes(32)
        self.contracts, self.flow_settings = load_catalog(Path(catalog_dir or REPO / "catalog"))
        unmodelled = sorted(set(self.contracts) - set(flows.FLOWS))
        if unmodelled:
            log.warning("no sandbox model for %s; their flows accept calls without a side effect", unmodelled)
        self.records = Records({k: tuple(v) for k, v in owners.items()} if owners else None)
        self._lock = self.records.lock  # one lock: every request's critical section is microseconds long
        self._initial = {"seed": seed, **knobs}
        self._knobs: dict[str, Any] = dict(KNOBS)
        self._server: Server | None = None
        # Derived from the URL key, so a SandboxProcess's signer knows it without asking the process.
        self.people = People(self.sign("/people/flow-key")[:32], approver)
        self.reset()

    # -- knobs and state -----------------------------------------------------------------------------
    def configure(self, **knobs: Any) -> Sandbox:
        """Change knobs: latency_ms, failure_rate (5xx), reject_rate (flow says failed), throttle_rate,
        throttle_retry_after, async_actions, async_polls, async_retry_after, breach_actions, seed."""
        unknown = set(knobs) - set(KNOBS) - {"seed"}
        if unknown:
            raise TypeError(f"unknown sandbox knob(s): {sorted(unknown)}")
        with self._lock:
            new = dict(self._knobs)
            for name, value in knobs.items():
                if name == "seed":
                    self._rng = random.Random(value)
                elif name in ("async_actions", "breach_actions"):
                    new[name] = frozenset([value] if isinstance(value, str) else value or ())
                elif name in ("failure_rate", "reject_rate", "throttle_rate"):
                    if not 0.0 <= float(value) <= 1.0:
                        raise ValueError(f"{name} must be within [0, 1]")
                    new[name] = float(value)
                elif name == "latency_ms":
                    new[name] = max(0.0, float(value))
                elif name == "async_retry_after" and value is None:
                    new[name] = None
                else:
                    new[name] = max(0, int(value))
            self._knobs = new  # swapped whole, so a request reads one consistent set without the lock
        return self

    def script(self, action_id: str, responses: Iterable[int | dict]) -> Sandbox:
        """Queue forced answers for the next calls of an action: 200 = normal handling, 202 = normal but
        asynchronous, 429 = throttled, other codes = that error; a dict {"status", "body", "headers"} verbatim."""
        with self._lock:
            self._scripts.setdefault(action_id, deque()).extend(responses)
        return self

    def reset(self) -> None:
        """Back to a fresh sandbox (records, counters, idempotency, scripts, knobs); same port and key."""
        with self._lock:
            self.records.reset()
            self.effects: Counter = Counter()
            self.requests: list[tuple[str, str | None, int]] = []
            self._replies: dict[tuple[str, str], Response | str] = {}
            self._ops: dict[str, dict[str, Any]] = {}
            self._op_ids = itertools.count(1)
            self._scripts: dict[str, deque] = {}
            self._knobs = dict(KNOBS)
            self._rng = random.Random()
            self.people.received.clear()
            self.people.answers.clear()
            self.configure(**self._initial)

    def stats(self) -> dict[str, Any]:
        """Side effects applied per action, and answers given per HTTP status (also at GET /stats, signed)."""
        with self._lock:
            codes = Counter(str(code) for _, _, code in self.requests)
            return {"effects": dict(self.effects), "responses": dict(codes)}

    def stats_url(self) -> str:
        return f"{self.base_url}/stats?sig={self.sign('/stats')}"

    def received(self) -> list[dict[str, Any]]:
        """What the approval flow and the webhook were sent, oldest first: {channel, body} (also at GET
        /people/received, signed): the demo's person reads a card's token there, as a person reads Teams."""
        with self.people._lock:
            return [{"channel": channel, "body": body} for channel, body in self.people.received]

    def received_url(self) -> str:
        return f"{self.base_url}/people/received?sig={self.sign('/people/received')}"

    def record(self, kind: str, record_id: str) -> Record | None:
        """A copy of one record ("invoice", "lead", "order", "case", ...), or None."""
        with self._lock:
            return clone(self.records.get(kind, record_id))

    def find(self, kind: str, /, **match: Any) -> list[Record]:
        """Copies of the records whose fields equal `match`, oldest first."""
        with self._lock:
            return [clone(r) for r in self.records.find(kind, **match)]

    def put(self, kind: str, record: Record) -> None:
        """Seed a record (it must carry an id), e.g. a lead that already has an owner."""
        self.records.put(kind, clone(record))

    # -- URLs ------------------------------------------------------------------------------------------
    def sign(self, path: str) -> str:
        return hmac.new(self.key, path.encode(), hashlib.sha256).hexdigest()

    def flow_url(self, action_id: str) -> str:
        """The signed URL of an action's flow (or of `sor.read`)."""
        path = f"/flows/{action_id}"
        return f"{self.base_url}{path}?sig={self.sign(path)}"

    def people_settings(self) -> dict[str, str]:
        """App settings that send cards to the sandbox's approval flow (which answers as `approver`)."""
        path = "/people/approvals"
        return {"APPROVAL_FLOW_URL": f"{self.base_url}{path}?sig={self.sign(path)}",
                "APPROVAL_FLOW_KEY": self.people.flow_key}

    def webhook_url(self) -> str:
        path = "/teams/webhook"
        return f"{self.base_url}{path}?sig={self.sign(path)}"

    def settings(self) -> dict[str, str]:
        """App settings naming every catalog flow (`FLOW_LEADS_REASSIGN`, ...) plus `FLOW_READ_RECORD`."""
        out = {setting: self.flow_url(action_id) for setting, action_id in self.flow_settings.items()}
        out["FLOW_READ_RECORD"] = self.flow_url(flows.READ_ACTION)
        return out

    @property
    def base_url(self) -> str:
        if self._server is None and not self.port:
            raise RuntimeError("the sandbox is not started (and has no fixed port)")
        return f"http://{self.host}:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> Sandbox:
        self._server = Server(self.host, self.port, self.handle)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="sandbox-http", daemon=True).start()
        log.info("sandbox serving %d flow(s) on %s", len(self.flow_settings) + 1, self.base_url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    __enter__ = start

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- requests --------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: Any, body: bytes) -> Response:
        """One HTTP request, as (status, headers, body); `headers` needs only a case-insensitive `.get`."""
        parts = urlsplit(target)
        path = unquote(parts.path)
        kind, _, name = path.strip("/").partition("/")
        key = headers.get("Idempotency-Key")
        sig = dict(parse_qsl(parts.query)).get("sig", "")
        if kind == "stats" and hmac.compare_digest(sig, self.sign(path)):
            return 200, {"Content-Type": "application/json"}, json.dumps(self.stats()).encode()
        if path == "/people/received" and method == "GET" and hmac.compare_digest(sig, self.sign(path)):
            return 200, {"Content-Type": "application/json"}, json.dumps(self.received(), default=str).encode()
        if kind in ("teams", "people") and method == "POST" and hmac.compare_digest(sig, self.sign(path)):
            status, answer = self.people.handle("teams" if kind == "teams" else "approvals", body)
            return _json(status, answer)
        if kind not in ("flows", "operations") or not name:
            resp = _error(404, "NotFound", f"no route {path}")
        elif not hmac.compare_digest(sig, self.sign(path)):
            resp = _error(401, "DirectApiAuthorizationRequired", "the sig of the URL is missing or wrong")
        elif kind == "operations":
            resp = self._poll(name) if method == "GET" else _error(405, "MethodNotAllowed", "poll with GET")
            op = self._ops.get(name)
            name, key = (op["action"], op["key"]) if op else (name, key)
        elif method != "POST" and not (method == "GET" and name == flows.READ_ACTION):
            resp = _error(405, "MethodNotAllowed", f"{method} on a flow")
        elif name != flows.READ_ACTION and name not in self.contracts:
            resp = _error(404, "FlowNotFound", f"no flow for action {name}")
        else:
            resp, key = self._flow(name, method, parts.query, headers, body)
        correlation = headers.get("x-correlation-id")
        if correlation:
            resp = resp[0], {**resp[1], "x-correlation-id": correlation}, resp[2]
        with self._lock:
            self.requests.append((name, key, resp[0]))
        return resp

    def _flow(self, action_id: str, method: str, query: str, headers: Any,
              raw: bytes) -> tuple[Response, str | None]:
        knobs = self._knobs
        if knobs["latency_ms"]:
            time.sleep(knobs["latency_ms"] / 1000)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return _rejected("the body is not JSON"), headers.get("Idempotency-Key")
        if not isinstance(body, dict):
            return _rejected("the body must be a JSON object"), headers.get("Idempotency-Key")
        key = headers.get("Idempotency-Key") or body.get("idempotencyKey")
        params = body.get("parameters", {})
        if action_id == flows.READ_ACTION:
            if method == "GET":
                params = {k: v for k, v in parse_qsl(query) if k != "sig"}
            forced, _ = self._forced(action_id, knobs, rates=False)
            return forced or _json(*flows.read(self.records, params if isinstance(params, dict) else {})), key
        if not key:
            return _rejected("an Idempotency-Key header (or idempotencyKey in the body) is required"), key
        forced, run_async = self._forced(action_id, knobs, rates=True)
        if forced:
            return forced, key
        with self._lock:
            stored = self._replies.get((action_id, key))
        if stored is not None:
            return self._replay(stored), key
        invalid = self._invalid(action_id, body, params)
        if invalid:
            return _rejected(invalid), key
        breach = action_id in knobs["breach_actions"]
        with self._lock:
            stored = self._replies.get((action_id, key))  # a concurrent twin may have won the race
            if stored is not None:
                return self._replay(stored), key
            if run_async or action_id in knobs["async_actions"]:
                op_id = f"op-{next(self._op_ids)}"
                self._ops[op_id] = {"action": action_id, "key": key, "params": params, "breach": breach,
                                    "polls": 0, "due": max(1, knobs["async_polls"]), "result": None}
                self._replies[(action_id, key)] = op_id
                return self._running(op_id), key
            resp = self._execute(action_id, params, breach)
            self._replies[(action_id, key)] = resp
            return resp, key

    def _forced(self, action_id: str, knobs: dict, rates: bool) -> tuple[Response | None, bool]:
        """A scripted or randomly injected answer for this call, if any, and whether to run it async."""
        with self._lock:
            queue = self._scripts.get(action_id)
            scripted = queue.popleft() if queue else None
            throttled = rates and knobs["throttle_rate"] and self._rng.random() < knobs["throttle_rate"]
            failed = rates and knobs["failure_rate"] and self._rng.random() < knobs["failure_rate"]
            # A business failure: the flow ran and says no (permanent), unlike failure_rate's 5xx.
            refused = rates and knobs["reject_rate"] and self._rng.random() < knobs["reject_rate"]
        if scripted is None and refused and not throttled and not failed:
            return _json(200, {"status": "failed", "message": "injected: the system of record refused the change",
                               "evidence": {"recordIds": [], "before": {}, "after": {}}}), False
        if isinstance(scripted, dict):
            return _json(scripted.get("status", 200), scripted.get("body", {}), scripted.get("headers")), False
        if scripted in (None, 200, 202):
            if scripted is None and throttled:
                scripted = 429
            elif scripted is None and failed:
                scripted = 500
            else:
                return None, scripted == 202
        if scripted == 429:
            retry = str(knobs["throttle_retry_after"])
            return _error(429, "WorkflowRequestsThrottled", f"retry after {retry}s", {"Retry-After": retry}), False
        return _error(int(scripted), "SandboxInjected", f"injected {scripted}; nothing was applied"), False

    def _invalid(self, action_id: str, body: dict, params: Any) -> str | None:
        action = body.get("action") or {}
        if not isinstance(action, dict) or action.get("id", action_id) != action_id:
            return f"action.id does not match the flow {action_id}"
        versions = self.contracts[action_id]
        version = action.get("version", max(versions))
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        if version not in versions:
            return f"{action_id} has no version {version}"
        if not isinstance(params, dict):
            return "parameters must be an object"
        return "; ".join(flows.problems(versions[version], params)) or None

    def _execute(self, action_id: str, params: dict, breach: bool) -> Response:
        # Callers hold the lock: check-and-apply is atomic, so one key never applies twice.
        status, touched, message = flows.FLOWS.get(action_id, flows.unmodelled)(self.records, params, breach)
        if status == "succeeded":
            self.effects[action_id] += 1
        return _json(200, {"status": status, "evidence": touched.evidence(), "message": message})

    def _replay(self, stored: Response | str) -> Response:
        if isinstance(stored, str):
            op = self._ops[stored]
            return op["result"] or self._running(stored)
        return stored[0], {**stored[1], "x-idempotent-replay": "true"}, stored[2]

    def _running(self, op_id: str) -> Response:
        path = f"/operations/{op_id}"
        location = f"{self.base_url}{path}?sig={self.sign(path)}"
        retry = self._knobs["async_retry_after"]  # None: no Retry-After, the caller picks its own pace
        return _json(202, {"status": "running", "message": f"{op_id} is running"},
                     {"Location": location, **({"Retry-After": str(retry)} if retry is not None else {})})

    def _poll(self, op_id: str) -> Response:
        with self._lock:
            op = self._ops.get(op_id)
            if op is None:
                return _error(404, "OperationNotFound", f"no operation {op_id}")
            op["polls"] += 1
            if op["result"] is None and op["polls"] >= op["due"]:
                op["result"] = self._execute(op["action"], op["params"], op["breach"])
            return op["result"] or self._running(op_id)
