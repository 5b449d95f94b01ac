"""When an open order is at risk: the rules, one order at a time, with their thresholds.

An order is at risk when it waits longer than ``tower_slot_wait_days`` for a slot, is
``tower_late_days`` behind a planned date of its chain (apheresis, manufacturing start,
release, delivery, infusion), is with a courier longer than the lane's mean transit
time plus ``tower_shipment_grace_hours``, carries fresh starting material within
``tower_stability_warning_hours`` of the end of its stability window, or is a released
product within ``tower_expiry_warning_days`` of its expiry. Each rule names the role
that can act on it. These are pure functions of one :class:`OpenOrder`, so each rule
is tested and explained on its own; :mod:`cartnet.service.tower` reads the orders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from cartnet.ledger.lifecycle import OrderState
from cartnet.ledger.roles import Role
from cartnet.network.entities import StartingMaterial
from cartnet.network.model import Network
from cartnet.service.settings import ServiceSettings

_PROGRESS: dict[OrderState, int] = {
    OrderState.ENROLLED: 0,
    OrderState.BOOKED: 1,
    OrderState.APHERESIS_COLLECTED: 2,
    OrderState.SHIPPED_TO_SITE: 3,
    OrderState.RECEIVED_AT_SITE: 4,
    OrderState.IN_MANUFACTURING: 5,
    OrderState.IN_QC: 6,
    OrderState.OUT_OF_SPECIFICATION: 6,
    OrderState.RELEASED: 7,
    OrderState.SHIPPED_TO_CENTER: 8,
    OrderState.DELIVERED: 9,
    OrderState.INFUSED: 10,
}
"""How far along the chain a state is, to tell whether a planned milestone was reached."""
_MILESTONES: tuple[tuple[str, str, int], ...] = (
    ("apheresis", "apheresis", 2),
    ("start", "manufacturing start", 5),
    ("release", "QA release", 7),
    ("delivery", "delivery", 9),
    ("infusion", "infusion", 10),
)
"""(plan field, name, progress that reaches it) of each planned date of a chain."""
SHIPPING = {OrderState.SHIPPED_TO_SITE: "to_site", OrderState.SHIPPED_TO_CENTER: "to_center"}
BEFORE_START = frozenset(
    {OrderState.APHERESIS_COLLECTED, OrderState.SHIPPED_TO_SITE, OrderState.RECEIVED_AT_SITE}
)
RELEASED_STATES = frozenset(
    {OrderState.RELEASED, OrderState.SHIPPED_TO_CENTER, OrderState.DELIVERED}
)


class Risk(StrEnum):
    """Why an open order is at risk, and the role that can do something about it."""

    WAITING_FOR_SLOT = "waiting_for_slot"
    LATE_AGAINST_PLAN = "late_against_plan"
    SHIPMENT_OVERDUE = "shipment_overdue"
    STABILITY = "stability_window"
    EXPIRY = "near_expiry"

    @property
    def actor(self) -> Role:
        return _RISK_ACTORS[self]


_RISK_ACTORS = {
    Risk.WAITING_FOR_SLOT: Role.PLANNER,
    Risk.LATE_AGAINST_PLAN: Role.PLANNER,
    Risk.SHIPMENT_OVERDUE: Role.LOGISTICS,
    Risk.STABILITY: Role.LOGISTICS,
    Risk.EXPIRY: Role.PLANNER,
}


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """What the tower knows of one open order (never the patient's identity)."""

    id: str
    coi: str
    center: str
    market: str
    product: str
    state: OrderState
    site: str | None
    since: datetime
    """When the order entered its present state."""
    created_at: datetime
    plan: dict[str, date] = field(default_factory=dict)
    """Planned dates by milestone (``apheresis``, ``start``, ...), when booked."""
    collected_at: datetime | None = None
    released_at: datetime | None = None
    courier: str | None = None
    tracking: str | None = None
    """Of the latest shipment in the direction the order travels now."""


@dataclass(frozen=True, slots=True)
class RiskNote:
    risk: Risk
    detail: str
    since: datetime


@dataclass(frozen=True, slots=True)
class AtRisk:
    order: OpenOrder
    notes: list[RiskNote]


def age_days(delta: timedelta) -> float:
    return round(delta.total_seconds() / 86400, 1)


def expected_arrival(network: Network, order: OpenOrder) -> datetime | None:
    """When a shipment in transit should arrive: handover plus the mean transit, or the
    end of the day its chain plans the arrival if that is later (a courier booked for the
    planned day is not late the evening before).

    The way back to the center is the delivery route: a batch made outside the center's
    market also goes through the market's import testing and QP certification.
    """
    direction = SHIPPING.get(order.state)
    if direction is None or order.site is None:
        return None
    if direction == "to_site":
        days = network.lane(order.center, order.site).mean_days
    else:
        days = network.delivery_route(order.site, order.center).mean_days
    transit = order.since + timedelta(days=days)
    planned = (
        order.plan.get("delivery")
        if direction == "to_center"
        else (start - timedelta(days=1) if (start := order.plan.get("start")) else None)
    )
    if planned is None:
        return transit
    return max(transit, datetime.combine(planned + timedelta(days=1), time(0, 0), tzinfo=UTC))


def risks_of(
    order: OpenOrder, network: Network, settings: ServiceSettings, now: datetime
) -> list[RiskNote]:
    """Why ``order`` is at risk now (empty: it is not), by the thresholds in ``settings``."""
    notes: list[RiskNote] = []
    today = now.date()
    if order.state is OrderState.ENROLLED:
        waited = now - order.since
        if waited > timedelta(days=settings.tower_slot_wait_days):
            notes.append(
                RiskNote(
                    Risk.WAITING_FOR_SLOT,
                    f"waiting {age_days(waited):g} days for a manufacturing slot "
                    f"(threshold {settings.tower_slot_wait_days} days)",
                    order.since,
                )
            )
    progress = _PROGRESS.get(order.state, 0)
    for key, name, reached in _MILESTONES:
        planned = order.plan.get(key)
        if planned is None or progress >= reached:
            continue
        behind = (today - planned).days
        if behind >= max(settings.tower_late_days, 1):
            notes.append(
                RiskNote(
                    Risk.LATE_AGAINST_PLAN,
                    f"{name} was planned for {planned.isoformat()}, {behind} day(s) ago; "
                    f"the order is {order.state.value.replace('_', ' ')}",
                    datetime.combine(planned, datetime.min.time(), tzinfo=now.tzinfo),
                )
            )
            break
    arrival = expected_arrival(network, order)
    if arrival is not None:
        overdue = now - arrival
        if overdue > timedelta(hours=settings.tower_shipment_grace_hours):
            courier = order.courier or "no shipment recorded"
            notes.append(
                RiskNote(
                    Risk.SHIPMENT_OVERDUE,
                    f"expected {arrival:%Y-%m-%d %H:%M} UTC ({courier}), "
                    f"{overdue.total_seconds() / 3600:.0f} h overdue",
                    arrival,
                )
            )
    product = network.product(order.product)
    if (
        order.state in BEFORE_START
        and product.starting_material is StartingMaterial.FRESH
        and product.stability_hours is not None
        and order.collected_at is not None
    ):
        ends = order.collected_at + timedelta(hours=product.stability_hours)
        if now >= ends - timedelta(hours=settings.tower_stability_warning_hours):
            left = (ends - now).total_seconds() / 3600
            said = f"ends in {left:.0f} h" if left > 0 else f"ended {-left:.0f} h ago"
            notes.append(
                RiskNote(
                    Risk.STABILITY,
                    f"fresh starting material collected {order.collected_at:%Y-%m-%d %H:%M} "
                    f"UTC: its {product.stability_hours:g} h stability window {said}",
                    ends,
                )
            )
    if order.state in RELEASED_STATES and order.released_at is not None:
        expiry = order.released_at.date() + timedelta(days=settings.shelf_life_days)
        if (expiry - today).days <= settings.tower_expiry_warning_days:
            notes.append(
                RiskNote(
                    Risk.EXPIRY,
                    f"the product expires on {expiry.isoformat()} and is not yet infused",
                    datetime.combine(expiry, datetime.min.time(), tzinfo=now.tzinfo),
                )
            )
    return notes
