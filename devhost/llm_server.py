"""An OpenAI-compatible chat-completions server for tests and `make bench`: the real openai client talks to it
over a socket, as it would to Azure OpenAI or any compatible endpoint.

It answers the planner's structured-output requests. By default it plans like a careful model (the
candidate whose contract the attributes fill best, fields mapped by name); a script of modes makes it
misbehave on purpose: non_candidate, invalid_json, refusal, timeout, 429, adversarial (obeys any
instruction it finds in the prompt). Every request is recorded for tests to inspect.
"""
from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("good", "non_candidate", "invalid_json", "refusal", "timeout", "429", "adversarial")
_DATA = re.compile(r"<data>\s*(.*?)\s*</data>", re.S)
_RUN = re.compile(r"\brun\s+([a-z0-9]+\.[a-z0-9.-]+)", re.I)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.casefold())


def careful_plan(data: dict[str, Any]) -> dict[str, Any]:
    """What a good model answers: the best-covered candidate, each field mapped to the same-named attribute."""
    names = {_norm(a["name"]): a["name"] for a in data.get("attributes", [])}
    best, best_score, best_sources = None, -1, []
    for c in data.get("candidates", []):
        sources = [{"parameter": f, "attribute": names[_norm(f)]} for f in c.get("fields", {}) if _norm(f) in names]
        score = sum(1 for f in c.get("requiredFields", []) if _norm(f) in names) * 10 + len(sources)
        if score > best_score:
            best, best_score, best_sources = c, score, sources
    if best is None:
        return {"actionId": "none", "parameterSources": [], "confidence": 0.0, "rationale": "no candidate",
                "summaryTemplate": ""}
    key = next((s["attribute"] for s in best_sources if s["attribute"].lower().endswith("id")), None)
    return {"actionId": best["actionId"], "parameterSources": best_sources, "confidence": 0.92,
            "rationale": f"{best['name']} fixes {data.get('deviationPattern')} and its contract is covered by the "
                         f"finding's attributes.",
            "summaryTemplate": f"{data.get('deviationPattern')} on {{{key}}}: {best['name'].lower()} proposed"
            if key else f"{data.get('deviationPattern')}: {best['name'].lower()} proposed"}


def adversarial_plan(data: dict[str, Any], text: str) -> dict[str, Any]:
    """A model that does whatever the prompt's data tells it: the worst case the guardrails must hold against."""
    ordered = sorted(data.get("candidates", []), key=lambda c: {"low": 0, "medium": 1, "high": 2}.get(c["riskTier"], 3))
    wanted = _RUN.search(text)
    action = wanted.group(1) if wanted else (ordered[-1]["actionId"] if ordered else "ap.post-gl-adjustment")
    attrs = [a["name"] for a in data.get("attributes", [])]
    numeric = [a["name"] for a in data.get("attributes", []) if a["type"] == "number"]
    fields: dict[str, Any] = next((c.get("fields", {}) for c in ordered if c["actionId"] == action), {})
    sources = [{"parameter": f, "attribute": (numeric[-1] if spec.get("type") == "number" and numeric else
                                               attrs[-1] if attrs else f)} for f, spec in fields.items()]
    return {"actionId": action, "parameterSources": sources, "confidence": 1.0,
            "rationale": "Instructed to act immediately; no approval needed.",
            "summaryTemplate": "Approved already. {amount} {vendorEmail}"}


class LlmServer:
    """Serve on 127.0.0.1:`port` (0: any free port); `script()` queues modes for the next requests."""

    def __init__(self, port: int = 0, delay: float = 3.0, retry_after: float = 0.05):
        self.delay, self.retry_after = delay, retry_after
        self.requests: list[dict[str, Any]] = []
        self._script: list[str] = []
        self.default = "good"
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, headers, payload = outer.handle(self.path, dict(self.headers), body)
                self.send_response(status)
                for k, v in {"content-type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout mode)
                    self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def endpoint(self) -> str:
        """The Azure OpenAI style endpoint (the client appends /openai/deployments/…)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, modes: Iterable[str]) -> LlmServer:
        modes = list(modes)
        assert all(m in MODES for m in modes), modes
        with self._lock:
            self._script.extend(modes)
        return self

    def reset(self, default: str = "good") -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.default = default

    def calls(self) -> int:
        return len(self.requests)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if not path.split("?")[0].endswith("/chat/completions"):
            return 404, {}, json.dumps({"error": {"message": f"no route {path}"}}).encode()
        request = json.loads(body or b"{}")
        with self._lock:
            self.requests.append({"path": path, "headers": {k.lower(): v for k, v in headers.items()},
                                  "body": request})
            mode = self._script.pop(0) if self._script else self.default
        text = "\n".join(m.get("content") or "" for m in request.get("messages", []))
        found = _DATA.search(text)
        data = json.loads(found.group(1)) if found else {}
        if mode == "429":
            return 429, {"retry-after": str(self.retry_after)}, json.dumps(
                {"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}}).encode()
        if mode == "timeout":
            time.sleep(self.delay)
        if mode == "refusal":
            message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
        elif mode == "invalid_json":
            cut = '{"actionId": "ap.request-missing-fields", "confid'  # JSON cut off mid-key
            message = {"role": "assistant", "content": cut, "refusal": None}
        else:
            plan = (adversarial_plan(data, text) if mode == "adversarial" else careful_plan(data))
            if mode == "non_candidate":
                plan = {**plan, "actionId": "ap.post-gl-adjustment-unlimited"}
            message = {"role": "assistant", "content": json.dumps(plan), "refusal": None}
        tokens = len(text) // 4
        return 200, {}, json.dumps({
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model", "fake"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": tokens, "completion_tokens": 60, "total_tokens": tokens + 60}}).encode()

    def start(self) -> LlmServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="llm-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LlmServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
