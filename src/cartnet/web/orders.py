"""The order list and the order page: every role's view of the orders it may see.

The list filters by state, site, center, product and a CoI / pseudonym / DIN search,
pages with the service's cursor and shows the count of all matches. The order page is
the record of one therapy: planned against actual steps, the chain of custody, QC,
shipments, exceptions and the audit trail, with the actions the user may take now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from cartnet.api.deps import IDENTIFIER
from cartnet.ledger.lifecycle import OrderEvent, OrderState
from cartnet.ledger.roles import Role
from cartnet.service import custody, orders, quality, shipments
from cartnet.service.errors import Invalid
from cartnet.service.schemas import OrderView, StepView
from cartnet.web.actions import order_actions
from cartnet.web.page import AnyUser

router = APIRouter()
PAGE_SIZE = 25
OrderId = Path(max_length=64, pattern=IDENTIFIER)
_Filter = Query(None, max_length=64)

_PLANNED_STEPS: tuple[tuple[str, str, tuple[OrderEvent, ...]], ...] = (
    ("Apheresis", "apheresis", (OrderEvent.COLLECT_APHERESIS,)),
    ("Manufacturing start", "start", (OrderEvent.START_MANUFACTURING,)),
    (
        "QA release",
        "release",
        (OrderEvent.RELEASE, OrderEvent.RELEASE_UNDER_EXPANDED_ACCESS),
    ),
    ("Delivery to the center", "delivery", (OrderEvent.RECEIVE_AT_CENTER,)),
    ("Infusion", "infusion", (OrderEvent.INFUSE,)),
)
"""The planned chain's dates and the steps that fulfil them, for the timeline."""


@dataclass(frozen=True, slots=True)
class Milestone:
    """One row of the timeline: the planned day and what actually happened."""

    name: str
    planned: date | None
    done: StepView | None
    late: bool


def timeline(order: OrderView, steps: list[StepView], today: date) -> list[Milestone]:
    """Planned against actual: each planned date with the step that met it, if any.

    A milestone is late when it was done after its planned day, or is still open and its
    day has passed. The latest matching step counts (a re-manufactured batch is released
    again).
    """
    rows = []
    for name, attribute, events in _PLANNED_STEPS:
        planned = None if order.plan is None else getattr(order.plan, attribute)
        done = next((s for s in reversed(steps) if s.event in events), None)
        if done is not None:
            late = planned is not None and done.at.date() > planned
        else:
            late = planned is not None and planned < today and not order.state.is_terminal
        rows.append(Milestone(name, planned, done, late))
    return rows


@router.get("/orders")
async def order_list(
    page: AnyUser,
    state: list[OrderState] = Query([]),
    site: str | None = _Filter,
    center: str | None = _Filter,
    product: str | None = _Filter,
    q: str | None = Query(None, max_length=64),
    cursor: str | None = Query(None, max_length=400, pattern=IDENTIFIER),
) -> Response:
    """Every order the user may see, filtered, a page at a time, with the total count."""
    filters: dict[str, Any] = {
        "states": state,
        "site": site or None,
        "center": center or None,
        "product": product or None,
        "search": q or None,
    }
    if q is not None and any(not (c.isalnum() or c in " -") for c in q):
        raise Invalid("search by CoI, pseudonym or DIN: letters, digits and dashes", field="q")
    ctx, who = page.ctx, page.principal
    found = await page.call(orders.list_orders, ctx, who, cursor=cursor, limit=PAGE_SIZE, **filters)
    total = await page.call(orders.count_orders, ctx, who, **filters)
    query = [("state", s.value) for s in state] + [
        (k, v) for k, v in (("site", site), ("center", center), ("product", product), ("q", q)) if v
    ]
    next_url = None
    if found.next_cursor is not None:
        next_url = "/orders?" + urlencode([*query, ("cursor", found.next_cursor)])
    net = ctx.network
    return page.render(
        "orders/list.html",
        orders=found.items,
        total=total,
        next_url=next_url,
        states=list(OrderState),
        chosen={s.value for s in state},
        form={
            k: v or ""
            for k, v in (("site", site), ("center", center), ("product", product), ("q", q))
        },
        sites=[(s.id, s.name) for s in net.sites],
        centers=[(c.id, c.name) for c in net.treatment_centers]
        if who.role is not Role.CENTER_COORDINATOR
        else [],
        products=[(p.id, p.name) for p in net.products],
        first_page=cursor is None,
    )


@router.get("/orders/{order_id}")
async def order_page(page: AnyUser, order_id: str = OrderId) -> Response:
    """One order: its record, timeline, custody chain, QC, shipments, exceptions, trail."""
    ctx, who = page.ctx, page.principal
    order = await page.call(orders.get_order, ctx, who, order_id)
    steps = await page.call(orders.order_steps, ctx, who, order_id)
    chain = await page.call(custody.custody_chain, ctx, who, order_id)
    results = await page.call(quality.qc_results, ctx, who, order_id)
    found_exceptions = await page.call(quality.order_exceptions, ctx, who, order_id)
    sent = await page.call(shipments.shipments, ctx, who, order_id)
    trail = await page.call(orders.order_audit, ctx, who, order_id)
    net = ctx.network
    return page.render(
        "orders/order.html",
        order=order,
        center=net.center(order.center),
        site=None if order.plan is None else net.site(order.plan.site),
        product=net.product(order.product),
        actions=order_actions(who, order),
        timeline=timeline(order, steps, ctx.today()),
        steps=steps,
        custody=chain,
        qc=results,
        exceptions=found_exceptions,
        open_exceptions=[e for e in found_exceptions if e.closed_at is None],
        shipments=sent,
        audit=trail,
        is_qa=who.role is Role.QA,
    )
