"""The center coordinator's home, and the order queues every role's home is made of.

A coordinator starts the day with what waits for them: apheresis due, products to
receive, infusions to give, patients enrolled but not yet booked. Below that, every
open order of the center with its next step and its planned dates, by stage. The
queues (:func:`order_queue`) are the service's order list, filtered and paged with its
cursor and counted, so every home shows exactly what the user may see.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from cartnet.api.deps import IDENTIFIER
from cartnet.ledger.lifecycle import OrderEvent, OrderState, transition_rule
from cartnet.ledger.roles import Role
from cartnet.service import orders, quality
from cartnet.service.errors import Invalid
from cartnet.service.schemas import OrderView
from cartnet.web.actions import EVENT_PAGES, Action, order_actions
from cartnet.web.page import Page, role_page

router = APIRouter()
PAGE_SIZE = 25
Coordinator = Annotated[Page, Depends(role_page(Role.CENTER_COORDINATOR))]
Cursor = Query(None, max_length=400, pattern=IDENTIFIER)
Search = Query(None, max_length=64)
OPEN_STATES: tuple[OrderState, ...] = tuple(s for s in OrderState if not s.is_terminal)
APHERESIS_DUE = timedelta(days=1)
"""A booked apheresis is "due" from the day before its planned day on."""
_CLOSING = frozenset({OrderEvent.CANCEL, OrderEvent.RECORD_PATIENT_LOST})


@dataclass(frozen=True, slots=True)
class Queue:
    """One page of a list of orders, the count of all of them and the next page's link."""

    items: list[OrderView]
    total: int
    next_url: str | None


def check_search(q: str | None) -> str | None:
    """The search text, if it is one a CoI, pseudonym or DIN can start with."""
    if q is not None and any(not (c.isalnum() or c in " -") for c in q):
        raise Invalid("search by CoI, pseudonym or DIN: letters, digits and dashes", field="q")
    return q or None


async def order_queue(
    page: Page,
    states: Collection[OrderState],
    *,
    cursor_name: str,
    cursor: str | None,
    search: str | None = None,
    limit: int = PAGE_SIZE,
) -> Queue:
    """Orders in ``states`` the user may see, a page at a time, counted.

    The next page's link keeps the page's other query parameters (filters, the cursors
    of the other queues) and sets ``cursor_name``.
    """
    ctx, who = page.ctx, page.principal
    found = await page.call(
        orders.list_orders, ctx, who, states=states, search=search, cursor=cursor, limit=limit
    )
    total = await page.call(orders.count_orders, ctx, who, states=states, search=search)
    next_url = None
    if found.next_cursor is not None:
        kept = [(k, v) for k, v in page.request.query_params.multi_items() if k != cursor_name]
        next_url = f"{page.request.url.path}?" + urlencode(
            [*kept, (cursor_name, found.next_cursor)]
        )
    return Queue(found.items, total, next_url)


def next_step(page: Page, order: OrderView) -> tuple[str, Action | None]:
    """The order's next lifecycle step in words, and its link if this user takes it."""
    mine = [a for a in order_actions(page.principal, order) if a.primary]
    steps = [e for e in order.allowed_events if e not in _CLOSING]
    if not steps:
        return "—", None
    event = steps[0]
    url = EVENT_PAGES[event].format(id=order.id)
    action = next((a for a in mine if a.url == url), None)
    rule = transition_rule(order.state, event)
    who = ", ".join(sorted(r.value.replace("_", " ") for r in rule.roles))
    return f"{event.description} ({who})", action


@router.get("/center")
async def center_home(
    page: Coordinator,
    state: OrderState | None = Query(None),
    q: str | None = Search,
    cursor: str | None = Cursor,
) -> Response:
    """What waits for the coordinator first, then the center's open orders by stage."""
    search = check_search(q)
    ctx, who = page.ctx, page.principal
    counts = [
        (s, await page.call(orders.count_orders, ctx, who, states=[s], search=search))
        for s in OrderState
    ]
    due = ctx.today() + APHERESIS_DUE
    todo: list[tuple[OrderView, str, Action | None]] = []
    waiting = await page.call(
        orders.list_orders,
        ctx,
        who,
        states=[
            OrderState.ENROLLED,
            OrderState.BOOKED,
            OrderState.SHIPPED_TO_CENTER,
            OrderState.DELIVERED,
        ],
        search=search,
        limit=orders.MAX_PAGE,
    )
    for order in waiting.items:
        if order.state is OrderState.BOOKED and (order.plan is None or order.plan.apheresis > due):
            continue
        text, action = next_step(page, order)
        todo.append((order, text, action))
    shown = [state] if state is not None else OPEN_STATES
    queue = await order_queue(page, shown, cursor_name="cursor", cursor=cursor, search=search)
    rows = [(o, *next_step(page, o)) for o in queue.items]
    exceptions = await page.call(quality.count_exceptions, ctx, who, closed=False)
    return page.render(
        "center/home.html",
        counts=counts,
        todo=todo,
        todo_more=waiting.next_cursor is not None,
        queue=queue,
        rows=rows,
        open_exceptions=exceptions,
        states=[(s.value, s.value.replace("_", " ")) for s in OrderState],
        form={"state": state.value if state else "", "q": q or ""},
        first_page=cursor is None,
    )
