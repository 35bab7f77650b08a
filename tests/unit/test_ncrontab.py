"""The local host fires timers on NCRONTAB schedules like the Functions host."""
from datetime import datetime

import pytest

from devhost.ncrontab import Schedule


def test_every_five_minutes_fires_on_the_next_multiple_of_five():
    s = Schedule("0 */5 * * * *")
    assert s.next_after(datetime(2026, 1, 1, 10, 3, 20)) == datetime(2026, 1, 1, 10, 5, 0)
    assert s.next_after(datetime(2026, 1, 1, 10, 5, 0)) == datetime(2026, 1, 1, 10, 10, 0)


def test_weekday_zero_is_sunday():
    s = Schedule("0 0 9 * * 0")
    assert s.next_after(datetime(2026, 11, 25, 12, 0)) == datetime(2026, 11, 29, 9, 0)  # Wednesday → Sunday


def test_lists_and_ranges():
    s = Schedule("30 0,30 8-9 * * *")
    assert s.next_after(datetime(2026, 1, 1, 9, 10)) == datetime(2026, 1, 1, 9, 30, 30)


@pytest.mark.parametrize("bad", ["* * * * *", "0 61 * * * *"])
def test_malformed_schedule_is_refused(bad):
    with pytest.raises(ValueError):
        Schedule(bad)
