"""Plausible event times: not ahead of the server clock, not before what they follow.

Times of custody handoffs and QC tests are given by the bench (they happened before
they were entered), so they cannot be the server's. They are bounded instead: no more
than ``clock_skew_minutes`` ahead of the server clock, not before the order was created,
a handoff not before the order's previous accepted handoff, a QC test not before its
batch started manufacturing; each "not before" allows the same skew, for the clocks of
different organisations.
A refusal is a 422 naming the field and the bound it crossed; nothing is written.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartnet.ledger.custody import CustodyStep
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Invalid
from cartnet.store.tables import CustodyEventRow, OrderRow

CODE = "implausible-time"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def check_not_ahead(ctx: ServiceContext, at: datetime, field: str) -> None:
    """Refuse a time more than the allowed clock skew ahead of the server clock."""
    latest = ctx.now() + ctx.settings.clock_skew
    if at > latest:
        raise Invalid(
            f"{_iso(at)} is in the future: at most {ctx.settings.clock_skew_minutes:g} "
            f"minutes ahead of the server clock, that is {_iso(latest)}",
            field=field,
            code=CODE,
        )


def check_not_before(
    ctx: ServiceContext, at: datetime, then: datetime, what: str, field: str
) -> None:
    """Refuse a time before ``then``, the time of ``what`` (e.g. "the collection").

    The clock skew is allowed here too: two organisations' clocks (the hospital's and
    the courier's) may differ by as much as either may differ from the server's.
    """
    skew = ctx.settings.clock_skew
    if at < then - skew:
        raise Invalid(
            f"{_iso(at)} is before {what} at {_iso(then)}; allowing "
            f"{ctx.settings.clock_skew_minutes:g} minutes for clocks, the earliest is "
            f"{_iso(then - skew)}",
            field=field,
            code=CODE,
        )


def last_handoff(
    session: Session, order: OrderRow, step: CustodyStep | None = None
) -> CustodyEventRow | None:
    """The order's latest accepted custody event (of ``step``, if given)."""
    query = select(CustodyEventRow).where(
        CustodyEventRow.order_id == order.id, CustodyEventRow.accepted.is_(True)
    )
    if step is not None:
        query = query.where(CustodyEventRow.step == step.value)
    return session.scalars(
        query.order_by(CustodyEventRow.at.desc(), CustodyEventRow.id.desc()).limit(1)
    ).first()


def check_handoff_time(
    ctx: ServiceContext, session: Session, order: OrderRow, at: datetime, field: str = "at"
) -> None:
    """A custody event: not ahead of the clock, not before the order or its last handoff."""
    check_not_ahead(ctx, at, field)
    check_not_before(ctx, at, order.created_at, "the order's creation", field)
    previous = last_handoff(session, order)
    if previous is not None:
        check_not_before(ctx, at, previous.at, f"the previous handoff ({previous.step})", field)


def check_test_time(
    ctx: ServiceContext, session: Session, order: OrderRow, at: datetime, field: str = "tested_at"
) -> None:
    """A QC test: not ahead of the clock, not before its batch started manufacturing."""
    check_not_ahead(ctx, at, field)
    started = last_handoff(session, order, CustodyStep.START_MANUFACTURING)
    if started is not None:
        check_not_before(ctx, at, started.at, "the start of manufacturing of this batch", field)
    else:
        check_not_before(ctx, at, order.created_at, "the order's creation", field)
