"""One read-modify-write of a coordination state record under its ETag, for records several requests change at once
(a Celonis subscription's offsets, the week's commitments, the pending undos)."""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..domain.errors import ProblemError
from ..ports import ConcurrencyConflict, Services

T = TypeVar("T")


def update(services: Services, name: str, change: Callable[[dict[str, Any] | None], tuple[dict[str, Any] | None, T]],
           busy: Callable[[], ProblemError], attempts: int) -> T:
    """Read `name`, let `change` make the new record (None: nothing to write) and a result, write it if nobody wrote
    meanwhile, else read again; after `attempts` refused writes raise `busy()`. Returns the result of the write
    that landed."""
    for attempt in range(attempts):
        doc, etag = services.coordination.state_versioned(name)
        new, result = change(doc)
        if new is None:
            return result
        try:
            services.coordination.save_state(name, new, etag)
            return result
        except ConcurrencyConflict:
            # Back off a little, randomly, as the rate limiter does: contenders otherwise collide again at once.
            time.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))
    raise busy()
