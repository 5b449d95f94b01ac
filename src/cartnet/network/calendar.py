"""Working calendars: the days a site may start manufacturing, and a center may treat.

A site does not start a batch on a closed weekday, a holiday or during a planned
shutdown; batches already running carry on. A treatment center collects no
apheresis and infuses no product on its closed days: those move to its next open
day.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from functools import cached_property

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """Monday is 0, as in ``date.weekday()``."""
        return _WEEKDAY_NUMBER[self.value]


_WEEKDAY_NUMBER = {w: i for i, w in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}


class Shutdown(BaseModel):
    """A planned closure, both ends included."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: date
    end: date
    reason: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Shutdown:
        if self.end < self.start:
            raise ValueError(f"shutdown end {self.end} is before its start {self.start}")
        return self


class WorkingCalendar(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    closed_weekdays: list[Weekday] = []
    closed_dates: list[date] = []
    shutdowns: list[Shutdown] = []

    @model_validator(mode="after")
    def _some_open_day(self) -> WorkingCalendar:
        if len(set(self.closed_weekdays)) == 7:
            raise ValueError("every weekday is closed: the site could never start a batch")
        return self

    @cached_property
    def _closed_numbers(self) -> frozenset[int]:
        return frozenset(w.number for w in self.closed_weekdays)

    def is_open(self, day: date) -> bool:
        """True when a batch may start on ``day``.

        >>> cal = WorkingCalendar(closed_weekdays=["sun"], closed_dates=["2020-12-25"])
        >>> cal.is_open(date(2020, 12, 24)), cal.is_open(date(2020, 12, 25))
        (True, False)
        >>> cal.is_open(date(2020, 12, 27))  # a Sunday
        False
        """
        if day.weekday() in self._closed_numbers:
            return False
        if day in self.closed_dates:
            return False
        return not any(s.start <= day <= s.end for s in self.shutdowns)

    @property
    def always_open(self) -> bool:
        return not (self.closed_weekdays or self.closed_dates or self.shutdowns)

    def open_days(self, start: date, days: int) -> np.ndarray:
        """Boolean per day from ``start``: ``is_open`` for ``days`` days, computed at once.

        >>> WorkingCalendar(closed_weekdays=["sat", "sun"]).open_days(date(2021, 1, 1), 4)
        array([ True, False, False,  True])
        """
        weekday = (start.weekday() + np.arange(days)) % 7
        mask: np.ndarray = ~np.isin(weekday, list(self._closed_numbers))
        for d in self.closed_dates:
            i = (d - start).days
            if 0 <= i < days:
                mask[i] = False
        for s in self.shutdowns:
            mask[max(0, (s.start - start).days) : max(0, (s.end - start).days + 1)] = False
        return mask

    def next_open(self, day: date) -> date:
        """The first day on or after ``day`` when a batch may start."""
        limit = day + timedelta(days=3660)
        while not self.is_open(day):
            day += timedelta(days=1)
            if day > limit:
                raise ValueError("no open day within ten years")
        return day


class CenterCalendar(WorkingCalendar):
    """A treatment center's calendar: the days it collects apheresis and infuses.

    With ``public_holidays`` (the default) the center is also closed on the public
    holidays the network file lists for its country (``public_holidays`` at the top
    level); set it to false for a center that works through them.
    """

    public_holidays: bool = True

    def with_holidays(self, holidays: list[date]) -> WorkingCalendar:
        """The plain working calendar of one center: its own closures plus ``holidays``.

        >>> cal = CenterCalendar(closed_weekdays=["sun"])
        >>> cal.with_holidays([date(2020, 12, 25)]).is_open(date(2020, 12, 25))
        False
        >>> CenterCalendar(public_holidays=False).with_holidays([date(2020, 12, 25)]).closed_dates
        []
        """
        extra = [d for d in holidays if d not in self.closed_dates] if self.public_holidays else []
        return WorkingCalendar(
            closed_weekdays=self.closed_weekdays,
            closed_dates=sorted([*self.closed_dates, *extra]),
            shutdowns=self.shutdowns,
        )
