"""Manufacturing, apheresis and QC capacity in the database, and offers on top of it.

The capacity of each resource and day comes from the network
(:class:`~cartnet.schedule.capacity.CapacityCalendar`); what is booked lives in the
``slot_usage`` table. :meth:`SlotLedger.reserve` takes one unit with
``UPDATE ... SET booked = booked + 1 WHERE booked < capacity``: the database, not the
process, decides who gets the last slot, so concurrent bookings cannot overbook on
SQLite or PostgreSQL, in one server process or many. Every snapshot holds the active
quotas of the sites it loads (:mod:`cartnet.service.quota_hold`).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cartnet.network.model import Network
from cartnet.schedule.capacity import CapacityCalendar, starts_per_day
from cartnet.schedule.offers import OfferPlanner, SlotChain
from cartnet.service.errors import Conflict
from cartnet.service.quota_hold import active_quotas, hold_quotas
from cartnet.store.tables import SlotUsageRow

HORIZON_DAYS = 400
"""How far ahead capacity can be offered and booked."""


class SlotKind(StrEnum):
    MANUFACTURING = "manufacturing"
    APHERESIS = "apheresis"
    QC = "qc"


@dataclass(frozen=True, slots=True)
class Claim:
    """One unit of capacity a booking holds."""

    kind: SlotKind
    resource: str
    day: date

    @property
    def entity_id(self) -> str:
        """The audit trail's id of the ``slot_usage`` row: ``kind/resource/day``."""
        return f"{self.kind.value}/{self.resource}/{self.day.isoformat()}"


@dataclass(frozen=True, slots=True)
class SlotChange:
    """What a booking did to one ``slot_usage`` row: its booked count before and after."""

    claim: Claim
    old: int
    new: int


def chain_claims(chain: SlotChain, center: str, calendar: CapacityCalendar) -> list[Claim]:
    """The capacity a booked chain takes: its start, its apheresis, its QC day if limited."""
    return [
        Claim(SlotKind.MANUFACTURING, chain.site, chain.start),
        Claim(SlotKind.APHERESIS, center, chain.apheresis),
        *qc_claims(calendar, chain.site, chain.release),
    ]


def qc_claims(calendar: CapacityCalendar, site: str, release: date) -> list[Claim]:
    """The QC day a batch released on ``release`` takes, where the site's QC is limited."""
    return [Claim(SlotKind.QC, site, release)] if _qc_limited(calendar, site, release) else []


def _qc_limited(calendar: CapacityCalendar, site: str, day: date) -> bool:
    d = calendar.day(day)
    if not 0 <= d < calendar.days:
        return False
    return bool(calendar.qc[calendar.site_index[site], d] < np.iinfo(np.int32).max)


class SlotLedger:
    """Capacity of one network: calendars per day, usage in the database."""

    def __init__(self, network: Network, horizon_days: int = HORIZON_DAYS) -> None:
        self.network = network
        self.horizon_days = horizon_days
        self._lock = threading.Lock()
        self._base: CapacityCalendar | None = None
        self._planner: OfferPlanner | None = None
        self._period_starts: dict[tuple[str, date, date, date], int] = {}

    def period_starts(self, site: str, first: date, last: date, today: date) -> int:
        """Manufacturing starts ``site`` has from ``first`` to ``last`` (a share quota's base).

        Days in the calendar from ``today`` count as bookings meet them; days before or
        beyond it as the site's lines and working calendar give them from there.
        """
        key = (site, first, last, today)
        with self._lock:
            found = self._period_starts.get(key)
        if found is not None:
            return found
        cal = self._calendar(today)
        s = self.network.site(site)
        end = today + timedelta(days=cal.days - 1)

        def outside(a: date, b: date) -> int:
            n = (b - a).days + 1
            if n <= 0:
                return 0
            return int(starts_per_day(s.lines, s.manufacturing.mean, s.calendar, a, n).sum())

        a, b = max(first, today), min(last, end)
        inside = (
            int(cal.slots[cal.site_index[site], cal.day(a) : cal.day(b) + 1].sum()) if a <= b else 0
        )
        found = (
            outside(first, min(last, today - timedelta(days=1)))
            + inside
            + outside(max(first, end + timedelta(days=1)), last)
        )
        with self._lock:
            if len(self._period_starts) > 10_000:
                self._period_starts.clear()
            self._period_starts[key] = found
        return found

    def _calendar(self, today: date) -> CapacityCalendar:
        with self._lock:
            if self._base is None or self._base.origin != today:
                self._base = CapacityCalendar(self.network, today, self.horizon_days)
                self._planner = OfferPlanner(self.network, self._base, horizon_days=180)
            return self._base

    def snapshot_base(self, today: date) -> CapacityCalendar:
        """The calendar from ``today`` with capacities only (read it, do not book in it)."""
        return self._calendar(today)

    def capacity(self, claim: Claim, today: date) -> int:
        """How many units the resource has on the day (0 outside the horizon)."""
        cal = self._calendar(today)
        d = cal.day(claim.day)
        if not 0 <= d < cal.days:
            return 0
        if claim.kind is SlotKind.MANUFACTURING:
            return int(cal.slots[cal.site_index[claim.resource], d])
        if claim.kind is SlotKind.APHERESIS:
            return int(cal.apheresis[cal.center_index[claim.resource], d])
        return int(min(cal.qc[cal.site_index[claim.resource], d], np.iinfo(np.int32).max))

    def snapshot(
        self,
        session: Session,
        today: date,
        *,
        sites: Collection[str] | None = None,
        centers: Collection[str] | None = None,
        until: date | None = None,
    ) -> CapacityCalendar:
        """The calendar from ``today`` with what the database says is booked.

        ``sites`` / ``centers`` / ``until`` limit what is loaded to what the caller will
        look at (an offer for one patient needs one center's apheresis days, not every
        center's; a booking needs the days up to its chain's end). Days not loaded read
        as free: look only at what was asked for. The active quotas of ``sites`` are held.
        """
        base = self._calendar(today)
        cal = copy.copy(base)
        cal.booked = np.zeros_like(base.slots)
        cal.apheresis_booked = np.zeros_like(base.apheresis)
        cal.qc_booked = np.zeros_like(base.qc)
        cal.bookings = {}
        end = today + timedelta(days=base.days - 1)
        last = end if until is None else min(end, until)
        quotas = active_quotas(session, today, sites)
        if quotas:  # a quota's check counts the free slots to the end of its period
            last = min(end, max(last, *(q.period_end for q in quotas)))
        query = select(
            SlotUsageRow.kind, SlotUsageRow.resource, SlotUsageRow.day, SlotUsageRow.booked
        ).where(SlotUsageRow.day >= today, SlotUsageRow.day <= last, SlotUsageRow.booked > 0)
        is_apheresis = SlotUsageRow.kind == SlotKind.APHERESIS.value
        if sites is not None:
            query = query.where(is_apheresis | SlotUsageRow.resource.in_(list(sites)))
        if centers is not None:
            query = query.where(~is_apheresis | SlotUsageRow.resource.in_(list(centers)))
        for kind, resource, day, booked in session.execute(query):
            d = (day - today).days
            if kind == SlotKind.MANUFACTURING and resource in cal.site_index:
                cal.booked[cal.site_index[resource], d] = booked
            elif kind == SlotKind.APHERESIS and resource in cal.center_index:
                cal.apheresis_booked[cal.center_index[resource], d] = booked
            elif kind == SlotKind.QC and resource in cal.site_index:
                cal.qc_booked[cal.site_index[resource], d] = booked
        hold_quotas(session, cal, quotas, self.period_starts)
        return cal

    def planner(
        self,
        session: Session,
        today: date,
        *,
        sites: Collection[str] | None = None,
        centers: Collection[str] | None = None,
        until: date | None = None,
    ) -> OfferPlanner:
        """An offer planner on the current bookings; approval and lane caches are shared.

        Only the bookings of ``sites`` and ``centers`` are loaded (all when ``None``).
        """
        calendar = self.snapshot(session, today, sites=sites, centers=centers, until=until)
        shared = self._planner
        assert shared is not None
        return OfferPlanner(
            self.network,
            calendar,
            horizon_days=shared.horizon_days,
            _approved=shared._approved,
            _lanes=shared._lanes,
        )

    def reserve(self, session: Session, claims: list[Claim], today: date) -> list[SlotChange]:
        """Take every claim or raise :class:`Conflict` (the caller's transaction rolls back).

        One statement per claim: insert the day's row with one booked, or raise its count
        if it is below capacity (``ON CONFLICT DO UPDATE ... WHERE``); no row comes back
        when the day is full. Returns each row's change, for the caller to audit.
        """
        changes: list[SlotChange] = []
        for claim in sorted(claims, key=lambda c: (c.kind.value, c.resource, c.day)):
            capacity = self.capacity(claim, today)
            booked = _take_one(session, claim, capacity) if capacity > 0 else None
            if booked is None:
                raise Conflict(
                    f"the {claim.kind.value} capacity of {claim.resource} on {claim.day} was "
                    "taken meanwhile; ask for offers again",
                    code="slot-taken",
                )
            changes.append(SlotChange(claim, booked - 1, booked))
        return changes

    def give_back(self, session: Session, claims: list[Claim]) -> list[SlotChange]:
        """Return capacity a booking held (cancel, reschedule); each row's change."""
        changes: list[SlotChange] = []
        for claim in sorted(claims, key=lambda c: (c.kind.value, c.resource, c.day)):
            booked = session.execute(
                update(SlotUsageRow)
                .where(
                    SlotUsageRow.kind == claim.kind.value,
                    SlotUsageRow.resource == claim.resource,
                    SlotUsageRow.day == claim.day,
                    SlotUsageRow.booked > 0,
                )
                .values(booked=SlotUsageRow.booked - 1)
                .returning(SlotUsageRow.booked)
                .execution_options(synchronize_session=False)
            ).scalar()
            if booked is not None:
                changes.append(SlotChange(claim, booked + 1, booked))
        return changes


def _take_one(session: Session, claim: Claim, capacity: int) -> int | None:
    """The day's new booked count, or ``None`` when it is full."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    new_row = insert(SlotUsageRow).values(
        kind=claim.kind.value, resource=claim.resource, day=claim.day, booked=1
    )
    statement = new_row.on_conflict_do_update(
        index_elements=[SlotUsageRow.kind, SlotUsageRow.resource, SlotUsageRow.day],
        set_={"booked": SlotUsageRow.booked + 1},
        where=SlotUsageRow.booked < capacity,
    ).returning(SlotUsageRow.booked)
    booked = session.execute(statement).scalar()
    return None if booked is None else int(booked)
