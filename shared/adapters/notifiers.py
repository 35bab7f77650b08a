"""Notifier adapters: an approval flow, a Teams Workflows webhook, an outbox folder (local), the log.

Each picks the card made for its channel from `details["cards"]`: `submit` for the approval flow (its
"Post adaptive card and wait for a response" returns the Action.Submit data), `links` for the webhook
(webhook cards cannot take Action.Submit). A channel that does not answer is logged, never retried
here: the timer sweep escalates approvals nobody answered within their SLA.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

log = logging.getLogger(__name__)


class OutboxNotifier:
    """One JSON file per notification, named so `ls` lists them in order."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._lock = threading.Lock()
        self._seq = 0

    def notify(self, kind: str, opportunity_id: str, subject: str, details: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            seq = self._seq
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{stamp}-{seq:05d}-{kind}-{opportunity_id}.json")
        body = {"kind": kind, "opportunityId": opportunity_id, "subject": subject, "details": details}
        # msgspec: a card file is written for every approval; json.dumps(indent=2) cost ~10x as much.
        (self.folder / name).write_bytes(msgspec.json.format(msgspec.json.encode(body, enc_hook=str), indent=2))
        links = details.get("links") or {}
        if links:  # the printed link: the local stand-in for a Teams card
            log.warning("%s card for %s in %s; answer at %s", kind, opportunity_id, self.folder / name,
                        " or ".join(links.values()))


class LogNotifier:
    def notify(self, kind: str, opportunity_id: str, subject: str, details: dict[str, Any]) -> None:
        # No links here: a signed token in the logs would be a capability anyone reading them holds.
        log.warning("%s needed for %s: %s (approval %s)", kind, opportunity_id, subject,
                    details.get("approvalId", "-"))


class _Poster:
    def __init__(self, url: str, timeout: float = 10.0):
        import urllib3

        self.url, self.timeout = url, timeout
        self._http = urllib3.PoolManager(maxsize=4, retries=urllib3.Retry(2, backoff_factor=0.5,
                                                                            status_forcelist=(429, 502, 503, 504)))

    def post(self, body: dict[str, Any]) -> bool:
        import urllib3

        try:
            r = self._http.request("POST", self.url, body=json.dumps(body, default=str).encode(),
                                   headers={"Content-Type": "application/json"}, timeout=self.timeout)
        except urllib3.exceptions.HTTPError as exc:
            log.error("notification not delivered: %s", type(exc).__name__)
            return False
        if r.status >= 300:
            log.error("notification not delivered: HTTP %d", r.status)
            return False
        return True


class FlowNotifier(_Poster):
    """POST to a Power Automate approval flow (HTTP Request trigger) that posts the card and, once a person
    answers, POSTs the answer to `callbackUrl`, signed with APPROVAL_FLOW_KEY."""

    def __init__(self, url: str, public_base_url: str):
        super().__init__(url)
        self.base = public_base_url

    def notify(self, kind: str, opportunity_id: str, subject: str, details: dict[str, Any]) -> None:
        cards = details.get("cards") or {}
        approval = details.get("approvalId")
        from ..domain.cards import md
        from ..domain.flow_contracts import ApprovalFlowRequest

        # A flow may show the subject beside the card (its Teams message text): Markdown, so escaped like card data.
        self.post(ApprovalFlowRequest(
            kind=kind, opportunityId=opportunity_id, subject=md(subject), approvalId=approval,
            token=details.get("token"), expiresAt=details.get("expiresAt"), requiredRole=details.get("requiredRole"),
            parameters=(details.get("plan") or {}).get("parameters"),
            callbackUrl=f"{self.base}/api/approvals/{approval}" if approval else None,
            card=cards.get("submit") or cards.get("links"),
            correlationId=details.get("correlationId")).model_dump(mode="json"))


class WebhookNotifier(_Poster):
    """POST a message with the link card to a Teams Workflows webhook ("When a Teams webhook request is
    received"); approve/reject are signed links to a confirmation page."""

    def notify(self, kind: str, opportunity_id: str, subject: str, details: dict[str, Any]) -> None:
        card = (details.get("cards") or {}).get("links")
        if card is None:
            return
        self.post({"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]})


class RecordingNotifier:
    """For tests: keeps what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, dict[str, Any]]] = []

    def notify(self, kind: str, opportunity_id: str, subject: str, details: dict[str, Any]) -> None:
        self.sent.append((kind, opportunity_id, subject, details))


class RoutingNotifier:
    """Questions (a card with an approval record to answer: approve, enrich, review, escalate) to a channel that
    can wait for the answer; news (an incident, a card with nothing to answer) to one that only shows it."""

    def __init__(self, questions: Any, news: Any):
        self.questions, self.news = questions, news

    def notify(self, kind: str, opportunity_id: str, subject: str, details: dict[str, Any]) -> None:
        from ..domain.pii import scrub
        channel = self.questions if details.get("approvalId") else self.news
        channel.notify(kind, opportunity_id, scrub(subject), details)
