"""Capacity calendars: slots from lines and calendars, bookings, quotas, release."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from cartnet.network import Network
from cartnet.network.calendar import Shutdown, WorkingCalendar
from cartnet.schedule.capacity import (
    CapacityCalendar,
    CapacityError,
    HolderKind,
    Party,
    Quota,
    starts_per_day,
)

MONDAY = date(2021, 1, 4)
PARIS = Party("paris-centre", "EU")
BERLIN = Party("berlin-mitte", "EU")
BOSTON = Party("boston-general", "US")


def test_slots_follow_lines_cycle_and_calendar(example: Network) -> None:
    """Newark: 4 lines, 8-day cycle, closed weekends and 24-25 Dec: 3.5 starts a week."""
    cal = CapacityCalendar(example, MONDAY, days=364)
    newark = cal.free_slots("newark", 0, 363)
    assert newark.sum() == pytest.approx(4 * 364 / 8, abs=2)
    for k in range(364):
        if (MONDAY + timedelta(days=k)).weekday() >= 5:
            assert newark[k] == 0
    assert newark[cal.day(date(2021, 12, 24))] == 0
    leiden = cal.free_slots("leiden", cal.day(date(2021, 8, 2)), cal.day(date(2021, 8, 15)))
    assert leiden.sum() == 0  # the planned shutdown


def test_starts_never_exceed_what_the_lines_hold() -> None:
    """Over any window of the cycle length, starts ≤ lines (+1 for rounding)."""
    for lines, cycle in [(1, 7.0), (3, 8.0), (25, 8.2), (9, 9.5)]:
        s = starts_per_day(lines, cycle, WorkingCalendar(closed_weekdays=["sun"]), MONDAY, 200)
        window = int(cycle)
        assert max(s[i : i + window].sum() for i in range(200 - window)) <= lines + 1


@pytest.mark.parametrize("origin", [MONDAY, date(2021, 3, 17)])
@pytest.mark.parametrize(("lines", "cycle"), [(10, 8.0), (3, 9.5), (25, 8.2)])
def test_open_day_capacity_is_the_documented_formula_whatever_holidays(
    origin: date, lines: int, cycle: float
) -> None:
    """lines × 7 / (cycle × open weekdays) per normal open day; holidays lose their share."""
    weekly = WorkingCalendar(closed_weekdays=["sat", "sun"])
    closures = WorkingCalendar(
        closed_weekdays=["sat", "sun"],
        closed_dates=[date(2021, 5, 13), date(2021, 12, 24), date(2022, 1, 3)],
        shutdowns=[Shutdown(start=date(2021, 8, 2), end=date(2021, 8, 20))],
    )
    days = 730
    plain = starts_per_day(lines, cycle, weekly, origin, days)
    held = starts_per_day(lines, cycle, closures, origin, days)
    dates = [origin + timedelta(days=k) for k in range(days)]
    normal = np.array([closures.is_open(d) for d in dates])
    lost = np.array([weekly.is_open(d) and not closures.is_open(d) for d in dates])
    assert lost.sum() == 18  # the shutdown's 15 weekdays and three holidays
    formula = lines * 7 / (cycle * 5)
    # every normal open day keeps the capacity it has without holidays ...
    assert (held[normal] == plain[normal]).all()
    assert (held[~normal] == 0).all()
    # ... which over the open weekdays is the formula, up to one start of rounding
    open_weekdays = np.array([weekly.is_open(d) for d in dates])
    assert abs(plain[open_weekdays].sum() - formula * open_weekdays.sum()) <= 1
    # so the mean over normal open days is the formula, not inflated by the lost days
    assert held[normal].mean() == pytest.approx(formula, abs=(1 + lost.sum()) / normal.sum())
    # and the same date has the same starts whichever origin the calendar has
    earlier = starts_per_day(lines, cycle, closures, origin - timedelta(days=40), days + 40)
    assert (earlier[40:] == held).all()


def test_booking_consumes_and_cancel_gives_back(example: Network) -> None:
    cal = CapacityCalendar(example, MONDAY, days=60)
    [day] = open_days(cal, "newark", 1)
    free = int(cal.free_slots("newark", cal.day(day), cal.day(day))[0])
    bookings = [cal.book(f"o{i}", BOSTON, "newark", MONDAY, day) for i in range(free)]
    with pytest.raises(CapacityError, match="no free slot at newark"):
        cal.book("late", BOSTON, "newark", MONDAY, day)
    cal.cancel(bookings[0].id)
    cal.book("late", BOSTON, "newark", MONDAY, day)


def open_days(cal: CapacityCalendar, site: str, n: int) -> list[date]:
    """The first ``n`` days with a free slot at ``site``."""
    free = cal.free_slots(site, 0, cal.days - 1)
    return [cal.date_of(int(d)) for d in (free > 0).nonzero()[0][:n]]


def test_apheresis_capacity_is_per_center_and_day(example: Network) -> None:
    cal = CapacityCalendar(example, MONDAY, days=60)
    first, second = open_days(cal, "newark", 2)
    cal.book("a", PARIS, "newark", MONDAY, first)  # Paris collects one a day
    with pytest.raises(CapacityError, match="apheresis capacity of paris-centre is full"):
        cal.book("b", PARIS, "newark", MONDAY, second)


def test_a_failed_reschedule_keeps_the_old_booking(example: Network) -> None:
    cal = CapacityCalendar(example, MONDAY, days=60)
    first, second = open_days(cal, "newark", 2)
    b = cal.book("a", BOSTON, "newark", MONDAY, first)
    saturday = MONDAY + timedelta(days=5)
    with pytest.raises(CapacityError):
        cal.reschedule(b.id, "newark", MONDAY, saturday)
    assert cal.bookings[b.id].start == first
    assert cal.booked.sum() == 1
    moved = cal.reschedule(b.id, "newark", MONDAY, second)
    assert moved.start == second
    assert cal.booked.sum() == 1


def test_a_quota_protects_its_holders_slots_until_released(example: Network) -> None:
    """Berlin holds all of Leiden's slots in March; Paris can book only once they are released."""
    cal = CapacityCalendar(example, MONDAY, days=120)
    march = date(2021, 3, 1)
    total = int(cal.free_slots("leiden", cal.day(march), cal.day(date(2021, 3, 31))).sum())
    cal.add_quota(
        Quota("leiden", HolderKind.CENTER, "berlin-mitte", march, date(2021, 3, 31),
              slots=total, release_days_ahead=7)
    )  # fmt: skip
    day = cal.day(date(2021, 3, 16))
    assert not cal.slot_open_to("leiden", day, PARIS, today=cal.day(date(2021, 2, 20)))
    assert cal.slot_open_to("leiden", day, BERLIN, today=cal.day(date(2021, 2, 20)))
    # seven days ahead the slot is released to everybody
    assert cal.slot_open_to("leiden", day, PARIS, today=day - 7)
    b = cal.book("berlin-1", BERLIN, "leiden", date(2021, 3, 10), date(2021, 3, 16))
    assert b.quota is not None


def test_a_quota_says_who_it_blocks_and_stops_holding_once_released_or_used(
    example: Network,
) -> None:
    """The blocking quota is named for others, not for its holder; ``still_held`` drops a
    quota once its whole period is released, or once its holder used it up."""
    cal = CapacityCalendar(example, MONDAY, days=120)
    march, end = date(2021, 3, 1), date(2021, 3, 31)
    total = int(cal.free_slots("leiden", cal.day(march), cal.day(end)).sum())
    quota = Quota("leiden", HolderKind.CENTER, "berlin-mitte", march, end, slots=total,
                  release_days_ahead=7)  # fmt: skip
    cal.add_quota(quota)
    day, today = cal.day(date(2021, 3, 16)), cal.day(date(2021, 2, 20))
    assert cal.blocking_quotas("leiden", day, PARIS, today) == [quota]
    assert cal.blocking_quotas("leiden", day, BERLIN, today) == []
    assert "center berlin-mitte" in quota.describe()
    assert "2021-03-01 to 2021-03-31" in quota.describe()
    assert [u.unused for u in cal.still_held(today)] == [total]
    assert cal.still_held(cal.day(end) - 7) == []  # every day of it is released now
    cal.book("berlin-1", BERLIN, "leiden", date(2021, 3, 10), date(2021, 3, 16))
    assert [(u.used, u.unused) for u in cal.quota_uses()] == [(1, total - 1)]
    used_up = CapacityCalendar(example, MONDAY, days=120)
    used_up.add_quota(quota, used=total)
    assert used_up.still_held(today) == []
    assert used_up.blocking_quotas("leiden", day, PARIS, today) == []


def test_a_share_quota_leaves_the_rest_to_others(example: Network) -> None:
    cal = CapacityCalendar(example, MONDAY, days=120)
    cal.add_quota(
        Quota("newark", HolderKind.MARKET, "US", MONDAY, MONDAY + timedelta(days=27), share=0.5)
    )
    today = 0
    open_to_eu = sum(cal.slot_open_to("newark", d, PARIS, today) for d in range(28))
    assert open_to_eu > 0  # half the month is not held
    assert all(cal.slot_open_to("newark", d, BOSTON, today) for d in range(28) if
               cal.free_slots("newark", d, d)[0] > 0)  # fmt: skip


def test_bad_quotas_and_dates_are_refused(example: Network) -> None:
    with pytest.raises(ValueError, match="either a number of slots or a share"):
        Quota("newark", HolderKind.CENTER, "x", MONDAY, MONDAY, slots=1, share=0.5)
    with pytest.raises(ValueError, match="ends"):
        Quota("newark", HolderKind.CENTER, "x", MONDAY, MONDAY - timedelta(days=1), slots=1)
    cal = CapacityCalendar(example, MONDAY, days=30)
    with pytest.raises(CapacityError, match="outside the calendar"):
        cal.book("o", BOSTON, "newark", MONDAY, MONDAY + timedelta(days=40))
    with pytest.raises(CapacityError, match="after the manufacturing start"):
        cal.book("o", BOSTON, "newark", MONDAY + timedelta(days=3), MONDAY + timedelta(days=2))
