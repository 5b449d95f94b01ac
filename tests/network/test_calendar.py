"""Working calendars decide the days a batch may start."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from cartnet.network.calendar import Shutdown, WorkingCalendar


def test_closed_weekdays_dates_and_shutdowns() -> None:
    cal = WorkingCalendar(
        closed_weekdays=["sat", "sun"],
        closed_dates=[date(2021, 12, 24)],
        shutdowns=[Shutdown(start=date(2021, 8, 2), end=date(2021, 8, 15))],
    )
    assert cal.is_open(date(2021, 1, 4))  # Monday
    assert not cal.is_open(date(2021, 1, 9))  # Saturday
    assert not cal.is_open(date(2021, 12, 24))
    assert not cal.is_open(date(2021, 8, 15))  # last day of the shutdown
    assert cal.next_open(date(2021, 8, 2)) == date(2021, 8, 16)
    assert cal.next_open(date(2021, 1, 9)) == date(2021, 1, 11)


def test_a_calendar_with_no_open_weekday_is_refused() -> None:
    with pytest.raises(ValidationError, match="every weekday is closed"):
        WorkingCalendar(closed_weekdays=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])


def test_shutdown_must_end_after_it_starts() -> None:
    with pytest.raises(ValidationError, match="before its start"):
        Shutdown(start=date(2021, 8, 2), end=date(2021, 8, 1))
