"""Control groups: a deterministic, salted hash puts a fixed share of cases in `control`.

The same case lands in the same cohort on every run and every instance, so the treated-vs-control
comparison is a randomized experiment rather than a choice anyone made.
"""
from __future__ import annotations

from hashlib import sha256

TREATED, CONTROL = "treated", "control"


def bucket(salt: str, case_key: str) -> float:
    """A stable number in [0, 100) for this case under this experiment salt."""
    digest = sha256(f"{salt}\x1f{case_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100


def assign(salt: str, case_key: str, holdout_percent: float) -> str:
    return CONTROL if bucket(salt, case_key) < holdout_percent else TREATED
