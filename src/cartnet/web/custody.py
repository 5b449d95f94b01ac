"""Handoffs at the bench: scan the bag, say where and when, sign.

Each custody step has one form whose first field takes a barcode scanner's keystrokes
(the scanner types the chain-of-identity code and presses Enter). A bag of another
therapy is refused on the spot: the service keeps the refused scan and raises an
exception on the order before it answers 409, so the page says the refusal was
recorded and offers the form again for a new scan. Times are entered as local time
with the place's UTC offset and parsed strictly; the custody chain keeps that offset.
Which roles may record a step is the lifecycle table's decision, as in the service.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response
from pydantic import ValidationError

from cartnet.api.deps import IDENTIFIER
from cartnet.ledger.custody import CustodyStep
from cartnet.ledger.lifecycle import OrderEvent, OrderState, Transition
from cartnet.ledger.roles import Role
from cartnet.service import custody, orders
from cartnet.service.access import Principal
from cartnet.service.custody import STEP_EVENTS
from cartnet.service.errors import Conflict, Invalid, NotFound, ServiceError
from cartnet.service.schemas import CustodyRequest, OrderView, StepRequest
from cartnet.web.events import (
    cosigners_needed,
    signed_by,
    status_of,
    step_errors,
    step_rule,
    taken_or_pending,
    without_passwords,
)
from cartnet.web.page import AnyUser, Page, form_values, role_page

router = APIRouter()
OrderId = Path(max_length=64, pattern=IDENTIFIER)
Coordinator = Annotated[Page, Depends(role_page(Role.CENTER_COORDINATOR))]

STEP_PAGES: tuple[CustodyStep, ...] = tuple(
    s for s in CustodyStep if s not in (CustodyStep.RELEASE, CustodyStep.INFUSION)
)
"""Steps on /orders/{id}/custody/{step}; release and infusion have their own pages."""
_IN_TRANSIT = frozenset({OrderState.SHIPPED_TO_SITE, OrderState.SHIPPED_TO_CENTER})
OFFSETS: list[tuple[str, str]] = [
    (str(m), "UTC" + ("+" if m >= 0 else "-") + f"{abs(m) // 60:02d}:{abs(m) % 60:02d}")
    for m in range(-12 * 60, 14 * 60 + 1, 15)
]
"""Every UTC offset in use, in quarter hours (UTC-12:00 … UTC+14:00)."""
_TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")


def parse_local_time(text: str | None, offset: str | None) -> datetime:
    """A local time as typed (``2026-12-04T14:30``) with its offset in minutes, strictly.

    Raises :class:`Invalid` on the field to fix: ``at`` for the time, ``utc_offset``
    for an offset that is not one of :data:`OFFSETS`.
    """
    if not text:
        raise Invalid("required: the local date and time, e.g. 2026-12-04T14:30", field="at")
    if offset not in {value for value, _ in OFFSETS}:
        raise Invalid(
            "choose the UTC offset of the place (UTC-12:00 … UTC+14:00)", field="utc_offset"
        )
    for pattern in _TIME_FORMATS:
        try:
            local = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return local.replace(tzinfo=timezone(timedelta(minutes=int(offset or 0))))
    raise Invalid(f"{text!r} is not a date and time like 2026-12-04T14:30", field="at")


def parse_temperature(text: str | None) -> float | None:
    """The temperature in °C, or ``None`` when not taken; :class:`Invalid` otherwise."""
    if text is None:
        return None
    try:
        value = float(text.replace(",", ".").replace("−", "-"))
    except ValueError:
        raise Invalid(f"{text!r} is not a number of °C, e.g. -180", field="temperature_c") from None
    if not math.isfinite(value):
        raise Invalid("a temperature is a finite number of °C", field="temperature_c")
    return value


def _organisation(page: Page) -> str:
    who, net = page.principal, page.ctx.network
    if who.center is not None:
        return net.center(who.center).name
    if who.site is not None:
        return net.site(who.site).name
    return ""


def _defaults(page: Page) -> dict[str, str]:
    return {
        "organisation": _organisation(page),
        "at": page.ctx.now().strftime("%Y-%m-%dT%H:%M"),
        "utc_offset": "0",
    }


def _step(name: str) -> CustodyStep:
    step = next((s for s in STEP_PAGES if s.value == name), None)
    if step is None:
        pages = ", ".join(STEP_PAGES)
        raise NotFound(f"no custody page for {name!r}; steps: {pages} (and release, infusion)")
    return step


def _rule(principal: Principal, order: OrderView, step: CustodyStep) -> Transition | None:
    """The step's lifecycle rule (``None`` for a courier transfer), refused as the service does."""
    event = STEP_EVENTS[step]
    if event is None:
        if order.state not in _IN_TRANSIT:
            raise Conflict(
                f"a courier transfer needs the order in transit; it is {order.state.value}",
                code="illegal-transition",
            )
        principal.require({Role.LOGISTICS}, "record courier transfers")
        return None
    return step_rule(principal, order, event)


def _refusal(err: ValidationError | ServiceError) -> tuple[dict[str, str], bool]:
    """The messages by field, and whether the service kept a refused scan."""
    recorded = isinstance(err, ServiceError) and err.code == "coi-mismatch"
    return step_errors(err), recorded


@router.get("/orders/{order_id}/custody/{step}")
async def custody_form(page: AnyUser, step: str, order_id: str = OrderId) -> Response:
    """The handoff form: scan first, then place, time, temperature and signature."""
    handoff = _step(step)
    order = await page.call(orders.get_order, page.ctx, page.principal, order_id)
    rule = _rule(page.principal, order, handoff)
    form = _defaults(page)
    scanned = page.request.query_params.get("scanned", "").strip()
    if scanned:  # the site's scan box sent the operator here with the bag's code
        form["scanned"] = scanned
    return _render(page, order, handoff, rule, form, {}, False, 200)


@router.post("/orders/{order_id}/custody/{step}")
async def record_custody(page: AnyUser, step: str, order_id: str = OrderId) -> Response:
    form = await page.form()
    handoff = _step(step)
    ctx, who = page.ctx, page.principal
    order = await page.call(orders.get_order, ctx, who, order_id)
    rule = _rule(who, order, handoff)
    values = form_values(form)
    try:
        body = CustodyRequest.model_validate(
            {
                "step": handoff,
                "scanned": values.get("scanned"),
                "typed": "typed" in values,
                "organisation": values.get("organisation"),
                "place": values.get("place"),
                "at": parse_local_time(values.get("at"), values.get("utc_offset")),
                "temperature_c": parse_temperature(values.get("temperature_c")),
                "signatures": signed_by(page, values) if rule and rule.signature else [],
            }
        )
        result = await page.call(custody.record_custody, ctx, who, order_id, body)
    except (ValidationError, ServiceError) as err:
        errors, recorded = _refusal(err)
        shown = _kept(values, recorded)
        return _render(page, order, handoff, rule, shown, errors, recorded, status_of(err))
    if handoff is CustodyStep.RECEIPT_AT_SITE:
        return taken_or_pending(page, result, "/site")
    return taken_or_pending(page, result, f"/orders/{order_id}")


def signed_step_request(page: Page, values: dict[str, str]) -> StepRequest:
    """QA release or infusion as posted: the scan, where and when, the signatures."""
    return StepRequest.model_validate(
        {
            "scanned": values.get("scanned"),
            "typed": "typed" in values,
            "place": values.get("place"),
            "at": parse_local_time(values.get("at"), values.get("utc_offset")),
            "temperature_c": parse_temperature(values.get("temperature_c")),
            "signatures": signed_by(page, values),
        }
    )


def _kept(values: dict[str, str], recorded: bool) -> dict[str, str]:
    """What the form shows again: never the password; no scan after a refused one."""
    drop = ("scanned", "typed") if recorded else ()
    return {k: v for k, v in without_passwords(values).items() if k not in drop}


def _render(
    page: Page,
    order: OrderView,
    step: CustodyStep | None,
    rule: Transition | None,
    form: dict[str, Any],
    errors: dict[str, str],
    recorded: bool,
    status: int,
) -> Response:
    """A handoff's page, or the bedside infusion page when ``step`` is None."""
    return page.render(
        "custody/step.html" if step is not None else "custody/infusion.html",
        status=status,
        order=order,
        step=step,
        rule=rule,
        cosigners=cosigners_needed(page, order, rule),
        offsets=OFFSETS,
        form=form,
        errors=errors,
        recorded=recorded,
    )


@router.get("/orders/{order_id}/infusion")
async def infusion_form(page: Coordinator, order_id: str = OrderId) -> Response:
    """At the bedside: scan the bag, say where and when, sign."""
    order = await page.call(orders.get_order, page.ctx, page.principal, order_id)
    rule = step_rule(page.principal, order, OrderEvent.INFUSE)
    return _render(page, order, None, rule, _defaults(page), {}, False, 200)


@router.post("/orders/{order_id}/infusion")
async def record_infusion(page: Coordinator, order_id: str = OrderId) -> Response:
    form = await page.form()
    ctx, who = page.ctx, page.principal
    order = await page.call(orders.get_order, ctx, who, order_id)
    rule = step_rule(who, order, OrderEvent.INFUSE)
    values = form_values(form)
    try:
        body = signed_step_request(page, values)
        step = CustodyStep.INFUSION
        result = await page.call(custody.record_signed_step, ctx, who, order_id, step, body)
    except (ValidationError, ServiceError) as err:
        errors, recorded = _refusal(err)
        if isinstance(err, ServiceError) and err.status == 409 and not recorded:
            order = await page.call(orders.get_order, ctx, who, order_id)
        shown = _kept(values, recorded)
        return _render(page, order, None, rule, shown, errors, recorded, status_of(err))
    return taken_or_pending(page, result, f"/orders/{order_id}")
