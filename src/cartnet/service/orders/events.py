"""Order events after booking: closing an order, and manufacturing and QC outcomes.

Closing (cancel, patient lost) gives unused capacity back; the other events are signed
as the lifecycle rules say, asking for co-signers where more than one is needed.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartnet.ledger.chain import Change
from cartnet.ledger.lifecycle import OrderEvent, OrderState
from cartnet.service.access import Principal, load_order
from cartnet.service.context import ServiceContext
from cartnet.service.cosign import request_cosignature
from cartnet.service.errors import Conflict
from cartnet.service.orders.booking import change_text, held_claims
from cartnet.service.orders.view import order_view
from cartnet.service.schemas import (
    EventRequest,
    OrderView,
    Reason,
    StepResult,
)
from cartnet.service.slots import Claim, SlotKind, qc_claims
from cartnet.service.steps import Presigned, signatures_needed, step_view, take_step
from cartnet.service.trail import record_slots
from cartnet.store.tables import OrderExceptionRow, OrderRow

__all__ = ["apply_event", "close", "require_no_open_exceptions", "take_event"]


def close(
    ctx: ServiceContext, principal: Principal, order_id: str, event: OrderEvent, body: Reason
) -> OrderView:
    """Cancel the order or record the patient lost; unused capacity goes back."""
    with ctx.transaction() as session:
        row = load_order(session, principal, order_id, for_update=True)
        given = ctx.slots.give_back(session, held_claims(ctx, row))
        record_slots(ctx, session, principal, row.id, given)
        take_step(
            ctx,
            session,
            principal,
            row,
            event,
            reason_code=body.reason_code,
            reason_text=body.reason_text,
        )
        return order_view(ctx, session, row)


def apply_event(
    ctx: ServiceContext, principal: Principal, order_id: str, body: EventRequest
) -> StepResult:
    """Finish manufacturing, report OOS, or an OOS disposition, signed as the rules say."""
    with ctx.transaction() as session:
        row = load_order(session, principal, order_id, for_update=True)
        return take_event(ctx, session, principal, row, body)


def take_event(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    row: OrderRow,
    body: EventRequest,
    presigned: Presigned | None = None,
) -> StepResult:
    """The step of :func:`apply_event`, or its request for co-signers where needed."""
    event = OrderEvent(body.event)
    if event is OrderEvent.RELEASE_UNDER_EXPANDED_ACCESS:
        require_no_open_exceptions(session, row)
    if presigned is None and signatures_needed(ctx, row, event) > 1:
        return request_cosignature(
            ctx,
            session,
            principal,
            row,
            event,
            kind="event",
            payload=body.model_dump(mode="json", exclude={"signatures"}),
            details={},
            signatures=body.signatures,
            reason_code=body.reason_code,
            reason_text=body.reason_text,
        )
    changes: list[Change] = []
    if event is OrderEvent.REMANUFACTURE and row.state == OrderState.OUT_OF_SPECIFICATION:
        changes = _restart_manufacturing(ctx, session, principal, row)
    step = take_step(
        ctx,
        session,
        principal,
        row,
        event,
        reason_code=body.reason_code,
        reason_text=body.reason_text,
        signatures=body.signatures,
        changes=changes,
        presigned=presigned,
    )
    return StepResult(
        order=order_view(ctx, session, row), step=step_view(session, step), custody=None
    )


def _restart_manufacturing(
    ctx: ServiceContext, session: Session, principal: Principal, row: OrderRow
) -> list[Change]:
    """Re-manufacture from stored apheresis on the site's next free line, from today.

    Takes that manufacturing slot (and QC day, where QC is limited) and moves the rest
    of the plan with it; the changes go into the step's audit entry.
    """
    if row.site is None or row.start_on is None or row.release_on is None:
        return []
    today = ctx.today()
    calendar = ctx.slots.snapshot(session, today, sites=[row.site], centers=[])
    free = calendar.free_slots(row.site, 0, calendar.days - 1) > 0
    if not free.any():
        raise Conflict(
            f"{row.site} has no free manufacturing slot in the next {calendar.days} days",
            code="slot-taken",
        )
    start = calendar.date_of(int(free.argmax()))
    shift = start - row.start_on
    changes: list[Change] = []
    for name in ("start_on", "release_on", "delivery_on", "infusion_on"):
        old = getattr(row, name)
        if old is not None and shift:
            changes.append((name, change_text(old), change_text(old + shift)))
            setattr(row, name, old + shift)
    claims = [Claim(SlotKind.MANUFACTURING, row.site, start)]
    taken = ctx.slots.reserve(
        session, claims + qc_claims(calendar, row.site, row.release_on), today
    )
    record_slots(ctx, session, principal, row.id, taken)
    return changes


def require_no_open_exceptions(session: Session, row: OrderRow) -> None:
    open_ = session.scalars(
        select(OrderExceptionRow.id).where(
            OrderExceptionRow.order_id == row.id, OrderExceptionRow.closed_at.is_(None)
        )
    ).all()
    if open_:
        raise Conflict(
            f"order has {len(open_)} open exception(s) (ids "
            f"{', '.join(map(str, open_))}); QA must close them first",
            code="open-exceptions",
        )
