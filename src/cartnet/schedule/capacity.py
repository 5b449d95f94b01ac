"""Capacity calendars: manufacturing slots per site and day, apheresis per center and day.

A site's daily manufacturing starts come from its lines, its nominal cycle (the
mean manufacturing time, during which a start holds a line) and its working
calendar: ``lines × 7 / (cycle × open weekdays)`` starts per open day
(``lines × 7 / cycle`` a week), by cumulative rounding over the open weekdays
counted from a fixed Monday, so a date's starts do not depend on where a
calendar begins. None on closed weekdays, holidays or shutdowns: that capacity
is lost, not moved to other days. So over any stretch of open days, starts never
exceed what the lines can hold (i-SHIPMENT's rolling-window capacity, up to
rounding). QC lab capacity (releases per day) and
center apheresis capacity are per day too; a center collects nothing on the days
its calendar closes.

Quotas hold a number (or a share) of a site's slots over a period for a center,
a market or a clinical trial; slots a quota holds on a day are released to
everybody ``release_days_ahead`` days before that day if the holder has not used
them. Bookings consume capacity; cancelling or rescheduling gives it back. Pure
core code in memory; the service persists it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

import numpy as np

from cartnet.network.calendar import WorkingCalendar
from cartnet.network.model import Network


class HolderKind(StrEnum):
    CENTER = "center"
    MARKET = "market"
    TRIAL = "trial"


@dataclass(frozen=True)
class Quota:
    """A center, market or trial holds ``slots`` (or ``share`` of) a site's slots over a period."""

    site: str
    holder_kind: HolderKind
    holder: str
    start: date
    end: date
    """Last day of the period, included."""
    slots: int | None = None
    share: float | None = None
    release_days_ahead: int = 14

    def __post_init__(self) -> None:
        if (self.slots is None) == (self.share is None):
            raise ValueError("a quota holds either a number of slots or a share, not both")
        if self.slots is not None and self.slots < 0:
            raise ValueError("a quota's slots must be >= 0")
        if self.share is not None and not 0 <= self.share <= 1:
            raise ValueError("a quota's share must be between 0 and 1")
        if self.end < self.start:
            raise ValueError(f"quota period ends ({self.end}) before it starts ({self.start})")
        if self.release_days_ahead < 0:
            raise ValueError("release_days_ahead must be >= 0")

    def describe(self) -> str:
        """The quota in words, as a refusal names it: holder, site, period."""
        held = f"{self.slots} slots" if self.slots is not None else f"{self.share:.0%} of the slots"
        return (
            f"the quota of {self.holder_kind.value} {self.holder} ({held} at {self.site}, "
            f"{self.start} to {self.end}, released {self.release_days_ahead} days ahead)"
        )


@dataclass(frozen=True)
class Party:
    """Who an order belongs to, for quotas: its center, market and (clinical) trial."""

    center: str
    market: str
    trial: str | None = None

    def holds(self, quota: Quota) -> bool:
        return (
            (quota.holder_kind is HolderKind.CENTER and quota.holder == self.center)
            or (quota.holder_kind is HolderKind.MARKET and quota.holder == self.market)
            or (quota.holder_kind is HolderKind.TRIAL and quota.holder == self.trial)
        )


@dataclass(frozen=True)
class Booking:
    """A booked slot chain: apheresis at a center, a manufacturing start at a site."""

    id: int
    order: str
    party: Party
    site: str
    center: str
    apheresis: date
    start: date
    release: date | None = None
    quota: int | None = None
    """Index of the quota whose slot this booking used, if any."""


class CapacityError(ValueError):
    """A booking that capacity, quota or calendar does not allow; nothing was changed."""


@dataclass
class _QuotaState:
    quota: Quota
    first: int
    last: int
    slots: int
    used: int = 0


@dataclass(frozen=True)
class QuotaUse:
    """How much of a quota its holder has used: ``slots`` held in all, ``used`` by bookings."""

    quota: Quota
    slots: int
    used: int

    @property
    def unused(self) -> int:
        return max(0, self.slots - self.used)


@dataclass
class CapacityCalendar:
    """Free capacity of a network from ``origin`` for ``days`` days, in memory."""

    network: Network
    origin: date
    days: int = 730
    quotas: list[Quota] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.days <= 0:
            raise ValueError("a capacity calendar needs at least one day")
        n = self.days
        self.site_ids = [s.id for s in self.network.sites]
        self.site_index = {s: i for i, s in enumerate(self.site_ids)}
        self.slots = np.zeros((len(self.site_ids), n), dtype=np.int32)
        self.qc = np.full((len(self.site_ids), n), np.iinfo(np.int32).max, dtype=np.int64)
        for i, site in enumerate(self.network.sites):
            self.slots[i] = starts_per_day(
                site.lines, site.manufacturing.mean, site.calendar, self.origin, n
            )
            if site.qc_capacity_per_day is not None:
                self.qc[i] = site.qc_capacity_per_day
        self.booked = np.zeros_like(self.slots)
        self.qc_booked = np.zeros_like(self.qc)
        self.center_ids = [c.id for c in self.network.treatment_centers]
        self.center_index = {c: i for i, c in enumerate(self.center_ids)}
        self.apheresis = np.array(
            [[c.apheresis_per_day] * n for c in self.network.treatment_centers], dtype=np.int32
        ).reshape(len(self.center_ids), n)
        for j, c in enumerate(self.network.treatment_centers):
            days = self.network.center_days(c.id)
            if not days.always_open:
                self.apheresis[j] *= days.open_days(self.origin, n)
        self.apheresis_booked = np.zeros_like(self.apheresis)
        self.bookings: dict[int, Booking] = {}
        self._ids = itertools.count(1)
        self._quotas: list[_QuotaState] = []
        for q in self.quotas:
            self._add_quota_state(q)

    # -- days ----------------------------------------------------------------

    def day(self, on: date) -> int:
        return (on - self.origin).days

    def date_of(self, day: int) -> date:
        return self.origin + timedelta(days=day)

    def _check_day(self, day: int, what: str) -> None:
        if not 0 <= day < self.days:
            raise CapacityError(
                f"{what} {self.date_of(day)} is outside the calendar "
                f"({self.origin} to {self.date_of(self.days - 1)})"
            )

    # -- quotas --------------------------------------------------------------

    def add_quota(self, quota: Quota, used: int = 0) -> None:
        """Hold ``quota``; ``used``: slots of it its holder's bookings already took."""
        self.quotas.append(quota)
        self._add_quota_state(quota)
        self._quotas[-1].used = used

    def clear_quotas(self) -> None:
        """Hold no quota (new lists: a shallow copy of a calendar no longer shares them)."""
        self.quotas = []
        self._quotas = []

    def quota_uses(self) -> list[QuotaUse]:
        """Each quota's slots and use, in the order they were added."""
        return [QuotaUse(qs.quota, qs.slots, qs.used) for qs in self._quotas]

    def still_held(self, today: int) -> list[QuotaUse]:
        """Quotas with unused slots and days of their period not released yet."""
        return [
            QuotaUse(qs.quota, qs.slots, qs.used)
            for qs in self._quotas
            if qs.used < qs.slots and qs.last >= today + qs.quota.release_days_ahead + 1
        ]

    def _add_quota_state(self, q: Quota) -> None:
        if q.site not in self.site_index:
            raise ValueError(f"quota on unknown site {q.site!r}")
        first = max(0, self.day(q.start))
        last = min(self.days - 1, self.day(q.end))
        if q.slots is not None:
            slots = q.slots
        else:
            assert q.share is not None
            total = int(self.slots[self.site_index[q.site], first : last + 1].sum())
            slots = math.floor(q.share * total + 0.5)
        self._quotas.append(_QuotaState(q, first, last, slots))

    def held_for_others(self, site: str, day: int, party: Party, today: int) -> int:
        """Free slots of ``site`` that other holders' quotas still protect around ``day``.

        Zero when booking ``day`` leaves every other holder's unused quota intact in
        the part of its period not yet released.
        """
        return max((short for _, short in self._shortfalls(site, day, party, today)), default=0)

    def blocking_quotas(self, site: str, day: int, party: Party, today: int) -> list[Quota]:
        """The other holders' quotas that a booking of ``day`` by ``party`` would eat into."""
        return [q for q, short in self._shortfalls(site, day, party, today) if short > 0]

    def _shortfalls(
        self, site: str, day: int, party: Party, today: int
    ) -> Iterator[tuple[Quota, int]]:
        """Per other holder's quota in force on ``day``: slots it would lack after a booking."""
        for qs in self._quotas:
            q = qs.quota
            if q.site != site or party.holds(q) or not qs.first <= day <= qs.last:
                continue
            open_from = max(qs.first, today + q.release_days_ahead + 1)
            if day < open_from:
                continue  # released already
            remaining = qs.slots - qs.used
            if remaining <= 0:
                continue
            i = self.site_index[site]
            free = int(
                (self.slots[i, open_from : qs.last + 1] - self.booked[i, open_from : qs.last + 1])
                .clip(min=0)
                .sum()
            )
            # booking this day must leave at least `remaining` free slots for the holder
            yield q, remaining - (free - 1)

    def quota_for(self, site: str, day: int, party: Party) -> int | None:
        """The quota (index) with unused slots that ``party`` may draw on for this day."""
        for k, qs in enumerate(self._quotas):
            q = qs.quota
            in_period = qs.first <= day <= qs.last
            if q.site == site and party.holds(q) and in_period and qs.used < qs.slots:
                return k
        return None

    # -- capacity questions ----------------------------------------------------

    def free_slots(self, site: str, first: int, last: int) -> np.ndarray:
        """Free manufacturing starts per day on ``first..last`` (before quotas)."""
        i = self.site_index[site]
        return self.slots[i, first : last + 1] - self.booked[i, first : last + 1]

    def apheresis_free(self, center: str, day: int) -> bool:
        j = self.center_index[center]
        return bool(self.apheresis_booked[j, day] < self.apheresis[j, day])

    def qc_free(self, site: str, day: int) -> bool:
        if not 0 <= day < self.days:
            return True  # beyond the calendar: not planned yet
        i = self.site_index[site]
        return bool(self.qc_booked[i, day] < self.qc[i, day])

    def slot_open_to(self, site: str, day: int, party: Party, today: int) -> bool:
        """True when ``party`` may take a manufacturing start at ``site`` on ``day``."""
        i = self.site_index[site]
        free = int(self.slots[i, day] - self.booked[i, day])
        if free <= 0:
            return False
        if self.quota_for(site, day, party) is not None:
            return True
        return self.held_for_others(site, day, party, today) <= 0

    # -- bookings --------------------------------------------------------------

    def book(
        self,
        order: str,
        party: Party,
        site: str,
        apheresis: date,
        start: date,
        release: date | None = None,
        *,
        today: date | None = None,
    ) -> Booking:
        """Consume a slot chain's capacity, all or nothing."""
        if site not in self.site_index:
            raise CapacityError(f"unknown site {site!r}")
        if party.center not in self.center_index:
            raise CapacityError(f"unknown treatment center {party.center!r}")
        d, a = self.day(start), self.day(apheresis)
        self._check_day(d, "manufacturing start")
        self._check_day(a, "apheresis")
        if a > d:
            raise CapacityError(f"apheresis {apheresis} is after the manufacturing start {start}")
        t = self.day(today) if today is not None else a
        if not self.slot_open_to(site, d, party, t):
            raise CapacityError(f"no free slot at {site} on {start} for this order")
        if not self.apheresis_free(party.center, a):
            j = self.center_index[party.center]
            if self.apheresis[j, a] == 0:
                raise CapacityError(f"{party.center} is closed for apheresis on {apheresis}")
            raise CapacityError(f"apheresis capacity of {party.center} is full on {apheresis}")
        r = self.day(release) if release is not None else None
        if r is not None and not self.qc_free(site, r):
            raise CapacityError(f"QC capacity of {site} is full on {release}")
        quota = self.quota_for(site, d, party)
        i, j = self.site_index[site], self.center_index[party.center]
        self.booked[i, d] += 1
        self.apheresis_booked[j, a] += 1
        if r is not None and 0 <= r < self.days:
            self.qc_booked[i, r] += 1
        if quota is not None:
            self._quotas[quota].used += 1
        booking = Booking(
            next(self._ids), order, party, site, party.center, apheresis, start, release, quota
        )
        self.bookings[booking.id] = booking
        return booking

    def cancel(self, booking_id: int) -> Booking:
        """Give a booking's capacity back."""
        try:
            b = self.bookings.pop(booking_id)
        except KeyError:
            raise CapacityError(f"no booking {booking_id}") from None
        i, j = self.site_index[b.site], self.center_index[b.center]
        self.booked[i, self.day(b.start)] -= 1
        self.apheresis_booked[j, self.day(b.apheresis)] -= 1
        if b.release is not None and 0 <= self.day(b.release) < self.days:
            self.qc_booked[i, self.day(b.release)] -= 1
        if b.quota is not None:
            self._quotas[b.quota].used -= 1
        return b

    def reschedule(
        self,
        booking_id: int,
        site: str,
        apheresis: date,
        start: date,
        release: date | None = None,
        *,
        today: date | None = None,
    ) -> Booking:
        """Move a booking to another chain; on failure the old booking stands."""
        old = self.cancel(booking_id)
        try:
            return self.book(old.order, old.party, site, apheresis, start, release, today=today)
        except CapacityError:
            restored = self.book(
                old.order, old.party, old.site, old.apheresis, old.start, old.release,
                today=today or old.apheresis,
            )  # fmt: skip
            self.bookings.pop(restored.id)
            self.bookings[old.id] = Booking(**{**old.__dict__, "quota": restored.quota})
            raise

    def utilization(self, site: str, first: date, last: date) -> float:
        i = self.site_index[site]
        a, b = self.day(first), self.day(last) + 1
        total = int(self.slots[i, a:b].sum())
        return float(self.booked[i, a:b].sum() / total) if total else 0.0


ROUNDING_EPOCH = date(2000, 1, 3)
"""A Monday: cumulative rounding of starts counts open weekdays from here."""


def starts_per_day(
    lines: int, cycle_days: float, calendar: WorkingCalendar, origin: date, days: int
) -> np.ndarray:
    """Manufacturing starts a site can take each day from ``origin``.

    Ten lines, an 8-day cycle and a five-day week give 10 × 7 / (8 × 5) = 1.75
    starts per open day, 8.75 a week, 17 or 18 in two weeks; a holiday loses its
    day's starts and leaves the other days as they were:

    >>> from cartnet.network.calendar import WorkingCalendar
    >>> cal = WorkingCalendar(closed_weekdays=["sat", "sun"])
    >>> s = starts_per_day(10, 8.0, cal, date(2021, 1, 4), 14)
    >>> s.tolist(), int(s.sum())
    ([1, 2, 2, 2, 1, 0, 0, 2, 2, 2, 1, 2, 0, 0], 17)
    >>> holiday = WorkingCalendar(closed_weekdays=["sat", "sun"], closed_dates=["2021-01-06"])
    >>> starts_per_day(10, 8.0, holiday, date(2021, 1, 4), 14).tolist()
    [1, 2, 0, 2, 1, 0, 0, 2, 2, 2, 1, 2, 0, 0]
    """
    open_weekdays = [w for w in range(7) if w not in {d.number for d in calendar.closed_weekdays}]
    if lines <= 0 or days <= 0:
        return np.zeros(max(days, 0), dtype=np.int32)
    per_open_day = lines * 7 / (max(cycle_days, 1e-9) * len(open_weekdays))
    offset = (origin - ROUNDING_EPOCH).days + np.arange(days)
    weekday = offset % 7
    weekly_open = np.isin(np.arange(7), open_weekdays)
    # open weekdays from the epoch up to and including each day (negative before it)
    counted = (offset // 7) * len(open_weekdays) + np.cumsum(weekly_open)[weekday]
    starts = np.floor(counted * per_open_day + 1e-9) - np.floor((counted - 1) * per_open_day + 1e-9)
    is_open = np.array([calendar.is_open(origin + timedelta(days=k)) for k in range(days)])
    return np.where(is_open, starts, 0).astype(np.int32)
