"""The treatment center's pages: enrol a patient, book a slot chain, close an order.

Enrolment seals the patient's identity and goes straight to the offers: the best slot
chains across every site that may take the order, with the planned days, vein-to-vein
and cost, and why each other site cannot. Booking, re-booking after an out-of-
specification result and rescheduling share one form (a button per offer, the reason
above it where the lifecycle asks for one). Cancelling and recording a patient lost
ask for the reason codes the lifecycle table allows for that event.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import ValidationError

from cartnet.api.deps import IDENTIFIER
from cartnet.ledger.lifecycle import OrderEvent, OrderState, transition_rule
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Role
from cartnet.network.entities import Scope
from cartnet.report.labels import render_label
from cartnet.service import labels, orders
from cartnet.service.errors import Invalid, ServiceError
from cartnet.service.schemas import BookChain, NewOrder, OfferList, OrderView, Reason, Reschedule
from cartnet.web.events import reason_choices, status_of, step_errors, step_rule
from cartnet.web.page import Page, form_values, role_page

router = APIRouter()
OrderId = Path(max_length=64, pattern=IDENTIFIER)
Coordinator = Annotated[Page, Depends(role_page(Role.CENTER_COORDINATOR))]
Booker = Annotated[Page, Depends(role_page(Role.CENTER_COORDINATOR, Role.PLANNER))]
LabelPrinter = Annotated[
    Page, Depends(role_page(Role.CENTER_COORDINATOR, Role.SITE_OPERATOR, Role.QA))
]
OFFERS = 10
PER_SITE = 2
REBOOK_REASONS = transition_rule(OrderState.OUT_OF_SPECIFICATION, OrderEvent.REBOOK_APHERESIS)
RESCHEDULE_REASONS = tuple(
    c for c in ReasonCode if c not in (ReasonCode.EXPANDED_ACCESS, ReasonCode.NETWORK_OPTIMIZATION)
)
"""Why a coordinator moves a booked chain: any reason but expanded access (a QA release)
and network optimization (a planner's signed plan, applied on /planner)."""
_CLOSING = {"cancel": OrderEvent.CANCEL, "patient-lost": OrderEvent.RECORD_PATIENT_LOST}


# --- enrolment --------------------------------------------------------------------------


@router.get("/orders/new")
async def enrol_form(page: Coordinator) -> Response:
    """A new order for a patient of the coordinator's center."""
    form = {"earliest_apheresis": page.ctx.today().isoformat(), "scope": Scope.COMMERCIAL.value}
    return _render_enrol(page, form, {}, 200)


@router.post("/orders/new")
async def enrol(page: Coordinator) -> Response:
    form = await page.form()
    values = form_values(form)
    patient = {
        k: values.get(k) for k in ("given_name", "family_name", "date_of_birth", "hospital_number")
    }
    try:
        new = NewOrder.model_validate(
            {
                "product": values.get("product"),
                "scope": values.get("scope", Scope.COMMERCIAL.value),
                "trial": values.get("trial"),
                "earliest_apheresis": values.get("earliest_apheresis"),
                "patient": patient,
            }
        )
        order = await page.call(orders.enroll, page.ctx, page.principal, new)
    except (ValidationError, ServiceError) as err:
        return _render_enrol(page, values, step_errors(err), status_of(err))
    return page.redirect(f"/orders/{order.id}/offers")


def _render_enrol(
    page: Page, form: dict[str, str], errors: dict[str, str], status: int
) -> Response:
    net = page.ctx.network
    center = net.center(page.principal.center or "")
    return page.render(
        "coordinator/enrol.html",
        status=status,
        center=center,
        products=[(p, net.product(p).name) for p in center.products],
        scopes=[(s.value, s.value) for s in Scope],
        form=form,
        errors=errors,
    )


# --- offers, booking, rescheduling ------------------------------------------------------


def _earliest(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(
            f"{text!r} is not a date like 2026-12-24", field="earliest_apheresis"
        ) from None


def _offer_choice(text: str | None) -> tuple[str, str]:
    """The offer a button names, ``site|start``."""
    site, _, start = (text or "").partition("|")
    if not site or not start:
        raise Invalid("choose an offer with its Book button", field="offer")
    return site, start


async def _offers(page: Page, order: OrderView, earliest: date | None) -> OfferList:
    return await page.call(
        orders.offers,
        page.ctx,
        page.principal,
        order.id,
        k=OFFERS,
        per_site=PER_SITE,
        earliest_apheresis=earliest,
    )


async def _offers_page(
    page: Page,
    order_id: str,
    mode: str,
    earliest_text: str | None,
    form: dict[str, str],
    errors: dict[str, str],
    status: int,
) -> Response:
    """The offers and exclusions; ``mode`` is ``book`` or ``reschedule``."""
    order = await page.call(orders.get_order, page.ctx, page.principal, order_id)
    found: OfferList | None = None
    try:
        earliest = _earliest(earliest_text)
        found = await _offers(page, order, earliest)
    except ServiceError as err:
        errors = {**errors, **step_errors(err)}
        status = err.status if status == 200 else status
    if mode == "book":
        can_act = order.state in (OrderState.ENROLLED, OrderState.OUT_OF_SPECIFICATION)
        reasons = (
            reason_choices(REBOOK_REASONS.reason_codes)
            if order.state is OrderState.OUT_OF_SPECIFICATION
            else []
        )
    else:
        can_act = order.state is OrderState.BOOKED
        reasons = reason_choices(RESCHEDULE_REASONS)
    net = page.ctx.network
    return page.render(
        "coordinator/offers.html",
        status=status,
        order=order,
        mode=mode,
        can_act=can_act,
        reasons=reasons,
        found=found,
        earliest=earliest_text or "",
        center=net.center(order.center),
        booked_site=None if order.plan is None else net.site(order.plan.site),
        form=form,
        errors=errors,
    )


@router.get("/orders/{order_id}/offers")
async def offers_page(
    page: Booker,
    order_id: str = OrderId,
    earliest_apheresis: str | None = Query(None, max_length=32),
) -> Response:
    """Slot chains across every eligible site, and why the other sites are excluded."""
    return await _offers_page(page, order_id, "book", earliest_apheresis, {}, {}, 200)


@router.post("/orders/{order_id}/book")
async def book(page: Booker, order_id: str = OrderId) -> Response:
    form = await page.form()
    values = form_values(form)
    try:
        site, start = _offer_choice(values.get("offer"))
        body = BookChain.model_validate(
            {
                "site": site,
                "start": start,
                "reason_code": values.get("reason_code"),
                "reason_text": values.get("reason_text"),
            }
        )
        await page.call(orders.book, page.ctx, page.principal, order_id, body)
    except (ValidationError, ServiceError) as err:
        return await _offers_page(
            page,
            order_id,
            "book",
            values.get("earliest_apheresis"),
            values,
            step_errors(err),
            status_of(err),
        )
    return page.redirect(f"/orders/{order_id}")


@router.get("/orders/{order_id}/reschedule")
async def reschedule_form(
    page: Booker,
    order_id: str = OrderId,
    earliest_apheresis: str | None = Query(None, max_length=32),
) -> Response:
    """Offers for moving a booked chain, and the reason the move needs."""
    return await _offers_page(page, order_id, "reschedule", earliest_apheresis, {}, {}, 200)


@router.post("/orders/{order_id}/reschedule")
async def reschedule(page: Booker, order_id: str = OrderId) -> Response:
    form = await page.form()
    values = form_values(form)
    try:
        site, start = _offer_choice(values.get("offer"))
        code = values.get("reason_code")
        if code == ReasonCode.OTHER.value and not values.get("reason_text"):
            raise Invalid("the reason “other” needs the reason in words", field="reason_text")
        body = Reschedule.model_validate(
            {
                "site": site,
                "start": start,
                "reason_code": code,
                "reason_text": values.get("reason_text"),
            }
        )
        await page.call(orders.reschedule, page.ctx, page.principal, order_id, body)
    except (ValidationError, ServiceError) as err:
        return await _offers_page(
            page,
            order_id,
            "reschedule",
            values.get("earliest_apheresis"),
            values,
            step_errors(err),
            status_of(err),
        )
    return page.redirect(f"/orders/{order_id}")


# --- closing an order -------------------------------------------------------------------


def _closing(page: Page, order: OrderView, action: str) -> tuple[OrderEvent, list[Any]]:
    event = _CLOSING[action]
    rule = step_rule(page.principal, order, event)
    return event, reason_choices(rule.reason_codes)


@router.get("/orders/{order_id}/cancel")
async def cancel_form(page: Booker, order_id: str = OrderId) -> Response:
    """Cancel the order: a reason from the lifecycle's list; capacity goes back."""
    return await _close_form(page, order_id, "cancel")


@router.post("/orders/{order_id}/cancel")
async def cancel(page: Booker, order_id: str = OrderId) -> Response:
    return await _close(page, order_id, "cancel")


@router.get("/orders/{order_id}/patient-lost")
async def patient_lost_form(page: Coordinator, order_id: str = OrderId) -> Response:
    """Record that the patient progressed, became ineligible or died before infusion."""
    return await _close_form(page, order_id, "patient-lost")


@router.post("/orders/{order_id}/patient-lost")
async def patient_lost(page: Coordinator, order_id: str = OrderId) -> Response:
    return await _close(page, order_id, "patient-lost")


async def _close_form(page: Page, order_id: str, action: str) -> Response:
    order = await page.call(orders.get_order, page.ctx, page.principal, order_id)
    event, reasons = _closing(page, order, action)
    return _render_close(page, order, action, event, reasons, {}, {}, 200)


async def _close(page: Page, order_id: str, action: str) -> Response:
    form = await page.form()
    order = await page.call(orders.get_order, page.ctx, page.principal, order_id)
    event, reasons = _closing(page, order, action)
    values = form_values(form)
    try:
        body = Reason.model_validate(
            {"reason_code": values.get("reason_code"), "reason_text": values.get("reason_text")}
        )
        await page.call(orders.close, page.ctx, page.principal, order_id, event, body)
    except (ValidationError, ServiceError) as err:
        errors = step_errors(err)
        status = status_of(err)
        return _render_close(page, order, action, event, reasons, values, errors, status)
    return page.redirect(f"/orders/{order_id}")


def _render_close(
    page: Page,
    order: OrderView,
    action: str,
    event: OrderEvent,
    reasons: list[Any],
    form: dict[str, str],
    errors: dict[str, str],
    status: int,
) -> Response:
    return page.render(
        "coordinator/close.html",
        status=status,
        order=order,
        action=action,
        event=event,
        reasons=reasons,
        form=form,
        errors=errors,
    )


# --- label and patient identity ---------------------------------------------------------


@router.get("/orders/{order_id}/label.pdf")
async def label_pdf(page: LabelPrinter, order_id: str = OrderId) -> Response:
    """The bag label as a PDF, 4 x 2 inches, for the label printer."""
    content = await page.call(labels.label_content, page.ctx, page.principal, order_id)
    pdf = await page.call(render_label, content, "pdf")
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="label-{content.coi}.pdf"'},
    )


@router.get("/orders/{order_id}/patient")
async def patient(page: Coordinator, order_id: str = OrderId) -> Response:
    """Who the patient is: the center's own coordinators only; every view is audited."""
    order = await page.call(orders.get_order, page.ctx, page.principal, order_id)
    identity = await page.call(orders.patient_identity, page.ctx, page.principal, order_id)
    return page.render("coordinator/patient.html", order=order, patient=identity)
