"""One message through its stage: a batch of one for the runner (services/runner.py)."""
from __future__ import annotations

from ..ports import Services
from .runner import run
from .stage import RESUME, Result

__all__ = ["RESUME", "handle"]


def handle(services: Services, stage: str, body: bytes, delivery_count: int = 1) -> Result:
    """Run one stage for one message; returns what happened. Raising makes the bus redeliver."""
    return run(services, stage, [(body, delivery_count)])[0]
