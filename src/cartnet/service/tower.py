"""The control tower: the whole network's open orders, the ones at risk, and its exceptions.

The people who keep the network running (planners, logistics) manage it by exception:
they need every open order by stage with its age, the orders drifting from their plan
before anyone complains, and one queue of what went wrong anywhere (a refused
chain-of-identity scan, a temperature excursion, an out-of-specification batch, a
shipment that should have arrived), each saying who must act and since when. QA may
read the tower too when the settings allow it (``tower_qa_read``); they still act only
on their own site's exceptions, through :func:`cartnet.service.quality.close_exception`.

Everything here is read from the database at the moment of asking; the rules that make
an order "at risk" are pure functions of one order (:mod:`cartnet.service.tower_risks`) with their
thresholds in the settings, so they can be tested and explained one by one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from statistics import median

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cartnet.ledger.lifecycle import OrderState
from cartnet.ledger.roles import Role
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Forbidden, Invalid
from cartnet.service.orders.view import RELEASE_EVENTS
from cartnet.service.settings import ServiceSettings
from cartnet.service.tower_risks import (
    BEFORE_START,
    RELEASED_STATES,
    SHIPPING,
    AtRisk,
    OpenOrder,
    Risk,
    age_days,
    expected_arrival,
    risks_of,
)
from cartnet.store.tables import (
    CollectionRow,
    OrderExceptionRow,
    OrderRow,
    OrderStepRow,
    ShipmentRow,
)

TOWER_ROLES = frozenset({Role.PLANNER, Role.LOGISTICS})
"""Who always sees the control tower; QA too when ``tower_qa_read`` is set."""
OPEN_STATES: tuple[OrderState, ...] = tuple(s for s in OrderState if not s.is_terminal)
MAX_PAGE = 200


class Trouble(StrEnum):
    """The kinds of the network's exception queue."""

    COI_MISMATCH = "coi_mismatch"
    TEMPERATURE_EXCURSION = "temperature_excursion"
    OOS = "oos"
    LATE_SHIPMENT = "late_shipment"


STORED_KINDS = {
    "scan_mismatch": Trouble.COI_MISMATCH,
    "temperature_excursion": Trouble.TEMPERATURE_EXCURSION,
}
"""Exceptions stored on orders (QA closes them) and their kind in the queue."""


@dataclass(frozen=True, slots=True)
class StageCount:
    """Open orders in one state: how many, and how long they have been in it (days)."""

    state: OrderState
    count: int
    median_days: float
    oldest_days: float


@dataclass(frozen=True, slots=True)
class NetworkException:
    """One entry of the exception queue: what, on which order, who must act, since when."""

    kind: Trouble
    order_id: str
    site: str | None
    center: str
    detail: str
    since: datetime
    actor: Role
    organisation: str
    exception_id: int | None = None
    """The stored exception QA closes; ``None`` for a state (OOS) or a late shipment."""
    closable: bool = False
    """Whether the viewer may close it (QA of the order's site)."""


@dataclass(frozen=True, slots=True)
class Attention:
    """What needs the viewer's action now: the orders, for the bell in the header."""

    orders: int
    exceptions: int
    at_risk: int


# --- who may look -----------------------------------------------------------------------


def may_open(settings: ServiceSettings, principal: Principal) -> bool:
    """Whether ``principal`` may see the control tower."""
    return principal.role in TOWER_ROLES or (principal.role is Role.QA and settings.tower_qa_read)


def require_tower(ctx: ServiceContext, principal: Principal) -> None:
    """Refuse (403) everyone but planners, logistics and, if allowed, QA."""
    if not may_open(ctx.settings, principal):
        allowed = "planner, logistics" + (", qa" if ctx.settings.tower_qa_read else "")
        raise Forbidden(
            f"role {principal.role.value!r} may not open the control tower; roles that may: "
            + allowed
        )


# --- the open orders --------------------------------------------------------------------


def _open_orders(session: Session) -> list[OpenOrder]:
    """Every open order with when it entered its state, its collection, release, courier."""
    open_values = [s.value for s in OPEN_STATES]
    rows = list(
        session.scalars(
            select(OrderRow).where(OrderRow.state.in_(open_values)).order_by(OrderRow.created_at)
        )
    )
    entered = dict(
        session.execute(
            select(OrderStepRow.order_id, func.max(OrderStepRow.at))
            .join(OrderRow, OrderRow.id == OrderStepRow.order_id)
            .where(OrderRow.state.in_(open_values), OrderStepRow.to_state == OrderRow.state)
            .group_by(OrderStepRow.order_id)
        ).all()
    )
    collected = dict(
        session.execute(
            select(CollectionRow.order_id, func.max(CollectionRow.collected_at))
            .join(OrderRow, OrderRow.id == CollectionRow.order_id)
            .where(OrderRow.state.in_([s.value for s in BEFORE_START]))
            .group_by(CollectionRow.order_id)
        ).all()
    )
    released = dict(
        session.execute(
            select(OrderStepRow.order_id, func.max(OrderStepRow.at))
            .join(OrderRow, OrderRow.id == OrderStepRow.order_id)
            .where(
                OrderRow.state.in_([s.value for s in RELEASED_STATES]),
                OrderStepRow.event.in_(RELEASE_EVENTS),
            )
            .group_by(OrderStepRow.order_id)
        ).all()
    )
    shipped: dict[tuple[str, str], ShipmentRow] = {}
    for sent in session.scalars(
        select(ShipmentRow)
        .join(OrderRow, OrderRow.id == ShipmentRow.order_id)
        .where(OrderRow.state.in_([s.value for s in SHIPPING]))
        .order_by(ShipmentRow.created_at)
    ):
        shipped[(sent.order_id, sent.direction)] = sent
    found = []
    for row in rows:
        state = OrderState(row.state)
        plan = {
            name: day
            for name, day in (
                ("apheresis", row.apheresis_on),
                ("start", row.start_on),
                ("release", row.release_on),
                ("delivery", row.delivery_on),
                ("infusion", row.infusion_on),
            )
            if day is not None
        }
        shipment = shipped.get((row.id, SHIPPING.get(state, "")))
        found.append(
            OpenOrder(
                id=row.id,
                coi=row.coi,
                center=row.center,
                market=row.market,
                product=row.product,
                state=state,
                site=row.site,
                since=entered.get(row.id) or row.created_at,
                created_at=row.created_at,
                plan=plan,
                collected_at=collected.get(row.id),
                released_at=released.get(row.id),
                courier=None if shipment is None else shipment.courier,
                tracking=None if shipment is None else shipment.tracking,
            )
        )
    return found


def open_orders(ctx: ServiceContext, principal: Principal) -> list[OpenOrder]:
    """Every open order of the network, oldest first (for the map and the stage counts)."""
    require_tower(ctx, principal)
    with ctx.reading() as session:
        return _open_orders(session)


def stages(orders: Iterable[OpenOrder], now: datetime) -> list[StageCount]:
    """Open orders by state, in lifecycle order, with the median and oldest age in it."""
    ages: dict[OrderState, list[float]] = {s: [] for s in OPEN_STATES}
    for o in orders:
        ages[o.state].append(age_days(now - o.since))
    return [
        StageCount(s, len(a), round(median(a), 1) if a else 0.0, max(a, default=0.0))
        for s, a in ages.items()
    ]


# --- at risk ----------------------------------------------------------------------------


def _at_risk(ctx: ServiceContext, orders: Iterable[OpenOrder]) -> list[AtRisk]:
    now = ctx.now()
    found = []
    for o in orders:
        notes = risks_of(o, ctx.network, ctx.settings, now)
        if notes:
            found.append(AtRisk(o, notes))
    return sorted(found, key=lambda r: min(n.since for n in r.notes))


def _check_page(offset: int, limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be 1-{MAX_PAGE}", field="limit")
    if offset < 0:
        raise Invalid("offset must not be negative", field="offset")


def at_risk(
    ctx: ServiceContext,
    principal: Principal,
    *,
    risk: Risk | None = None,
    site: str | None = None,
    actor: Role | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[AtRisk], int]:
    """Open orders at risk, longest at risk first, filtered; one page and the count."""
    require_tower(ctx, principal)
    _check_page(offset, limit)
    with ctx.reading() as session:
        orders = _open_orders(session)
    found = [
        r
        for r in _at_risk(ctx, orders)
        if (site is None or r.order.site == site)
        and (risk is None or any(n.risk is risk for n in r.notes))
        and (actor is None or any(n.risk.actor is actor for n in r.notes))
    ]
    return found[offset : offset + limit], len(found)


# --- exceptions -------------------------------------------------------------------------


def _exceptions(
    ctx: ServiceContext, session: Session, principal: Principal, orders: list[OpenOrder]
) -> list[NetworkException]:
    network = ctx.network
    by_id = {o.id: o for o in orders}

    def site_name(site: str | None) -> str:
        return "the order's site" if site is None else network.site(site).name

    found: list[NetworkException] = []
    stored = session.execute(
        select(OrderExceptionRow, OrderRow.site, OrderRow.center)
        .join(OrderRow, OrderRow.id == OrderExceptionRow.order_id)
        .where(OrderExceptionRow.closed_at.is_(None))
    ).all()
    for row, site, center in stored:
        found.append(
            NetworkException(
                kind=STORED_KINDS.get(row.kind, Trouble.COI_MISMATCH),
                order_id=row.order_id,
                site=site,
                center=center,
                detail=row.detail,
                since=row.raised_at,
                actor=Role.QA,
                organisation=site_name(site),
                exception_id=row.id,
                closable=principal.role is Role.QA and site is not None and site == principal.site,
            )
        )
    now = ctx.now()
    for o in by_id.values():
        if o.state is OrderState.OUT_OF_SPECIFICATION:
            found.append(
                NetworkException(
                    kind=Trouble.OOS,
                    order_id=o.id,
                    site=o.site,
                    center=o.center,
                    detail="the batch is out of specification: QA decides to remanufacture, "
                    "rebook the apheresis or release under expanded access",
                    since=o.since,
                    actor=Role.QA,
                    organisation=site_name(o.site),
                )
            )
        arrival = expected_arrival(network, o)
        grace = timedelta(hours=ctx.settings.tower_shipment_grace_hours)
        if arrival is not None and now - arrival > grace:
            direction = "to the site" if o.state is OrderState.SHIPPED_TO_SITE else "to the center"
            tracking = f", tracking {o.tracking}" if o.tracking else ""
            found.append(
                NetworkException(
                    kind=Trouble.LATE_SHIPMENT,
                    order_id=o.id,
                    site=o.site,
                    center=o.center,
                    detail=f"shipment {direction} expected {arrival:%Y-%m-%d %H:%M} UTC"
                    f"{tracking}; not received",
                    since=arrival,
                    actor=Role.LOGISTICS,
                    organisation=o.courier or "the courier (no shipment recorded)",
                )
            )
    return sorted(found, key=lambda e: (e.since, e.order_id))


def network_exceptions(
    ctx: ServiceContext,
    principal: Principal,
    *,
    kind: Trouble | None = None,
    site: str | None = None,
    actor: Role | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[NetworkException], int]:
    """The network's open exceptions, oldest first, filtered; one page and the count."""
    require_tower(ctx, principal)
    _check_page(offset, limit)
    with ctx.reading() as session:
        found = _exceptions(ctx, session, principal, _open_orders(session))
    kept = [
        e
        for e in found
        if (kind is None or e.kind is kind)
        and (site is None or e.site == site)
        and (actor is None or e.actor is actor)
    ]
    return kept[offset : offset + limit], len(kept)


def _mine(principal: Principal, exception: NetworkException) -> bool:
    if exception.actor is not principal.role:
        return False
    return principal.role is not Role.QA or exception.site == principal.site


def attention(ctx: ServiceContext, principal: Principal) -> Attention | None:
    """What needs ``principal``'s action in the tower; ``None`` if they have no tower.

    Counted by order: an order with an exception and a risk for the same role is one
    thing to look at.
    """
    if not may_open(ctx.settings, principal):
        return None
    return overview(ctx, principal).attention


@dataclass(frozen=True, slots=True)
class Overview:
    """The tower's front page from one read: open orders, stages, risks and exceptions."""

    now: datetime
    orders: list[OpenOrder]
    stages: list[StageCount]
    at_risk: list[AtRisk]
    exceptions: list[NetworkException]
    attention: Attention


def overview(ctx: ServiceContext, principal: Principal) -> Overview:
    """Everything the tower's front page shows, read at one moment."""
    require_tower(ctx, principal)
    now = ctx.now()
    with ctx.reading() as session:
        orders = _open_orders(session)
        exceptions = _exceptions(ctx, session, principal, orders)
    risky = _at_risk(ctx, orders)
    mine = [e for e in exceptions if _mine(principal, e)]
    my_risks = [r for r in risky if any(n.risk.actor is principal.role for n in r.notes)]
    ids = {e.order_id for e in mine} | {r.order.id for r in my_risks}
    return Overview(
        now=now,
        orders=orders,
        stages=stages(orders, now),
        at_risk=risky,
        exceptions=exceptions,
        attention=Attention(orders=len(ids), exceptions=len(mine), at_risk=len(my_risks)),
    )
