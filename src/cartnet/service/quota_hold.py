"""Quotas in the capacity calendar: the active ones from the database, and their use.

A quota's *use* is not stored: it is the number of its holder's bookings on the site
in its period, counted from the orders (an order that is booked or further on holds or
has used its manufacturing start; a cancelled one gave it back). Each booking counts
against the first of its holder's quotas that covers its start and has room, as the
capacity calendar assigns them. A share quota holds that share of the site's starts
over the whole period, rounded to the nearest slot.

Bookings take the quotas' rows ``FOR UPDATE`` before they look at the calendar
(:func:`lock_quotas`): two bookings at a site with quotas then queue, so neither can
eat into a quota the other already counted on. On SQLite every writing transaction
holds the database's write lock from its start, which serializes them already.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartnet.ledger.lifecycle import OrderState
from cartnet.schedule.capacity import CapacityCalendar, HolderKind, Party, Quota
from cartnet.store.tables import OrderRow, QuotaRow

PeriodStarts = Callable[[str, date, date, date], int]
"""Manufacturing starts of a site over a period, both days included, as seen today."""

NOT_HOLDING = (OrderState.ENROLLED.value, OrderState.CANCELLED.value, OrderState.PATIENT_LOST.value)
"""Order states that hold no manufacturing start for their quota."""


def active_quotas(
    session: Session,
    today: date,
    sites: Collection[str] | None = None,
    *,
    lock: bool = False,
) -> list[QuotaRow]:
    """Quotas not retired whose period has not ended, oldest first (the order they apply in)."""
    query = select(QuotaRow).where(QuotaRow.retired_at.is_(None), QuotaRow.period_end >= today)
    if sites is not None:
        query = query.where(QuotaRow.site.in_(sorted(sites)))
    query = query.order_by(QuotaRow.created_at, QuotaRow.id)
    if lock:
        query = query.with_for_update()
    return list(session.scalars(query))


def lock_quotas(session: Session, today: date, site: str) -> None:
    """Queue behind any other booking at ``site`` until this transaction ends.

    Nothing to do on SQLite: the transaction holds the database's write lock already.
    """
    if session.get_bind().dialect.name == "sqlite":
        return
    active_quotas(session, today, [site], lock=True)


def as_quota(row: QuotaRow, period_starts: PeriodStarts, today: date) -> Quota:
    """The core's quota for a row, its share turned into whole slots."""
    if row.slots is not None:
        slots = row.slots
    else:
        total = period_starts(row.site, row.period_start, row.period_end, today)
        slots = math.floor((row.share or 0.0) * total + 0.5)
    return Quota(
        row.site,
        HolderKind(row.holder_kind),
        row.holder,
        row.period_start,
        row.period_end,
        slots=slots,
        release_days_ahead=row.release_days,
    )


def quota_use(session: Session, quotas: list[Quota]) -> list[int]:
    """Slots of each quota its holder's bookings have taken (see the module docstring)."""
    used = [0] * len(quotas)
    if not quotas:
        return used
    query = (
        select(OrderRow.site, OrderRow.start_on, OrderRow.center, OrderRow.market, OrderRow.trial)
        .where(
            OrderRow.site.in_(sorted({q.site for q in quotas})),
            OrderRow.start_on >= min(q.start for q in quotas),
            OrderRow.start_on <= max(q.end for q in quotas),
            OrderRow.state.notin_(NOT_HOLDING),
        )
        .order_by(OrderRow.start_on, OrderRow.id)
    )
    for site, start, center, market, trial in session.execute(query):
        if start is None:
            continue
        party = Party(center, market, trial)
        for k, q in enumerate(quotas):
            slots = q.slots or 0
            if q.site == site and q.start <= start <= q.end and used[k] < slots and party.holds(q):
                used[k] += 1
                break
    return used


def hold_quotas(
    session: Session,
    calendar: CapacityCalendar,
    rows: list[QuotaRow],
    period_starts: PeriodStarts,
) -> None:
    """Hold the quotas of ``rows`` (from :func:`active_quotas`) in ``calendar``, with their use.

    A quota on a site the network no longer has holds nothing and is left out.
    """
    calendar.clear_quotas()
    quotas = [
        as_quota(r, period_starts, calendar.origin) for r in rows if r.site in calendar.site_index
    ]
    for quota, used in zip(quotas, quota_use(session, quotas), strict=True):
        calendar.add_quota(quota, used)
