"""Logistics: what to pick up, what is on the road, and each order's shipments.

The logistics home lists apheresis bags waiting at centers and released products
waiting at sites (each with its handover page), and the orders in transit with the
time since the last handoff. An order's shipments page opens a shipment (direction,
courier, tracking), takes a temperature-logger CSV per shipment (a bad line is named
next to the file field and nothing is stored) and plots each stored log against the
shipment's limits, excursions shaded, as server-rendered SVG.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from cartnet.api.deps import IDENTIFIER
from cartnet.ledger.custody import CustodyStep
from cartnet.ledger.lifecycle import OrderEvent, OrderState
from cartnet.ledger.roles import Role
from cartnet.service import custody, orders, shipments
from cartnet.service.errors import Invalid, ServiceError
from cartnet.service.schemas import NewShipment, OrderView
from cartnet.web.actions import EVENT_PAGES
from cartnet.web.center import Cursor, Search, check_search, order_queue
from cartnet.web.charts import temperature_chart
from cartnet.web.events import status_of
from cartnet.web.page import AnyUser, Page, field_errors, form_values, role_page

router = APIRouter()
OrderId = Path(max_length=64, pattern=IDENTIFIER)
ShipmentId = Path(max_length=64, pattern=IDENTIFIER)
Logistics = Annotated[Page, Depends(role_page(Role.LOGISTICS))]
LOG_FIELD = "log"
_HANDOFFS = frozenset(
    {
        CustodyStep.HANDOVER_TO_COURIER,
        CustodyStep.COURIER_TRANSFER,
        CustodyStep.HANDOVER_TO_COURIER_RETURN,
    }
)


@dataclass(frozen=True, slots=True)
class InTransit:
    order: OrderView
    since: datetime | None
    """The last accepted handoff to or between couriers."""
    hours: float | None


@router.get("/logistics")
async def logistics_home(
    page: Logistics,
    q: str | None = Search,
    out_cursor: str | None = Cursor,
    back_cursor: str | None = Cursor,
    transit_cursor: str | None = Cursor,
) -> Response:
    """Pick-ups at centers and sites, and what is in transit for how long."""
    search = check_search(q)
    ctx, who = page.ctx, page.principal
    outbound = await order_queue(
        page,
        [OrderState.APHERESIS_COLLECTED],
        cursor_name="out_cursor",
        cursor=out_cursor,
        search=search,
    )
    back = await order_queue(
        page, [OrderState.RELEASED], cursor_name="back_cursor", cursor=back_cursor, search=search
    )
    transit = await order_queue(
        page,
        [OrderState.SHIPPED_TO_SITE, OrderState.SHIPPED_TO_CENTER],
        cursor_name="transit_cursor",
        cursor=transit_cursor,
        search=search,
    )
    now = ctx.now()
    moving = []
    for order in transit.items:
        chain = await page.call(custody.custody_chain, ctx, who, order.id)
        handoffs = [c.at for c in chain if c.accepted and c.step in _HANDOFFS]
        since = handoffs[-1] if handoffs else None
        hours = None if since is None else (now - since) / timedelta(hours=1)
        moving.append(InTransit(order, since, hours))
    return page.render(
        "logistics/home.html",
        outbound=outbound,
        back=back,
        transit=transit,
        moving=moving,
        to_site=EVENT_PAGES[OrderEvent.SHIP_TO_SITE],
        to_center=EVENT_PAGES[OrderEvent.SHIP_TO_CENTER],
        form={"q": q or ""},
    )


def _directions(page: Page, order: OrderView) -> list[tuple[str, str]]:
    """The shipment directions this user may open for the order now."""
    role = page.principal.role
    return [
        (direction, text)
        for direction, text in (("to_site", "to the site"), ("to_center", "to the center"))
        if role in shipments.SHIPPERS[direction] and order.state in shipments.STATES[direction]
    ]


async def _page(
    page: Page,
    order_id: str,
    form: dict[str, str],
    errors: dict[str, str],
    status: int,
    failed_upload: str | None = None,
) -> Response:
    ctx, who = page.ctx, page.principal
    order = await page.call(orders.get_order, ctx, who, order_id)
    sent = await page.call(shipments.shipments, ctx, who, order_id)
    traces = await page.call(shipments.temperature_traces, ctx, who, order_id)
    charts = {
        s.id: [
            (t, temperature_chart(t.readings, t.low_c, t.high_c, t.excursions))
            for t in traces
            if t.shipment_id == s.id and t.readings
        ]
        for s in sent
    }
    role = who.role
    uploaders = {
        s.id
        for s in sent
        if role in shipments.SHIPPERS[s.direction] | {Role.QA} and not order.state.is_terminal
    }
    return page.render(
        "logistics/shipments.html",
        status=status,
        order=order,
        shipments=sent,
        charts=charts,
        uploaders=uploaders,
        directions=_directions(page, order),
        failed_upload=failed_upload,
        form=form,
        errors=errors,
    )


@router.get("/orders/{order_id}/shipments")
async def shipments_page(page: AnyUser, order_id: str = OrderId) -> Response:
    """The order's shipments, their temperature logs plotted, and the forms to add them."""
    return await _page(page, order_id, {}, {}, 200)


@router.post("/orders/{order_id}/shipments")
async def open_shipment(page: AnyUser, order_id: str = OrderId) -> Response:
    form = await page.form()
    values = form_values(form)
    try:
        body = NewShipment.model_validate(
            {
                "direction": values.get("direction"),
                "courier": values.get("courier"),
                "tracking": values.get("tracking"),
            }
        )
        await page.call(shipments.create_shipment, page.ctx, page.principal, order_id, body)
    except (ValidationError, ServiceError) as err:
        return await _page(page, order_id, values, field_errors(err), status_of(err))
    return page.redirect(f"/orders/{order_id}/shipments")


@router.post("/orders/{order_id}/shipments/{shipment_id}/log")
async def upload_log(
    page: AnyUser, shipment_id: str = ShipmentId, order_id: str = OrderId
) -> Response:
    """A logger's CSV export, as the API takes it; a bad line is named next to the field."""
    form = await page.form()
    upload = form.get(LOG_FIELD)
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("choose the logger's CSV file", field=LOG_FIELD)
        data = await upload.read(page.ctx.settings.max_upload_bytes + 1)
        await page.call(
            shipments.upload_temperature_log, page.ctx, page.principal, order_id, shipment_id, data
        )
    except ServiceError as err:
        if err.status in (401, 403, 404) and err.field != LOG_FIELD:
            raise
        errors = {LOG_FIELD: err.detail}
        return await _page(page, order_id, {}, errors, status_of(err), shipment_id)
    return page.redirect(f"/orders/{order_id}/shipments")
