"""Serve and feed the functions of `function_app.app` the way the Functions host does."""
from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func
from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest

from shared.adapters.local_bus import Envelope, LocalBus

from . import mcp
from .httpio import read_body
from .ncrontab import Schedule

log = logging.getLogger("devhost")
_SETTING = re.compile(r"^%([^%]+)%$")


def resolve(value: str, settings: Mapping[str, str]) -> str:
    """`%NAME%` binding expressions read the app setting NAME from `settings`, as the Functions host does."""
    m = _SETTING.match(value or "")
    if not m:
        return value
    if not settings.get(m.group(1)):
        raise KeyError(f"binding expression {value} names an app setting that is not set")
    return settings[m.group(1)]


def _route_regex(template: str) -> re.Pattern:
    # "opportunities/{id}" → named groups; constraints ("{id:guid}") and optional ("{id?}") accepted.
    out, pos = "", 0
    for m in re.finditer(r"\{([A-Za-z_]\w*)(?::[^}?]+)?(\?)?\}", template):
        out += re.escape(template[pos:m.start()])
        out += f"(?P<{m.group(1)}>[^/]+)" + ("?" if m.group(2) else "")
        pos = m.end()
    out += re.escape(template[pos:])
    return re.compile(f"^{out}/?$", re.IGNORECASE)


_indexed: dict[int, list] = {}


def functions_of(app: func.FunctionApp) -> list:
    """The app's functions, indexed once: like the worker, `get_functions` may run only once per app."""
    if id(app) not in _indexed:
        _indexed[id(app)] = app.get_functions()
    return _indexed[id(app)]


@dataclass
class HttpFunction:
    name: str
    methods: frozenset[str]
    pattern: re.Pattern
    arg: str
    call: Callable[..., Any]


class LocalHost:
    """Discovers the functions of a FunctionApp and runs them: HTTP, Service Bus queue and timer. `settings` are
    the app settings its `%NAME%` binding expressions (queue names, schedules) read."""

    def __init__(self, app: func.FunctionApp, bus: LocalBus, settings: Mapping[str, str], port: int = 7071,
                 host: str = "127.0.0.1", batch_size: int = 100):
        self.app, self.bus, self.port, self.host = app, bus, port, host
        self.settings = settings
        self.batch_size = batch_size  # like host.json's serviceBus maxMessageBatchSize
        self.http: list[HttpFunction] = []
        self.timers: list[tuple[str, Schedule, str, Callable[..., Any]]] = []
        self.queues: dict[str, str] = {}
        self.tools: dict[str, mcp.Tool] = {}
        self._server: ThreadingHTTPServer | None = None
        self._serving = False
        self.sandbox: Any = None  # the child-flow sandbox the boot started, if any
        self.on_stop: list[Callable[[], object]] = []  # run last by stop (the boot's services uninstalled)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._discover()

    def _discover(self) -> None:
        for fn in functions_of(self.app):
            trigger = fn.get_bindings_dict()["bindings"][0]
            name, call, kind = fn.get_function_name(), fn.get_user_function(), trigger["type"]
            if kind == "httpTrigger":
                methods = frozenset(str(getattr(m, "value", m)).upper() for m in trigger.get("methods") or
                                    ["GET", "POST", "PUT", "PATCH", "DELETE"])
                route = trigger.get("route") or name
                self.http.append(HttpFunction(name, methods, _route_regex(route), trigger["name"], call))
            elif kind == "serviceBusTrigger":
                queue = resolve(trigger["queueName"], self.settings)
                self.queues[name] = queue
                many = str(getattr(trigger.get("cardinality"), "value", trigger.get("cardinality"))).lower() == "many"
                self.bus.subscribe(queue, self._queue_handler(name, trigger["name"], call, many),
                                   self.batch_size if many else 1)
            elif kind == "timerTrigger":
                self.timers.append((name, Schedule(resolve(trigger["schedule"], self.settings)), trigger["name"], call))
            elif kind == "mcpToolTrigger":
                self.tools[trigger["toolName"]] = mcp.tool_of(trigger, call)
            else:
                log.warning("function %s has a %s trigger, which the local host does not run", name, kind)

    # -- queues --------------------------------------------------------------------------------------
    @staticmethod
    def _queue_handler(name: str, arg: str, call: Callable[..., Any], many: bool) -> Callable[[list[Envelope]], None]:
        def message(env: Envelope) -> ServiceBusMessage:
            return ServiceBusMessage(body=env.body, message_id=env.message_id, delivery_count=env.delivery_count,
                                     correlation_id=env.correlation_id, enqueued_time_utc=env.enqueued_at,
                                     content_type="application/json", application_properties={}, user_properties={})

        def handle(envs: list[Envelope]) -> None:
            if many:
                call(**{arg: [message(e) for e in envs]})
            else:
                for env in envs:
                    call(**{arg: message(env)})
        return handle

    # -- timers --------------------------------------------------------------------------------------
    def _run_timer(self, name: str, schedule: Schedule, arg: str, call: Callable[..., Any]) -> None:
        while not self._stop.is_set():
            now = datetime.now(UTC)
            due = schedule.next_after(now)
            if self._stop.wait((due - now).total_seconds()):
                return
            try:
                call(**{arg: TimerRequest(past_due=False)})
            except Exception:
                log.exception("timer function %s failed", name)

    def run_timer(self, name: str) -> None:
        """Run one timer function now, as its schedule would (for tests and `make demo`)."""
        for timer_name, _, arg, call in self.timers:
            if timer_name == name:
                call(**{arg: TimerRequest(past_due=False)})
                return
        raise KeyError(f"no timer function {name}")

    # -- HTTP ----------------------------------------------------------------------------------------
    def dispatch(self, method: str, target: str, headers: dict[str, str],
                 body: bytes) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request through the matching function, as (status, headers, body)."""
        parts = urlsplit(target)
        path = unquote(parts.path)
        if path == mcp.PATH and method == "POST":
            return mcp.handle(self.tools, {k.lower(): v for k, v in headers.items()}, body)
        if not path.startswith("/api/"):
            return _problem(404, "Not found", f"No route {path}; the API lives under /api/.")
        sub = path[len("/api/"):]
        allowed: set[str] = set()
        for fn in self.http:
            m = fn.pattern.match(sub)
            if not m:
                continue
            if method not in fn.methods:
                allowed |= fn.methods
                continue
            req = func.HttpRequest(method, f"http://{self.host}:{self.port}{target}", headers=headers,
                                   params=dict(parse_qsl(parts.query, keep_blank_values=True)),
                                   route_params={k: v for k, v in m.groupdict().items() if v is not None},
                                   body=body)
            resp: func.HttpResponse = fn.call(**{fn.arg: req})
            out = dict(resp.headers)
            if resp.mimetype:
                out["Content-Type"] = f"{resp.mimetype}; charset={resp.charset or 'utf-8'}"
            return resp.status_code, out, resp.get_body() or b""
        if allowed:
            status, h, b = _problem(405, "Method not allowed", f"{method} is not allowed on {path}.")
            h["Allow"] = ", ".join(sorted(allowed))
            return status, h, b
        return _problem(404, "Not found", f"No route {path}.")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "closedloop-devhost"

            def _serve(self) -> None:
                body = read_body(self)
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    status, out, payload = host.dispatch(self.command, self.path, headers, body)
                except Exception:
                    log.exception("%s %s crashed the function", self.command, self.path)
                    status, out, payload = _problem(500, "Internal server error", "The function raised.")
                self.send_response(status)
                for k, v in out.items():
                    if k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":  # a HEAD answer has headers only (RFC 9110 9.3.2)
                    self.wfile.write(payload)

            def __getattr__(self, name: str) -> Any:
                # Every method reaches dispatch, which answers 405 + Allow for one a route lacks (TRACE, QUERY,
                # OPTIONS...), as the Functions host does; the stdlib would answer 501 with an HTML page.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("%s %s", self.address_string(), fmt % args)

        return Handler

    def bind(self) -> LocalHost:
        """Take the port (port 0: a free one, known from now on) without serving yet."""
        if self._server is None:
            self._server = ThreadingHTTPServer((self.host, self.port), self._handler())
            self._server.daemon_threads = True
            self.port = self._server.server_address[1]
        return self

    def start(self, consume: bool = True, scheduled: bool = True) -> LocalHost:
        """Serve HTTP and run timers; with consume=False queue messages wait (a benchmark of ingest alone),
        with scheduled=False timers run only through run_timer."""
        self.bind()
        assert self._server is not None
        if consume:
            self.bus.start()
        self._serving = True
        self._spawn(self._server.serve_forever, "http")
        for t in self.timers if scheduled else ():
            self._spawn(functools.partial(self._run_timer, *t), f"timer-{t[0]}")
        log.info("serving %d HTTP, %d queue and %d timer function(s) on http://%s:%d/api",
                 len(self.http), len(self.queues), len(self.timers), self.host, self.port)
        return self

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            if self._serving:  # shutdown waits for serve_forever, which a bound-only server never ran
                self._server.shutdown()
            self._server.server_close()
        # A timer run in progress finishes before the services it may still be using are uninstalled.
        for t in self._threads:
            if t.name.startswith("timer-") and t is not threading.current_thread():
                t.join(30)
        self.bus.stop()
        if self.sandbox is not None:
            self.sandbox.stop()
        for undo in self.on_stop:
            undo()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"


def _problem(status: int, title: str, detail: str) -> tuple[int, dict[str, str], bytes]:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "errors": []}
    return status, {"Content-Type": "application/problem+json"}, json.dumps(body).encode()
