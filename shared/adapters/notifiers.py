"""Notifier adapters until Teams cards arrive: an outbox folder (local) and the log."""
from __future__ import annotations

import json
import logging
import re
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{stamp}-{seq:05d}-{kind}-{opportunity_id}.json")
        body = {"kind": kind, "opportunityId": opportunity_id, "subject": subject, "details": details}
        (self.folder / name).write_text(json.dumps(body, indent=2, default=str))


class LogNotifier:
    def notify(self, kind: str, opportunity_id: str, subject: str, details: dict[str, Any]) -> None:
        log.warning("%s needed for %s: %s", kind, opportunity_id, subject, extra={"details": details})


class RecordingNotifier:
    """For tests: keeps what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, dict[str, Any]]] = []

    def notify(self, kind: str, opportunity_id: str, subject: str, details: dict[str, Any]) -> None:
        self.sent.append((kind, opportunity_id, subject, details))
