"""The service's open orders planned again at once: the backlog optimizer on real orders.

The open orders are the booked ones whose apheresis is still ahead: the only ones a
reschedule can move. Their capacity is given back on a copy of today's calendar (the
database's slot usage), their current chains are the optimizer's baseline, and the
optimizer (:func:`cartnet.schedule.optimizer.optimize`, the same as ``cartnet
optimize``) assigns each one a chain with a proof or a bound. Where the plan's chain
differs from the booked one, that is a **move**: order, from (site, start), to, days
of time to treatment gained (negative when a patient waits longer so that others gain
more). Nothing is booked here: applying moves is a separate signed action
(:mod:`cartnet.service.plan_apply`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import select

from cartnet.identity import ChainOfIdentityId
from cartnet.ledger.lifecycle import OrderState
from cartnet.network.entities import Scope
from cartnet.schedule.backlog import Backlog, Order
from cartnet.schedule.capacity import CapacityCalendar
from cartnet.schedule.offers import SlotChain
from cartnet.schedule.optimizer import Assignment, BacklogPlan, PlanStatus, optimize
from cartnet.schedule.optimizer.chains import planner_for
from cartnet.schedule.optimizer.result import objective_of
from cartnet.service.context import ServiceContext
from cartnet.service.orders.booking import held_claims
from cartnet.service.slots import Claim, SlotKind
from cartnet.store.tables import OrderRow

SCHEMA = "cartnet.replan/1"
CURRENT = "current bookings"
"""``method`` of the baseline plan: the chains the orders are booked on now."""


@dataclass(frozen=True)
class OpenOrder:
    """One open order as the plan sees it: its reference and the chain it is booked on."""

    id: str
    coi: str
    center: str
    site: str
    apheresis: date
    start: date
    infusion: date | None
    enrolled: date


@dataclass
class OpenBacklog:
    """The open orders as a backlog, on a calendar that holds everyone else's bookings."""

    today: date
    backlog: Backlog
    calendar: CapacityCalendar
    orders: dict[str, OpenOrder]


def open_backlog(ctx: ServiceContext) -> OpenBacklog:
    """Read the open orders and today's slot usage, their own capacity given back."""
    today = ctx.today()
    with ctx.reading() as session:
        rows = session.scalars(
            select(OrderRow)
            .where(
                OrderRow.state == OrderState.BOOKED.value,
                OrderRow.apheresis_on >= today,
                OrderRow.start_on > today,
            )
            .order_by(OrderRow.created_at, OrderRow.id)
        ).all()
        calendar = ctx.slots.snapshot(session, today)
        claims = [c for row in rows for c in held_claims(ctx, row)]
    for claim in claims:
        _give_back(calendar, claim)
    orders: dict[str, OpenOrder] = {}
    backlog_orders: list[Order] = []
    for row in rows:
        assert row.site is not None and row.start_on is not None and row.apheresis_on is not None
        enrolled = min(row.created_at.date(), today)
        orders[row.id] = OpenOrder(
            row.id, row.coi, row.center, row.site, row.apheresis_on, row.start_on,
            row.infusion_on, enrolled,
        )  # fmt: skip
        backlog_orders.append(
            Order(
                id=row.id,
                center=row.center,
                product=row.product,
                scope=Scope(row.scope),
                trial=row.trial,
                earliest_apheresis=max(row.earliest_apheresis, today),
                enrolled=enrolled,
            )
        )
    return OpenBacklog(today, Backlog(as_of=today, orders=backlog_orders), calendar, orders)


def _give_back(calendar: CapacityCalendar, claim: Claim) -> None:
    d = calendar.day(claim.day)
    if not 0 <= d < calendar.days:
        return
    arrays: dict[SlotKind, np.ndarray[Any, Any]] = {
        SlotKind.MANUFACTURING: calendar.booked,
        SlotKind.APHERESIS: calendar.apheresis_booked,
        SlotKind.QC: calendar.qc_booked,
    }
    used = arrays[claim.kind]
    index = calendar.center_index if claim.kind is SlotKind.APHERESIS else calendar.site_index
    i = index[claim.resource]
    used[i, d] = max(0, int(used[i, d]) - 1)


def current_plan(ctx: ServiceContext, open_: OpenBacklog) -> BacklogPlan:
    """The chains the open orders are booked on, as a plan: the optimizer's baseline.

    A booking the network no longer allows (an approval withdrawn since) is left out:
    it is no chain the optimizer may keep.
    """
    planner = planner_for(ctx.slots.network, open_.calendar)
    assignments: list[Assignment] = []
    for order in open_.backlog.orders:
        booked = open_.orders[order.id]
        try:
            found = planner.chain(order.request(), booked.site, booked.start, today=open_.today)
        except ValueError:  # a booking outside today's calendar
            continue
        if isinstance(found, SlotChain):
            assignments.append(_assignment(order, found))
    return BacklogPlan(
        status=PlanStatus.FEASIBLE,
        method=CURRENT,
        objective=objective_of(open_.backlog, assignments, [], 0.0001, None),
        bound=None,
        gap=None,
        assignments=assignments,
        unassigned=[],
        message="the chains the orders are booked on now",
    )


def _assignment(order: Order, chain: SlotChain) -> Assignment:
    return Assignment(
        order=order.id,
        site=chain.site,
        site_name=chain.site_name,
        apheresis=chain.apheresis,
        start=chain.start,
        release=chain.release,
        delivery=chain.delivery,
        infusion=chain.infusion,
        time_to_treatment_days=chain.time_to_treatment_days,
        lane_cost=chain.lane_cost,
        weight=order.weight,
    )


def replan(
    ctx: ServiceContext,
    time_limit: float,
    progress: Callable[[int, str], None] | None = None,
) -> dict[str, Any]:
    """Plan the open orders again; the plan document with its moves (``cartnet.replan/1``).

    ``progress(step, message)`` is told of each step (3 in all); it may raise to stop.
    """
    tell = progress or (lambda step, message: None)
    clock = time.perf_counter()
    tell(0, "reading the open orders")
    open_ = open_backlog(ctx)
    network = ctx.slots.network
    baseline = current_plan(ctx, open_)
    tell(1, f"solving {len(open_.backlog.orders)} order(s), at most {time_limit:g} s")
    plan = optimize(
        network, open_.calendar, open_.backlog, time_limit=time_limit, baseline=baseline,
        today=open_.today,
    )  # fmt: skip
    tell(2, "writing the moves")
    names = {s.id: s.name for s in network.sites}
    costs = {a.order: a.lane_cost for a in baseline.assignments}
    moves = [
        _move(open_.orders[a.order], a, names, costs.get(a.order))
        for a in plan.assignments
        if (a.site, a.start) != (open_.orders[a.order].site, open_.orders[a.order].start)
    ]
    moves.sort(key=lambda m: (-m["days_gained"], m["order"]))
    return {
        "schema": SCHEMA,
        "network": network.name,
        "scenario": network.applied_scenario,
        "as_of": open_.today.isoformat(),
        "orders": len(open_.backlog.orders),
        "time_limit": time_limit,
        "wall_seconds": round(time.perf_counter() - clock, 3),
        "plan": plan.as_dict(),
        "current": {
            "assigned": baseline.assigned,
            "objective": baseline.objective,
            "mean_time_to_treatment_days": baseline.mean_time_to_treatment,
        },
        "moves": moves,
    }


def _move(
    order: OpenOrder, to: Assignment, names: dict[str, str], cost: float | None
) -> dict[str, Any]:
    gained = None if order.infusion is None else (order.infusion - to.infusion).days
    return {
        "order": order.id,
        "coi": ChainOfIdentityId.parse(order.coi).eye_readable(),
        "center": order.center,
        "from": {
            "site": order.site,
            "site_name": names.get(order.site, order.site),
            "apheresis": order.apheresis.isoformat(),
            "start": order.start.isoformat(),
            "infusion": None if order.infusion is None else order.infusion.isoformat(),
            "lane_cost": cost,
        },
        "to": {
            "site": to.site,
            "site_name": to.site_name,
            "apheresis": to.apheresis.isoformat(),
            "start": to.start.isoformat(),
            "infusion": to.infusion.isoformat(),
            "lane_cost": to.lane_cost,
        },
        "days_gained": 0 if gained is None else gained,
    }
