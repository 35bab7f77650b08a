"""Turning stage nudges into bus messages on the queues the settings name."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..domain.messages import Nudge
from ..ports import Message, Services


def messages(services: Services, nudges: Iterable[Nudge], at: datetime | None = None) -> list[Message]:
    """The bus messages for `nudges` (scheduled for `at` when given)."""
    return [Message(services.settings.queues[n.stage], n.body, n.message_id, at) for n in nudges]


def send(services: Services, nudges: Iterable[Nudge], at: datetime | None = None) -> int:
    found = messages(services, nudges, at)
    if found:
        services.bus.send(found)
    return len(found)
