"""The manufacturing site's home: what arrives, what is made on which day and line, what leaves.

Incoming shipments come first, with a scan box: the operator scans the bag at the
dock and lands on its receipt page with the code filled in. The manufacturing queue
shows the next 14 days, each with the site's capacity (slots per day) and the day's
orders on lines 1..n in booking order; an order beyond the capacity is flagged. Below,
released products waiting for the courier. QA sees the same page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from cartnet.identity import ChainOfIdentityId, IdentifierError
from cartnet.ledger.lifecycle import OrderEvent, OrderState
from cartnet.ledger.roles import Role
from cartnet.service import orders, shipments
from cartnet.service.schemas import OrderView, ShipmentView
from cartnet.web.actions import EVENT_PAGES, Action, order_actions
from cartnet.web.center import Cursor, Queue, Search, check_search, order_queue
from cartnet.web.page import Page, role_page

router = APIRouter()
SiteUser = Annotated[Page, Depends(role_page(Role.SITE_OPERATOR, Role.QA))]
QUEUE_DAYS = 14
_QUEUED = (OrderState.BOOKED, OrderState.RECEIVED_AT_SITE, OrderState.IN_MANUFACTURING)
_BENCH = {
    EVENT_PAGES[OrderEvent.RECEIVE_AT_SITE],
    EVENT_PAGES[OrderEvent.START_MANUFACTURING],
    EVENT_PAGES[OrderEvent.COMPLETE_MANUFACTURING],
    EVENT_PAGES[OrderEvent.SHIP_TO_CENTER],
}


@dataclass(frozen=True, slots=True)
class Incoming:
    order: OrderView
    shipment: ShipmentView | None
    expected: date | None


@dataclass(frozen=True, slots=True)
class Slot:
    """An order on a line of a manufacturing day; ``line`` beyond capacity is flagged."""

    line: int
    order: OrderView
    actions: list[Action]
    over: bool


@dataclass(frozen=True, slots=True)
class Day:
    day: date | None
    """``None``: planned before today and not yet finished (late or still running)."""
    capacity: int | None
    slots: list[Slot]


def bench_actions(page: Page, order: OrderView) -> list[Action]:
    """The site's own steps on the order that this user may take now."""
    urls = {u.format(id=order.id) for u in _BENCH}
    return [a for a in order_actions(page.principal, order) if a.url in urls]


async def _incoming(
    page: Page, search: str | None, cursor: str | None
) -> tuple[Queue, list[Incoming]]:
    queue = await order_queue(
        page, [OrderState.SHIPPED_TO_SITE], cursor_name="in_cursor", cursor=cursor, search=search
    )
    rows = []
    for order in queue.items:
        sent = await page.call(shipments.shipments, page.ctx, page.principal, order.id)
        to_site = [s for s in sent if s.direction == "to_site"]
        expected = order.plan.start if order.plan is not None else None
        rows.append(Incoming(order, to_site[-1] if to_site else None, expected))
    return queue, rows


async def _manufacturing_days(page: Page, search: str | None) -> list[Day]:
    ctx, who = page.ctx, page.principal
    today = ctx.today()
    queued: list[OrderView] = []
    cursor = None
    while True:
        found = await page.call(
            orders.list_orders,
            ctx,
            who,
            states=_QUEUED,
            search=search,
            cursor=cursor,
            limit=orders.MAX_PAGE,
        )
        queued += found.items
        cursor = found.next_cursor
        if cursor is None:
            break
    capacity: dict[date, int] = {}
    if who.site is not None:
        horizon = min(QUEUE_DAYS, ctx.slots.horizon_days)
        cal = await page.call(orders.site_capacity, ctx, who, who.site, today, horizon)
        capacity = {d.day: d.capacity for d in cal.days}
    by_day: dict[date | None, list[OrderView]] = {}
    last = today + timedelta(days=QUEUE_DAYS - 1)
    for order in queued:
        start = order.plan.start if order.plan is not None else None
        if start is None or start > last:
            continue
        by_day.setdefault(start if start >= today else None, []).append(order)
    days = []
    if None in by_day:
        days.append(Day(None, None, _slots(page, by_day[None], None)))
    for offset in range(QUEUE_DAYS):
        moment = today + timedelta(days=offset)
        slots = capacity.get(moment)
        days.append(Day(moment, slots, _slots(page, by_day.get(moment, []), slots)))
    return days


def _slots(page: Page, day_orders: list[OrderView], capacity: int | None) -> list[Slot]:
    return [
        Slot(i, o, bench_actions(page, o), capacity is not None and i > capacity)
        for i, o in enumerate(day_orders, start=1)
    ]


@router.get("/site")
async def site_home(
    page: SiteUser,
    q: str | None = Search,
    in_cursor: str | None = Cursor,
    out_cursor: str | None = Cursor,
) -> Response:
    """Incoming shipments with the scan box, the manufacturing queue, outbound dispatch."""
    return await _home(page, q, in_cursor, out_cursor, {}, 200)


async def _home(
    page: Page,
    q: str | None,
    in_cursor: str | None,
    out_cursor: str | None,
    errors: dict[str, str],
    status: int,
    code: str = "",
) -> Response:
    search = check_search(q)
    incoming_queue, incoming = await _incoming(page, search, in_cursor)
    days = await _manufacturing_days(page, search)
    outbound = await order_queue(
        page, [OrderState.RELEASED], cursor_name="out_cursor", cursor=out_cursor, search=search
    )
    return page.render(
        "site/home.html",
        status=status,
        incoming_queue=incoming_queue,
        incoming=incoming,
        days=days,
        outbound=outbound,
        outbound_actions=[(o, bench_actions(page, o)) for o in outbound.items],
        form={"q": q or "", "code": code},
        errors=errors,
        today=page.ctx.today(),
    )


def scanned_coi(code: str) -> ChainOfIdentityId | None:
    """The CoI a scanner (or a person) typed, or ``None`` if it is not one."""
    try:
        return ChainOfIdentityId.parse(code.strip())
    except IdentifierError:
        return None


@router.get("/site/scan")
async def scan_to_receive(page: SiteUser, code: str = Query("", max_length=64)) -> Response:
    """Find the incoming order whose CoI was scanned and open its receipt page."""
    coi = scanned_coi(code) if code.strip() else None
    status = 422
    if not code.strip():
        message = "scan the bag's chain-of-identity code"
    elif coi is None:
        message = f"{code.strip()!r} is not a chain-of-identity code"
    else:
        found = await page.call(
            orders.list_orders,
            page.ctx,
            page.principal,
            states=[OrderState.SHIPPED_TO_SITE],
            search=str(coi),
            limit=2,
        )
        match = [o for o in found.items if o.coi == str(coi)]
        if match:
            target = EVENT_PAGES[OrderEvent.RECEIVE_AT_SITE].format(id=match[0].id)
            return page.redirect(target + "?" + urlencode({"scanned": code.strip()}))
        status = 404
        message = (
            f"no incoming shipment of {coi.eye_readable()} at this site; check the bag "
            "and the list of incoming shipments"
        )
    return await _home(page, None, None, None, {"code": message}, status, code.strip())
