"""Chain of custody: every handoff is scanned, checked against the order, and recorded.

A scan that is not this order's chain-of-identity id is refused with 409, and the
refusal is kept: the custody event (not accepted, with the reason) and an exception on
the order are committed before the refusal is returned, because a wrong bag at the
bench is exactly what the trail must show; up to a limit per order and per user
(settings ``refused_scans_per_*``), beyond which a refusal is answered 429 and not
written again. A handoff's time must be plausible (:mod:`cartnet.service.timing`). An
accepted handoff moves the order by its lifecycle step, with the step's e-signatures;
where the country asks for co-signers, the handoff waits for them
(:mod:`cartnet.service.cosign`) and is recorded with the last signature. Collection
gives the apheresis its DIN.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cartnet.identity import ChainOfIdentityId, DonationIdentificationNumber
from cartnet.identity.din import MAX_SEQUENCE
from cartnet.ledger.custody import CustodyStep, verify_scan
from cartnet.ledger.entry import AuditAction
from cartnet.ledger.lifecycle import IllegalTransition, OrderEvent, OrderState, transition_rule
from cartnet.ledger.roles import Role
from cartnet.service.access import Principal, load_order
from cartnet.service.context import ServiceContext
from cartnet.service.cosign import request_cosignature
from cartnet.service.errors import Conflict, Forbidden, Invalid, TooManyRequests
from cartnet.service.orders.events import require_no_open_exceptions
from cartnet.service.orders.view import order_view
from cartnet.service.quality import current_batch_results, raise_exception
from cartnet.service.schemas import CustodyRequest, CustodyView, StepRequest, StepResult
from cartnet.service.steps import Presigned, signatures_needed, step_view, take_step
from cartnet.service.timing import check_handoff_time
from cartnet.store.evidence import written_fields
from cartnet.store.tables import (
    CollectionRow,
    CustodyEventRow,
    OrderExceptionRow,
    OrderRow,
)

STEP_EVENTS: dict[CustodyStep, OrderEvent | None] = {
    CustodyStep.COLLECTION: OrderEvent.COLLECT_APHERESIS,
    CustodyStep.HANDOVER_TO_COURIER: OrderEvent.SHIP_TO_SITE,
    CustodyStep.COURIER_TRANSFER: None,
    CustodyStep.RECEIPT_AT_SITE: OrderEvent.RECEIVE_AT_SITE,
    CustodyStep.START_MANUFACTURING: OrderEvent.START_MANUFACTURING,
    CustodyStep.RELEASE: OrderEvent.RELEASE,
    CustodyStep.HANDOVER_TO_COURIER_RETURN: OrderEvent.SHIP_TO_CENTER,
    CustodyStep.RECEIPT_AT_CENTER: OrderEvent.RECEIVE_AT_CENTER,
    CustodyStep.INFUSION: OrderEvent.INFUSE,
}
"""The lifecycle step each handoff is; a courier-to-courier transfer changes no state."""

SCAN_MISMATCH = "scan_mismatch"
"""The kind of exception a refused scan raises."""
log = logging.getLogger("cartnet.service")

_IN_TRANSIT = frozenset({OrderState.SHIPPED_TO_SITE, OrderState.SHIPPED_TO_CENTER})


def custody_view(row: CustodyEventRow) -> CustodyView:
    return CustodyView(
        id=row.id,
        order_id=row.order_id,
        step=CustodyStep(row.step),
        actor_id=row.actor_id,
        actor_name=row.actor_name,
        role=Role(row.role),
        organisation=row.organisation,
        place=row.place,
        at=row.at.astimezone(UTC),
        utc_offset_minutes=row.utc_offset_minutes,
        temperature_c=row.temperature_c,
        scanned=row.scanned,
        accepted=row.accepted,
        refusal_reason=row.refusal_reason,
    )


def _check_allowed(principal: Principal, order: OrderRow, step: CustodyStep) -> None:
    """Sequence and authority checks before the scan is looked at."""
    state = OrderState(order.state)
    event = STEP_EVENTS[step]
    if event is None:
        if state not in _IN_TRANSIT:
            raise Conflict(
                f"a courier transfer needs the order in transit; it is {state.value}",
                code="illegal-transition",
            )
        principal.require({Role.LOGISTICS}, "record courier transfers")
        return
    try:
        rule = transition_rule(state, event)
    except IllegalTransition as err:
        raise Conflict(f"custody step {step.value}: {err}", code="illegal-transition") from None
    if principal.role not in rule.roles:
        names = ", ".join(sorted(r.value for r in rule.roles))
        raise Forbidden(
            f"role {principal.role.value!r} may not record {step.value}; roles: {names}"
        )


def record_custody(
    ctx: ServiceContext, principal: Principal, order_id: str, body: CustodyRequest
) -> StepResult:
    """Record a handoff; 409 for a wrong scan (kept as an exception) or a wrong state.

    A step that needs co-signers is not taken yet: the result's ``pending`` says so.
    """
    refusal: Conflict | TooManyRequests | None = None
    with ctx.transaction() as session:
        order = load_order(session, principal, order_id, for_update=True)
        _check_allowed(principal, order, body.step)
        check_handoff_time(ctx, session, order, body.at)
        scan = verify_scan(body.scanned, ChainOfIdentityId.parse(order.coi), typed=body.typed)
        if scan.refusal is not None:
            refusal = _refused_scan_limit(ctx, session, principal, order, scan.refusal)
            if refusal is None:
                event_row = _event_row(ctx, principal, order, body, scan.refusal)
                _refuse(ctx, session, principal, order, event_row, scan.refusal)
                refusal = Conflict(
                    f"scan refused: {scan.refusal}", field="scanned", code="coi-mismatch"
                )
        else:
            result = take_custody_step(ctx, session, principal, order, body)
    if refusal is not None:
        raise refusal
    return result


def _event_row(
    ctx: ServiceContext,
    principal: Principal,
    order: OrderRow,
    body: CustodyRequest,
    refusal: str | None,
) -> CustodyEventRow:
    offset = body.at.utcoffset()
    return CustodyEventRow(
        order_id=order.id,
        step=body.step.value,
        actor_id=principal.user_id,
        actor_name=principal.name,
        role=principal.role.value,
        organisation=body.organisation,
        place=body.place,
        at=body.at,
        utc_offset_minutes=0 if offset is None else int(offset.total_seconds() // 60),
        temperature_c=body.temperature_c,
        scanned=body.scanned,
        accepted=refusal is None,
        refusal_reason=refusal,
    )


def _refused_scan_limit(
    ctx: ServiceContext, session: Session, principal: Principal, order: OrderRow, reason: str
) -> TooManyRequests | None:
    """429 once this order or this user had their share of refused scans in the window.

    Below the limits every refused scan is recorded with its exception; beyond them the
    refusal is still answered (with the reason) but not written again, so a scanner
    stuck on the wrong bag, or a script, cannot flood the trail and the QA queue.
    """
    settings = ctx.settings
    now = ctx.now()
    recent = select(func.count(), func.min(OrderExceptionRow.raised_at)).where(
        OrderExceptionRow.kind == SCAN_MISMATCH,
        OrderExceptionRow.raised_at > now - settings.refused_scan_window,
    )
    limits = (
        ("order", OrderExceptionRow.order_id == order.id, settings.refused_scans_per_order),
        ("user", OrderExceptionRow.raised_by == principal.user_id, settings.refused_scans_per_user),
    )
    for scope, where, cap in limits:
        count, oldest = session.execute(recent.where(where)).one()
        if count >= cap:
            wait = oldest + settings.refused_scan_window - now
            retry = max(1, math.ceil(wait.total_seconds()))
            log.warning(
                "refused scan not recorded: %s limit %d reached (order %s, user %s)",
                scope,
                cap,
                order.id,
                principal.user_id,
            )
            return TooManyRequests(
                f"scan refused: {reason}. This {scope} had {count} refused scans in the last "
                f"{settings.refused_scan_window_minutes:g} minutes, the limit is {cap}; "
                f"this one is not recorded. Try again in {retry} s",
                retry_after=retry,
                field="scanned",
                code="refused-scan-limit",
            )
    return None


def _refuse(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    order: OrderRow,
    event_row: CustodyEventRow,
    reason: str,
) -> None:
    exception = OrderExceptionRow(
        order_id=order.id,
        kind=SCAN_MISMATCH,
        detail=f"{event_row.step} at {event_row.place}: scanned {event_row.scanned!r}: {reason}",
        raised_at=ctx.now(),
        raised_by=principal.user_id,
    )
    _record_event(ctx, session, principal, order, event_row)
    raise_exception(ctx, session, principal, exception)


def _record_event(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    order: OrderRow,
    event_row: CustodyEventRow,
) -> None:
    ctx.add_record(
        session,
        principal,
        event_row,
        "custody_event",
        lambda r: f"{order.id}/custody/{r.id}",
        written_fields("custody_events"),
        action=AuditAction.CUSTODY,
    )


def take_custody_step(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    order: OrderRow,
    body: CustodyRequest,
    presigned: Presigned | None = None,
    din: str | None = None,
) -> StepResult:
    """An accepted scan: the handoff and its lifecycle step, or a request for co-signers.

    With ``presigned`` (every co-signer has signed) the step is taken with those
    signatures and the collection's ``din`` that the first signature bound.
    """
    event = STEP_EVENTS[body.step]
    if event is None and body.signatures:
        raise Invalid(
            f"{body.step.value} is not a signed step; send no signatures", field="signatures"
        )
    if event is OrderEvent.RELEASE:
        _require_passed_qc(session, order)
    if event in (OrderEvent.RELEASE, OrderEvent.INFUSE):
        require_no_open_exceptions(session, order)
    cosigned = event is not None and presigned is None and signatures_needed(ctx, order, event) > 1
    changes = []
    if event is OrderEvent.COLLECT_APHERESIS:
        din = din or _allocate_din(ctx, session).code
        if not cosigned:
            ctx.add_record(
                session,
                principal,
                CollectionRow(order_id=order.id, din=din, collected_at=body.at),
                "collection",
                lambda r: f"{order.id}/collection/{r.id}",
                written_fields("collections"),
            )
            changes.append(("din", order.din, din))
            order.din = din
    details = {
        "step": body.step.value,
        "organisation": body.organisation,
        "place": body.place,
        "at": body.at.isoformat(),
        "temperature_c": body.temperature_c,
        "scanned": body.scanned,
        "din": din if event is OrderEvent.COLLECT_APHERESIS else order.din,
    }
    if cosigned and event is not None:
        return request_cosignature(
            ctx,
            session,
            principal,
            order,
            event,
            kind="custody",
            payload=body.model_dump(mode="json", exclude={"signatures"}),
            details=details,
            signatures=body.signatures,
        )
    event_row = _event_row(ctx, principal, order, body, None)
    step = None
    if event is not None:
        step = take_step(
            ctx,
            session,
            principal,
            order,
            event,
            signatures=body.signatures,
            details=details,
            changes=changes,
            presigned=presigned,
        )
    _record_event(ctx, session, principal, order, event_row)
    return StepResult(
        order=order_view(ctx, session, order),
        step=None if step is None else step_view(session, step),
        custody=custody_view(event_row),
    )


def _allocate_din(ctx: ServiceContext, session: Session) -> DonationIdentificationNumber:
    facility = ctx.settings.facility
    year = ctx.now().year
    number = ctx.next_number(session, f"din:{facility}:{year}")
    if number > MAX_SEQUENCE:
        raise Conflict(f"all DIN sequence numbers of {facility} for {year} are used")
    return DonationIdentificationNumber(facility, year % 100, number)


def _require_passed_qc(session: Session, order: OrderRow) -> None:
    results = current_batch_results(session, order)
    if not results:
        raise Conflict(
            "no QC results are recorded for this batch; QA cannot release it", code="qc-missing"
        )
    failed = [r.test for r in results if not r.passed]
    if failed:
        raise Conflict(
            f"QC tests failed: {', '.join(sorted(failed))}; report the batch out of "
            "specification instead",
            code="qc-failed",
        )


def record_signed_step(
    ctx: ServiceContext,
    principal: Principal,
    order_id: str,
    step: CustodyStep,
    body: StepRequest,
) -> StepResult:
    """QA release or infusion: a custody step whose organisation is the principal's own."""
    if principal.site is not None:
        organisation = ctx.network.site(principal.site).name
    elif principal.center is not None:
        organisation = ctx.network.center(principal.center).name
    else:
        organisation = principal.role.value
    request = CustodyRequest(
        step=step,
        scanned=body.scanned,
        typed=body.typed,
        organisation=organisation,
        place=body.place,
        at=body.at,
        temperature_c=body.temperature_c,
        signatures=body.signatures,
    )
    return record_custody(ctx, principal, order_id, request)


def custody_chain(ctx: ServiceContext, principal: Principal, order_id: str) -> list[CustodyView]:
    """Every custody event of the order, refused scans included, in the order recorded.

    That is the order of the lifecycle: a handoff is accepted only after the one before
    it. Sorting by the times given would let clocks that differ (within the allowed
    skew, :mod:`cartnet.service.timing`) put a handover before its collection.
    """
    with ctx.reading() as session:
        order = load_order(session, principal, order_id)
        rows = session.scalars(
            select(CustodyEventRow)
            .where(CustodyEventRow.order_id == order.id)
            .order_by(CustodyEventRow.id)
        )
        return [custody_view(r) for r in rows]
