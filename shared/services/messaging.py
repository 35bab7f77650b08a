"""Turning stage nudges into bus messages on the queues the settings name."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Optional

from ..domain.messages import Nudge
from ..ports import Message
from ..ports import Services


def send(services: Services, nudges: Iterable[Nudge], at: Optional[datetime] = None) -> int:
    messages = [Message(services.settings.queues[n.stage], n.body, n.message_id, at) for n in nudges]
    if messages:
        services.bus.send(messages)
    return len(messages)
