"""The data behind GET /api/dashboard: impact and ROI (as GET /api/kpis), throughput and success rates, and what the
loop learned (as GET /api/learning)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..domain.commitment import current_week
from ..domain.execution import FINAL, SUCCEEDED
from ..ports import Services
from . import learning
from .commitments import report, week
from .measure import kpis

DAYS = 14


def data(services: Services) -> dict[str, Any]:
    """Verified actions per day for DAYS days, success rate per action version, the KPI report, this week's
    commitments with what became of them, and the learning report."""
    now = services.clock.now()
    this_week = current_week(now)
    start = (now - timedelta(days=DAYS - 1)).date()
    days = {(start + timedelta(days=i)).isoformat(): 0 for i in range(DAYS)}
    finished: dict[tuple[str, int], list[int]] = {}
    for x in services.store.executions_since(now - timedelta(days=DAYS)):
        if x.kind != "action" or x.status not in FINAL:
            continue
        tally = finished.setdefault((x.actionId, x.actionVersion), [0, 0])
        tally[0] += x.status == SUCCEEDED
        tally[1] += 1
        day = x.updatedAt.date().isoformat()
        if x.status == SUCCEEDED and day in days:
            days[day] += 1
    measured = kpis(services, weekly=False)
    return {"days": list(days.items()),
            "success": {k: (ok / n, n) for k, (ok, n) in sorted(finished.items())},
            "kpis": measured, "learning": learning.report(services, measured),
            "commitments": {"week": this_week, "items": report(services, week(services, this_week))}}
