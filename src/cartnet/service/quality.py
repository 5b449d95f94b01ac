"""QC results of a batch, and the exceptions QA reviews and closes.

Results are recorded while the batch is in QC; QA release (:mod:`custody`) needs at
least one result and every one passed. An exception (a refused scan, a temperature
excursion) blocks release until QA closes it with a reason; closing is an audited
update, the exception itself stays.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from cartnet.ledger.entry import AuditAction
from cartnet.ledger.lifecycle import OrderEvent, OrderState
from cartnet.ledger.roles import Role
from cartnet.service.access import ORDER_READERS, Principal, load_order, visible_orders
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Conflict, Invalid, NotFound
from cartnet.service.schemas import (
    CloseException,
    ExceptionView,
    NewQcResult,
    QcResultView,
)
from cartnet.service.timing import check_test_time
from cartnet.store.evidence import written_fields
from cartnet.store.tables import OrderExceptionRow, OrderRow, OrderStepRow, QcResultRow

QC_RECORDERS = frozenset({Role.SITE_OPERATOR, Role.QA})


def qc_view(row: QcResultRow) -> QcResultView:
    return QcResultView(
        id=row.id,
        order_id=row.order_id,
        test=row.test,
        result=row.result,
        specification=row.specification,
        passed=row.passed,
        tested_at=row.tested_at,
        recorded_by=row.recorded_by,
    )


def exception_view(row: OrderExceptionRow) -> ExceptionView:
    return ExceptionView(
        id=row.id,
        order_id=row.order_id,
        kind=row.kind,
        detail=row.detail,
        raised_at=row.raised_at,
        raised_by=row.raised_by,
        closed_at=row.closed_at,
        closed_by=row.closed_by,
        closure_reason=row.closure_reason,
    )


def add_qc_result(
    ctx: ServiceContext, principal: Principal, order_id: str, body: NewQcResult
) -> QcResultView:
    principal.require(QC_RECORDERS, "record QC results")
    with ctx.transaction() as session:
        order = load_order(session, principal, order_id, for_update=True)
        if OrderState(order.state) is not OrderState.IN_QC:
            raise Conflict(
                f"order is {order.state}; QC results are recorded while it is in_qc",
                code="illegal-transition",
            )
        check_test_time(ctx, session, order, body.tested_at)
        row = QcResultRow(
            order_id=order.id,
            test=body.test,
            result=body.result,
            specification=body.specification,
            passed=body.passed,
            tested_at=body.tested_at,
            recorded_at=ctx.now(),
            recorded_by=principal.user_id,
        )
        ctx.add_record(
            session,
            principal,
            row,
            "qc_result",
            lambda r: f"{order.id}/qc/{r.id}",
            written_fields("qc_results"),
        )
        return qc_view(row)


def raise_exception(
    ctx: ServiceContext, session: Session, principal: Principal, exception: OrderExceptionRow
) -> None:
    """Put an exception on the order (QA reviews and closes it)."""
    ctx.add_record(
        session,
        principal,
        exception,
        "order_exception",
        lambda r: f"{r.order_id}/exception/{r.id}",
        written_fields("order_exceptions"),
        action=AuditAction.EXCEPTION,
    )


def current_batch_results(session: Session, order: OrderRow) -> list[QcResultRow]:
    """QC results of the batch now in QC: those recorded since manufacturing last ended.

    A re-manufactured batch is tested anew; the failed results of the first batch stay
    on record but do not count against the second.
    """
    ended = session.scalar(
        select(func.max(OrderStepRow.at)).where(
            OrderStepRow.order_id == order.id,
            OrderStepRow.event == OrderEvent.COMPLETE_MANUFACTURING.value,
        )
    )
    query = select(QcResultRow).where(QcResultRow.order_id == order.id)
    if ended is not None:
        query = query.where(QcResultRow.recorded_at >= ended)
    return list(session.scalars(query.order_by(QcResultRow.id)))


def qc_results(ctx: ServiceContext, principal: Principal, order_id: str) -> list[QcResultView]:
    with ctx.reading() as session:
        order = load_order(session, principal, order_id)
        rows = session.scalars(
            select(QcResultRow).where(QcResultRow.order_id == order.id).order_by(QcResultRow.id)
        )
        return [qc_view(r) for r in rows]


def order_exceptions(
    ctx: ServiceContext, principal: Principal, order_id: str
) -> list[ExceptionView]:
    with ctx.reading() as session:
        order = load_order(session, principal, order_id)
        rows = session.scalars(
            select(OrderExceptionRow)
            .where(OrderExceptionRow.order_id == order.id)
            .order_by(OrderExceptionRow.id)
        )
        return [exception_view(r) for r in rows]


def close_exception(
    ctx: ServiceContext,
    principal: Principal,
    order_id: str,
    exception_id: int,
    body: CloseException,
) -> ExceptionView:
    """QA closes an exception after review, with a reason."""
    principal.require({Role.QA}, "close exceptions")
    with ctx.transaction() as session:
        order = load_order(session, principal, order_id, for_update=True)
        row = session.get(OrderExceptionRow, exception_id)
        if row is None or row.order_id != order.id:
            raise NotFound(
                f"order {order_id} has no exception {exception_id}", field="exception_id"
            )
        if row.closed_at is not None:
            raise Conflict(f"exception {exception_id} was closed on {row.closed_at.isoformat()}")
        row.closed_at = ctx.now()
        row.closed_by = principal.user_id
        row.closure_reason = body.reason_text
        session.flush()
        ctx.record(
            session,
            principal,
            AuditAction.UPDATE,
            "order_exception",
            f"{order.id}/exception/{row.id}",
            [
                ("closed_at", None, row.closed_at.isoformat()),
                ("closed_by", None, row.closed_by),
                ("closure_reason", None, body.reason_text),
            ],
            reason_code=body.reason_code,
            reason_text=body.reason_text,
        )
        return exception_view(row)


# --- queues -----------------------------------------------------------------------------


def _exceptions_query(principal: Principal, kind: str | None, closed: bool | None) -> Select[Any]:
    visible = visible_orders(principal, select(OrderRow.id)).subquery()
    query = select(OrderExceptionRow).where(OrderExceptionRow.order_id.in_(select(visible.c.id)))
    if kind is not None:
        query = query.where(OrderExceptionRow.kind == kind)
    if closed is True:
        query = query.where(OrderExceptionRow.closed_at.is_not(None))
    elif closed is False:
        query = query.where(OrderExceptionRow.closed_at.is_(None))
    return query


def open_exceptions(
    ctx: ServiceContext,
    principal: Principal,
    *,
    kind: str | None = None,
    closed: bool | None = False,
    after: int | None = None,
    limit: int = 50,
) -> tuple[list[ExceptionView], int | None]:
    """Exceptions on the orders ``principal`` may see, oldest first, for the review queue.

    ``closed``: ``False`` the open ones (default), ``True`` the closed ones, ``None`` all.
    Pages by exception id: pass the returned id as ``after`` for the next page (``None``
    on the last page).
    """
    principal.require(ORDER_READERS, "read exceptions")
    if not 1 <= limit <= 200:
        raise Invalid("limit must be 1-200", field="limit")
    query = _exceptions_query(principal, kind, closed)
    if after is not None:
        query = query.where(OrderExceptionRow.id > after)
    with ctx.reading() as session:
        rows = list(session.scalars(query.order_by(OrderExceptionRow.id).limit(limit + 1)))
    items = [exception_view(r) for r in rows[:limit]]
    return items, (rows[limit - 1].id if len(rows) > limit else None)


def count_exceptions(
    ctx: ServiceContext,
    principal: Principal,
    *,
    kind: str | None = None,
    closed: bool | None = False,
) -> int:
    """How many exceptions :func:`open_exceptions` would list with these filters."""
    principal.require(ORDER_READERS, "count exceptions")
    query = _exceptions_query(principal, kind, closed)
    with ctx.reading() as session:
        return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def current_qc_results(
    ctx: ServiceContext, principal: Principal, order_id: str
) -> list[QcResultView]:
    """The QC results that count for release: those of the batch now in QC."""
    with ctx.reading() as session:
        order = load_order(session, principal, order_id)
        return [qc_view(r) for r in current_batch_results(session, order)]
