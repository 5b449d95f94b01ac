"""``/orders``: enrol, offer, book, hand over, test, release, ship, infuse, audit."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response

from cartnet.api.deps import IDENTIFIER, Caller, Context
from cartnet.api.problems import READ, SCANS_LIMITED, SIGNED, WRITE
from cartnet.ledger.custody import CustodyStep
from cartnet.ledger.lifecycle import OrderEvent, OrderState
from cartnet.report.labels import render_label
from cartnet.service import custody, labels, orders, quality, shipments
from cartnet.service.idempotency import Idempotency
from cartnet.service.schemas import (
    AuditEntryView,
    BookChain,
    CloseException,
    CustodyRequest,
    CustodyView,
    Day,
    EventRequest,
    ExceptionView,
    NewOrder,
    NewQcResult,
    NewShipment,
    OfferList,
    OrderPage,
    OrderView,
    PatientIdentity,
    QcResultView,
    Reason,
    Reschedule,
    ShipmentView,
    StepRequest,
    StepResult,
    TemperatureLogResult,
)

router = APIRouter(prefix="/orders", tags=["orders"])
OrderId = Annotated[str, Path(max_length=64, pattern=IDENTIFIER, description="The order's id")]


@router.post("", response_model=OrderView, status_code=201, responses=WRITE)
def enroll(ctx: Context, caller: Caller, body: NewOrder) -> OrderView:
    """Enrol a patient of your center; the order gets its CoI id and a pseudonym."""
    return orders.enroll(ctx, caller, body)


@router.get("", response_model=OrderPage, responses=READ)
def list_orders(
    ctx: Context,
    caller: Caller,
    state: OrderState | None = None,
    site: Annotated[str | None, Query(max_length=64, pattern=IDENTIFIER)] = None,
    center: Annotated[str | None, Query(max_length=64, pattern=IDENTIFIER)] = None,
    product: Annotated[str | None, Query(max_length=64, pattern=IDENTIFIER)] = None,
    cursor: Annotated[str | None, Query(max_length=400, pattern=IDENTIFIER)] = None,
    limit: Annotated[int, Query(ge=1, le=orders.MAX_PAGE)] = 50,
) -> OrderPage:
    """Orders you may see, oldest first; follow ``next_cursor`` for more."""
    return orders.list_orders(
        ctx,
        caller,
        state=state,
        site=site,
        center=center,
        product=product,
        cursor=cursor,
        limit=limit,
    )


@router.get("/{order_id}", response_model=OrderView, responses=READ)
def get_order(ctx: Context, caller: Caller, order_id: OrderId) -> OrderView:
    """One order: identifiers, state, allowed events, planned chain (no patient identity)."""
    return orders.get_order(ctx, caller, order_id)


@router.get("/{order_id}/patient", response_model=PatientIdentity, responses=READ)
def patient(ctx: Context, caller: Caller, order_id: OrderId) -> PatientIdentity:
    """The patient's identity: the order's own center only; every read is audited."""
    return orders.patient_identity(ctx, caller, order_id)


@router.get("/{order_id}/offers", response_model=OfferList, responses=WRITE)
def offers(
    ctx: Context,
    caller: Caller,
    order_id: OrderId,
    k: Annotated[int, Query(ge=1, le=50)] = 5,
    per_site: Annotated[int, Query(ge=1, le=10)] = 1,
    earliest_apheresis: Day | None = None,
) -> OfferList:
    """The best slot chains now, across the network, and why other sites cannot."""
    return orders.offers(
        ctx, caller, order_id, k=k, per_site=per_site, earliest_apheresis=earliest_apheresis
    )


@router.post("/{order_id}/booking", response_model=OrderView, responses=WRITE)
async def book(
    request: Request,
    ctx: Context,
    caller: Caller,
    order_id: OrderId,
    body: BookChain,
    idempotency_key: Annotated[str | None, Header(max_length=200, pattern=r"^[ -~]+$")] = None,
) -> OrderView:
    """Book a chain atomically. Retry with the same ``Idempotency-Key`` safely."""
    from starlette.concurrency import run_in_threadpool

    key = None
    if idempotency_key is not None:
        key = Idempotency.of(
            idempotency_key, "POST", request.url.path, await request.body(), ctx.now()
        )
    return await run_in_threadpool(orders.book, ctx, caller, order_id, body, key)


@router.post("/{order_id}/reschedule", response_model=OrderView, responses=WRITE)
def reschedule(ctx: Context, caller: Caller, order_id: OrderId, body: Reschedule) -> OrderView:
    """Move a booked chain before the apheresis, with a reason code."""
    return orders.reschedule(ctx, caller, order_id, body)


@router.post("/{order_id}/cancel", response_model=OrderView, responses=WRITE)
def cancel(ctx: Context, caller: Caller, order_id: OrderId, body: Reason) -> OrderView:
    """Cancel the order, with a reason code; unused capacity is given back."""
    return orders.close(ctx, caller, order_id, OrderEvent.CANCEL, body)


@router.post("/{order_id}/patient-lost", response_model=OrderView, responses=WRITE)
def patient_lost(ctx: Context, caller: Caller, order_id: OrderId, body: Reason) -> OrderView:
    """Record that the patient progressed, became ineligible or died before infusion."""
    return orders.close(ctx, caller, order_id, OrderEvent.RECORD_PATIENT_LOST, body)


@router.post("/{order_id}/events", response_model=StepResult, responses=SIGNED)
def event(
    ctx: Context, caller: Caller, order_id: OrderId, body: EventRequest, response: Response
) -> StepResult:
    """Finish manufacturing, report OOS, or decide after OOS; signed where required.

    ``202`` with ``pending`` when the step awaits co-signature (see ``/cosignatures``).
    """
    return _accepted(response, orders.apply_event(ctx, caller, order_id, body))


def _accepted(response: Response, result: StepResult) -> StepResult:
    """A step that awaits co-signature was accepted, not taken: 202."""
    if result.pending is not None:
        response.status_code = 202
    return result


@router.post(
    "/{order_id}/custody-events",
    response_model=StepResult,
    status_code=201,
    responses={**SIGNED, **SCANS_LIMITED},
)
def custody_event(
    ctx: Context, caller: Caller, order_id: OrderId, body: CustodyRequest, response: Response
) -> StepResult:
    """Record a handoff. A scan of another identifier is refused (409) and kept.

    ``202`` with ``pending`` when the step awaits co-signature (see ``/cosignatures``).
    """
    return _accepted(response, custody.record_custody(ctx, caller, order_id, body))


@router.get("/{order_id}/custody-events", response_model=list[CustodyView], responses=READ)
def custody_events(ctx: Context, caller: Caller, order_id: OrderId) -> list[CustodyView]:
    """The chain of custody: every handoff, refused scans included, in time order."""
    return custody.custody_chain(ctx, caller, order_id)


@router.post(
    "/{order_id}/qc-results", response_model=QcResultView, status_code=201, responses=WRITE
)
def add_qc_result(
    ctx: Context, caller: Caller, order_id: OrderId, body: NewQcResult
) -> QcResultView:
    """Record a QC release test result of the batch in QC (site operators, QA)."""
    return quality.add_qc_result(ctx, caller, order_id, body)


@router.get("/{order_id}/qc-results", response_model=list[QcResultView], responses=READ)
def qc_results(ctx: Context, caller: Caller, order_id: OrderId) -> list[QcResultView]:
    """Every QC result recorded for the order's batches."""
    return quality.qc_results(ctx, caller, order_id)


@router.post(
    "/{order_id}/release", response_model=StepResult, responses={**SIGNED, **SCANS_LIMITED}
)
def release(
    ctx: Context, caller: Caller, order_id: OrderId, body: StepRequest, response: Response
) -> StepResult:
    """QA batch release with e-signature (password re-entry); QC must have passed."""
    result = custody.record_signed_step(ctx, caller, order_id, CustodyStep.RELEASE, body)
    return _accepted(response, result)


@router.post(
    "/{order_id}/infusion", response_model=StepResult, responses={**SIGNED, **SCANS_LIMITED}
)
def infusion(
    ctx: Context, caller: Caller, order_id: OrderId, body: StepRequest, response: Response
) -> StepResult:
    """Record the infusion, after a bedside scan of the bag, with e-signature."""
    result = custody.record_signed_step(ctx, caller, order_id, CustodyStep.INFUSION, body)
    return _accepted(response, result)


@router.post("/{order_id}/shipments", response_model=ShipmentView, status_code=201, responses=WRITE)
def create_shipment(
    ctx: Context, caller: Caller, order_id: OrderId, body: NewShipment
) -> ShipmentView:
    """Open a shipment to the site or back to the center; its limits follow the material."""
    return shipments.create_shipment(ctx, caller, order_id, body)


@router.get("/{order_id}/shipments", response_model=list[ShipmentView], responses=READ)
def list_shipments(ctx: Context, caller: Caller, order_id: OrderId) -> list[ShipmentView]:
    """The order's shipments, with their temperature limits and logger files."""
    return shipments.shipments(ctx, caller, order_id)


@router.post(
    "/{order_id}/shipments/{shipment_id}/temperature-log",
    response_model=TemperatureLogResult,
    status_code=201,
    responses=WRITE,
)
def temperature_log(
    ctx: Context,
    caller: Caller,
    order_id: OrderId,
    shipment_id: Annotated[str, Path(max_length=64, pattern=IDENTIFIER)],
    body: Annotated[
        bytes, Body(media_type="text/csv", description="Logger CSV: timestamp,temperature_c")
    ],
) -> TemperatureLogResult:
    """Upload a logger file; each excursion raises an exception on the order."""
    return shipments.upload_temperature_log(ctx, caller, order_id, shipment_id, body)


@router.get("/{order_id}/exceptions", response_model=list[ExceptionView], responses=READ)
def exceptions(ctx: Context, caller: Caller, order_id: OrderId) -> list[ExceptionView]:
    """Refused scans and temperature excursions on the order, open and closed."""
    return quality.order_exceptions(ctx, caller, order_id)


@router.post(
    "/{order_id}/exceptions/{exception_id}/close", response_model=ExceptionView, responses=WRITE
)
def close_exception(
    ctx: Context,
    caller: Caller,
    order_id: OrderId,
    exception_id: Annotated[int, Path(ge=1, le=2**62)],
    body: CloseException,
) -> ExceptionView:
    """QA closes an exception after review, with a reason."""
    return quality.close_exception(ctx, caller, order_id, exception_id, body)


@router.get("/{order_id}/audit", response_model=list[AuditEntryView], responses=READ)
def audit(ctx: Context, caller: Caller, order_id: OrderId) -> list[AuditEntryView]:
    """The order's audit trail: every change, who, when, old and new, the reason."""
    return orders.order_audit(ctx, caller, order_id)


@router.get(
    "/{order_id}/label",
    responses={
        **READ,
        200: {
            "content": {"image/png": {}, "application/pdf": {}},
            "description": "The printable label",
        },
    },
    response_class=Response,
)
def label(
    ctx: Context,
    caller: Caller,
    order_id: OrderId,
    format: Literal["png", "pdf"] = "png",
) -> Response:
    """A printable label: CoI and DIN with check characters and Code 128 bar codes."""
    content = labels.label_content(ctx, caller, order_id)
    media = "image/png" if format == "png" else "application/pdf"
    return Response(render_label(content, format), media_type=media)
