"""The people side of the sandbox: a Teams Workflows webhook that keeps the cards it receives, and an
approval flow that plays a person answering ("Post adaptive card and wait for a response").

The approval flow answers approve requests as a configured approver after a short delay, POSTing the
decision to the app's callback URL signed with the shared flow key, as the real flow would. Its rule:
approve when every numeric parameter is at most `approve_up_to`, else reject.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.request
from typing import Any

log = logging.getLogger("devhost.sandbox")


class People:
    def __init__(self, flow_key: str, approver: dict[str, Any] | None = None, approve_up_to: float = 500.0,
                 delay_ms: int = 50):
        self.flow_key = flow_key
        self.approver = approver
        self.approve_up_to = approve_up_to
        self.delay_ms = delay_ms
        self.received: list[tuple[str, dict[str, Any]]] = []  # (channel, body) in arrival order
        self.answers: list[tuple[str, int]] = []  # (decision, HTTP status the app gave it)
        self._lock = threading.Lock()

    def handle(self, channel: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            doc = json.loads(body)
        except ValueError:
            return 400, {"error": {"code": "InvalidJson", "message": "the body is not JSON"}}
        with self._lock:
            self.received.append((channel, doc))
        if channel == "approvals" and self.approver and doc.get("kind") == "approve" and doc.get("callbackUrl"):
            threading.Thread(target=self._answer, args=(doc,), name="sandbox-approver", daemon=True).start()
        return 202, {"status": "accepted"}

    def decision_for(self, doc: dict[str, Any]) -> str:
        params = doc.get("parameters") or {}
        amounts = [float(v) for v in params.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return "approve" if all(a <= self.approve_up_to for a in amounts) else "reject"

    def _answer(self, doc: dict[str, Any]) -> None:
        time.sleep(self.delay_ms / 1000)
        decision = self.decision_for(doc)
        payload = json.dumps({"decision": decision, "token": doc["token"], "approver": self.approver,
                              "comment": f"sandbox approver: amounts up to {self.approve_up_to:g} are fine"}).encode()
        signature = "sha256=" + hmac.new(self.flow_key.encode(), payload, hashlib.sha256).hexdigest()
        request = urllib.request.Request(doc["callbackUrl"], data=payload, method="POST", headers={
            "Content-Type": "application/json", "x-closedloop-signature": signature})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                status = r.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        with self._lock:
            self.answers.append((decision, status))
        log.info("sandbox approver answered %s for %s: HTTP %s", decision, doc.get("approvalId"), status)

