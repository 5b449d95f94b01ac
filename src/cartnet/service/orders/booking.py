"""Booking: slot chain offers, booking a chain, moving it, and the capacity it holds.

Booking takes the chain's capacity in the database (:mod:`cartnet.service.slots`), in
the same transaction as the order's new state, all or nothing.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cartnet.ledger.chain import Change
from cartnet.ledger.entry import AuditAction
from cartnet.ledger.lifecycle import OrderEvent, OrderState
from cartnet.ledger.roles import Role
from cartnet.network.entities import Scope
from cartnet.schedule.capacity import Party
from cartnet.schedule.offers import Exclusion, OfferRequest, SlotChain
from cartnet.service.access import Principal, load_order
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Conflict, Invalid
from cartnet.service.idempotency import Idempotency
from cartnet.service.orders.enrolment import APHERESIS_AHEAD_DAYS
from cartnet.service.orders.view import order_view
from cartnet.service.quota_hold import lock_quotas
from cartnet.service.schemas import (
    BookChain,
    ExcludedSite,
    HeldQuota,
    Offer,
    OfferList,
    OrderView,
    Reschedule,
)
from cartnet.service.slots import Claim, SlotKind, chain_claims, qc_claims
from cartnet.service.steps import take_step
from cartnet.service.trail import record_slots
from cartnet.store.tables import OrderRow

__all__ = ["BOOKERS", "CHAIN_TAIL", "book", "change_text", "held_claims", "offers", "reschedule"]


BOOKERS = frozenset({Role.CENTER_COORDINATOR, Role.PLANNER})

CHAIN_TAIL = timedelta(days=90)
"""Past its start a chain's QC release lies within this; a booking loads no later days."""
_PRE_COLLECTION = frozenset({OrderState.ENROLLED, OrderState.BOOKED})
_PRE_START = frozenset(
    {
        OrderState.BOOKED,
        OrderState.APHERESIS_COLLECTED,
        OrderState.SHIPPED_TO_SITE,
        OrderState.RECEIVED_AT_SITE,
    }
)
_PRE_QC = _PRE_START | {OrderState.IN_MANUFACTURING}


def _request(row: OrderRow, earliest: date) -> OfferRequest:
    return OfferRequest(
        center=row.center,
        product=row.product,
        earliest_apheresis=earliest,
        scope=Scope(row.scope),
        trial=row.trial,
        enrolled=row.created_at.date(),
    )


def offers(
    ctx: ServiceContext,
    principal: Principal,
    order_id: str,
    *,
    k: int = 5,
    per_site: int = 1,
    earliest_apheresis: date | None = None,
) -> OfferList:
    """The best slot chains for the order now, and why other sites cannot take it."""
    principal.require(BOOKERS, "ask for slot offers")
    if not 1 <= k <= 50:
        raise Invalid("k must be 1-50", field="k")
    if not 1 <= per_site <= 10:
        raise Invalid("per_site must be 1-10", field="per_site")
    today = ctx.today()
    with ctx.reading() as session:
        row = load_order(session, principal, order_id)
        earliest = max(earliest_apheresis or row.earliest_apheresis, row.earliest_apheresis, today)
        if earliest > today + timedelta(days=APHERESIS_AHEAD_DAYS):
            raise Invalid(f"{earliest} is beyond the booking horizon", field="earliest_apheresis")
        planner = ctx.slots.planner(session, today, centers=[row.center])
        found = planner.offers(_request(row, earliest), k=k, per_site=per_site, today=today)
    party = Party(row.center, row.market, row.trial)
    return OfferList(
        order_id=order_id,
        market=found.market,
        offers=[Offer(**{f: getattr(c, f) for f in Offer.model_fields}) for c in found.chains],
        excluded=[ExcludedSite(**e.as_dict()) for e in found.excluded],
        held=[
            HeldQuota(
                site=u.quota.site,
                site_name=ctx.network.site(u.quota.site).name,
                holder_kind=u.quota.holder_kind.value,
                holder=u.quota.holder,
                period_start=u.quota.start,
                period_end=u.quota.end,
                release_days=u.quota.release_days_ahead,
                unused=u.unused,
            )
            for u in planner.calendar.still_held(0)
            if not party.holds(u.quota)
        ],
    )


def _chain(
    ctx: ServiceContext, session: Session, row: OrderRow, site: str, start: date
) -> tuple[SlotChain, list[Claim]]:
    today = ctx.today()
    if site not in {s.id for s in ctx.network.sites}:
        raise Invalid(f"unknown manufacturing site {site!r}", field="site")
    horizon = today + timedelta(days=ctx.slots.horizon_days - 1)
    if not today < start <= horizon:
        raise Invalid(
            f"start {start} must be after today ({today}) and by {horizon}", field="start"
        )
    planner = ctx.slots.planner(
        session, today, sites=[site], centers=[row.center], until=start + CHAIN_TAIL
    )
    earliest = max(row.earliest_apheresis, today)
    found = planner.chain(_request(row, earliest), site, start, today=today)
    if isinstance(found, Exclusion):
        raise Conflict(f"{found.site_name}: {found.message}", code=found.reason.value)
    return found, chain_claims(found, row.center, planner.calendar)


def _plan_changes(row: OrderRow, chain: SlotChain | None) -> list[Change]:
    """Set the order's planned chain and say what changed, for the audit entry."""
    changes: list[Change] = []
    new = {
        "site": None if chain is None else chain.site,
        "apheresis_on": None if chain is None else chain.apheresis,
        "start_on": None if chain is None else chain.start,
        "release_on": None if chain is None else chain.release,
        "delivery_on": None if chain is None else chain.delivery,
        "infusion_on": None if chain is None else chain.infusion,
    }
    for name, value in new.items():
        old = getattr(row, name)
        if old != value:
            changes.append((name, change_text(old), change_text(value)))
            setattr(row, name, value)
    return changes


def change_text(value: object) -> str | None:
    """A planned value as the audit trail records it: dates as ISO text."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


def held_claims(ctx: ServiceContext, row: OrderRow) -> list[Claim]:
    """Capacity the order still holds and can give back: the parts not used yet."""
    state = OrderState(row.state)
    if row.site is None or row.start_on is None or row.apheresis_on is None:
        return []
    today = ctx.today()
    claims: list[Claim] = []
    if state in _PRE_COLLECTION and row.apheresis_on >= today:
        claims.append(Claim(SlotKind.APHERESIS, row.center, row.apheresis_on))
    if state in _PRE_START and row.start_on > today:
        claims.append(Claim(SlotKind.MANUFACTURING, row.site, row.start_on))
    if state in _PRE_QC and row.release_on is not None and row.release_on > today:
        claims += qc_claims(ctx.slots.snapshot_base(today), row.site, row.release_on)
    return claims


def book(
    ctx: ServiceContext,
    principal: Principal,
    order_id: str,
    body: BookChain,
    idempotency: Idempotency | None = None,
) -> OrderView:
    """Book the chosen chain, all or nothing: the slot, the apheresis, the QC day."""
    principal.require(BOOKERS, "book slot chains")
    try:
        with ctx.transaction() as session:
            if idempotency is not None:
                stored = idempotency.replay(session, principal)
                if stored is not None:
                    return OrderView.model_validate_json(stored)
            row = load_order(session, principal, order_id, for_update=True)
            state = OrderState(row.state)
            event = (
                OrderEvent.REBOOK_APHERESIS
                if state is OrderState.OUT_OF_SPECIFICATION
                else OrderEvent.BOOK_SLOT
            )
            if state not in (OrderState.ENROLLED, OrderState.OUT_OF_SPECIFICATION):
                raise Conflict(
                    f"order is {state.value}; book a chain for an enrolled order, or after an "
                    "out-of-specification result (use reschedule to move a booking)",
                    code="illegal-transition",
                )
            lock_quotas(session, ctx.today(), body.site)
            chain, claims = _chain(ctx, session, row, body.site, body.start)
            taken = ctx.slots.reserve(session, claims, ctx.today())
            record_slots(ctx, session, principal, row.id, taken)
            changes = _plan_changes(row, chain)
            take_step(
                ctx,
                session,
                principal,
                row,
                event,
                reason_code=body.reason_code,
                reason_text=body.reason_text,
                changes=changes,
            )
            view = order_view(ctx, session, row)
            if idempotency is not None:
                idempotency.remember(session, principal, view.model_dump_json())
            return view
    except IntegrityError:
        if idempotency is None:
            raise
        with ctx.transaction() as session:
            stored = idempotency.replay(session, principal)
        if stored is None:
            raise
        return OrderView.model_validate_json(stored)


def reschedule(
    ctx: ServiceContext,
    principal: Principal,
    order_id: str,
    body: Reschedule,
    *,
    expect: tuple[str, date] | None = None,
) -> OrderView:
    """Move a booked chain to another slot before the apheresis; with a reason.

    ``expect``: the (site, start) the caller saw the order booked on; if the booking
    changed since (a plan made earlier), the move is refused as stale, under the lock.
    """
    principal.require(BOOKERS, "reschedule bookings")
    with ctx.transaction() as session:
        row = load_order(session, principal, order_id, for_update=True)
        if OrderState(row.state) is not OrderState.BOOKED:
            raise Conflict(
                f"order is {row.state}; only a booked order before its apheresis "
                "can be rescheduled",
                code="illegal-transition",
            )
        if expect is not None and (row.site, row.start_on) != expect:
            raise Conflict(
                f"the booking changed since the plan was made: the plan moves it from "
                f"{expect[0]} starting {expect[1]}, it is now at {row.site} starting "
                f"{row.start_on}",
                code="stale-plan",
            )
        lock_quotas(session, ctx.today(), body.site)
        old_claims = held_claims(ctx, row)
        given = ctx.slots.give_back(session, old_claims)
        chain, claims = _chain(ctx, session, row, body.site, body.start)
        taken = ctx.slots.reserve(session, claims, ctx.today())
        record_slots(ctx, session, principal, row.id, [*given, *taken])
        changes = _plan_changes(row, chain)
        if not changes:
            raise Invalid("the order is already booked on this chain", field="start")
        row.updated_at = ctx.now()
        session.flush()
        ctx.record(
            session,
            principal,
            AuditAction.UPDATE,
            "order",
            row.id,
            changes,
            reason_code=body.reason_code,
            reason_text=body.reason_text,
        )
        return order_view(ctx, session, row)
