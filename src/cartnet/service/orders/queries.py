"""Reading orders: one order, filtered pages and counts, its trail, steps and totals.

Pages are keyed by a cursor (creation time and id) so a page does not shift when
orders are added; every read goes through :func:`cartnet.service.access.visible_orders`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from datetime import date, datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from cartnet.ledger.lifecycle import OrderState
from cartnet.ledger.roles import Role
from cartnet.service.access import ORDER_READERS, Principal, load_order, visible_orders
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Invalid, NotFound
from cartnet.service.orders.view import order_view
from cartnet.service.schemas import (
    Aggregates,
    AuditEntryView,
    CapacityDay,
    CountRow,
    OrderPage,
    OrderView,
    SiteCapacity,
    StepView,
)
from cartnet.service.steps import step_view
from cartnet.store.tables import AuditEntryRow, OrderExceptionRow, OrderRow, OrderStepRow

__all__ = [
    "MAX_PAGE",
    "aggregates",
    "count_orders",
    "get_order",
    "list_orders",
    "order_audit",
    "order_steps",
    "site_capacity",
]


MAX_PAGE = 200


def get_order(ctx: ServiceContext, principal: Principal, order_id: str) -> OrderView:
    with ctx.reading() as session:
        return order_view(ctx, session, load_order(session, principal, order_id))


def list_orders(
    ctx: ServiceContext,
    principal: Principal,
    *,
    state: OrderState | None = None,
    states: Collection[OrderState] = (),
    site: str | None = None,
    center: str | None = None,
    product: str | None = None,
    search: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> OrderPage:
    """Orders visible to ``principal``, oldest first, ``limit`` at a time.

    ``state`` and ``states`` together: an order in any of them. ``search`` matches the
    start of the CoI (as printed or eye-readable), the pseudonym or the DIN.
    """
    principal.require(ORDER_READERS, "list orders")
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be 1-{MAX_PAGE}", field="limit")
    query = _filtered(principal, state, states, site, center, product, search)
    if cursor is not None:
        after_time, after_id = _read_cursor(cursor)
        query = query.where(
            or_(
                OrderRow.created_at > after_time,
                and_(OrderRow.created_at == after_time, OrderRow.id > after_id),
            )
        )
    query = query.order_by(OrderRow.created_at, OrderRow.id).limit(limit + 1)
    with ctx.reading() as session:
        rows = list(session.scalars(query))
        items = [order_view(ctx, session, r) for r in rows[:limit]]
    next_cursor = _cursor(rows[limit - 1]) if len(rows) > limit else None
    return OrderPage(items=items, next_cursor=next_cursor)


def count_orders(
    ctx: ServiceContext,
    principal: Principal,
    *,
    state: OrderState | None = None,
    states: Collection[OrderState] = (),
    site: str | None = None,
    center: str | None = None,
    product: str | None = None,
    search: str | None = None,
) -> int:
    """How many orders :func:`list_orders` would list with these filters, all pages."""
    principal.require(ORDER_READERS, "count orders")
    query = _filtered(principal, state, states, site, center, product, search)
    with ctx.reading() as session:
        return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _filtered(
    principal: Principal,
    state: OrderState | None,
    states: Collection[OrderState],
    site: str | None,
    center: str | None,
    product: str | None,
    search: str | None,
) -> Select[OrderRow]:
    query = visible_orders(principal)
    wanted = {*states, *([state] if state is not None else [])}
    if wanted:
        query = query.where(OrderRow.state.in_(sorted(s.value for s in wanted)))
    for column, value in (
        (OrderRow.site, site),
        (OrderRow.center, center),
        (OrderRow.product, product),
    ):
        if value is not None:
            query = query.where(column == value)
    if search:
        text = search.strip().upper().replace(" ", "")
        prefix = text.replace("\\", "").replace("%", "").replace("_", "") + "%"
        query = query.where(
            or_(
                OrderRow.coi.like(prefix),
                OrderRow.pseudonym.like(prefix),
                OrderRow.din.like(prefix),
            )
        )
    return query


def _cursor(row: OrderRow) -> str:
    data = json.dumps([row.created_at.isoformat(), row.id]).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, order_id = json.loads(raw)
        when = datetime.fromisoformat(moment)
        if when.tzinfo is None or not isinstance(order_id, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise Invalid(
            "not a cursor this server gave out; start without one", field="cursor"
        ) from None
    return when, order_id


def order_audit(ctx: ServiceContext, principal: Principal, order_id: str) -> list[AuditEntryView]:
    """Every audit entry about the order and its records, oldest first."""
    with ctx.reading() as session:
        row = load_order(session, principal, order_id)
        rows = session.scalars(
            select(AuditEntryRow)
            .where(
                or_(AuditEntryRow.entity_id == row.id, AuditEntryRow.entity_id.like(f"{row.id}/%"))
            )
            .order_by(AuditEntryRow.sequence)
        ).all()
    return [
        AuditEntryView(
            sequence=r.sequence,
            timestamp=r.timestamp,
            actor_id=r.actor_id,
            actor_name=r.actor_name,
            role=Role(r.role),
            action=r.action,
            entity_type=r.entity_type,
            entity_id=r.entity_id,
            changes=[tuple(c) for c in r.changes],
            reason_code=r.reason_code,
            reason_text=r.reason_text,
            hash=r.hash,
        )
        for r in rows
    ]


def order_steps(ctx: ServiceContext, principal: Principal, order_id: str) -> list[StepView]:
    """The lifecycle steps the order took, with their signatures, oldest first."""
    with ctx.reading() as session:
        row = load_order(session, principal, order_id)
        rows = session.scalars(
            select(OrderStepRow)
            .where(OrderStepRow.order_id == row.id)
            .order_by(OrderStepRow.at, OrderStepRow.id)
        ).all()
        return [step_view(session, r) for r in rows]


def aggregates(ctx: ServiceContext, principal: Principal) -> Aggregates:
    """Counts of orders by state, site and market, and open exceptions."""
    principal.require({Role.PLANNER, Role.LOGISTICS}, "read aggregates")

    def counts(session: Session, column: object) -> list[CountRow]:
        rows = session.execute(
            select(column, func.count()).group_by(column).order_by(column)  # type: ignore[call-overload]
        ).all()
        return [CountRow(key=str(key) if key is not None else "(none)", count=n) for key, n in rows]

    with ctx.reading() as session:
        total = session.scalar(select(func.count()).select_from(OrderRow)) or 0
        open_ = session.scalar(
            select(func.count())
            .select_from(OrderExceptionRow)
            .where(OrderExceptionRow.closed_at.is_(None))
        )
        return Aggregates(
            orders=total,
            by_state=counts(session, OrderRow.state),
            by_site=counts(session, OrderRow.site),
            by_market=counts(session, OrderRow.market),
            open_exceptions=open_ or 0,
        )


def site_capacity(
    ctx: ServiceContext, principal: Principal, site: str, first: date | None, days: int
) -> SiteCapacity:
    """Manufacturing starts per day at a site: capacity and booked."""
    principal.require(
        {
            Role.PLANNER,
            Role.SITE_OPERATOR,
            Role.QA,
            Role.CENTER_COORDINATOR,
            Role.LOGISTICS,
            Role.ADMIN,
        },
        "read capacity",
    )
    if site not in {s.id for s in ctx.network.sites}:
        raise NotFound(f"no manufacturing site {site!r}", field="site")
    if not 1 <= days <= 366:
        raise Invalid("days must be 1-366", field="days")
    today = ctx.today()
    start = first or today
    if not 0 <= (start - today).days <= ctx.slots.horizon_days - days:
        raise Invalid(
            f"from ... from + days must lie within the {ctx.slots.horizon_days}-day booking "
            f"horizon starting {today}",
            field="from",
        )
    with ctx.reading() as session:
        cal = ctx.slots.snapshot(session, today)
    i = cal.site_index[site]
    d0 = cal.day(start)
    return SiteCapacity(
        site=site,
        site_name=ctx.network.site(site).name,
        days=[
            CapacityDay(
                day=cal.date_of(d), capacity=int(cal.slots[i, d]), booked=int(cal.booked[i, d])
            )
            for d in range(d0, d0 + days)
        ],
    )
