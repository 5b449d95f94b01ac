"""From a solved model to a plan: dated chains, a reason for every order left out, a check.

Every plan is booked into a scratch copy of the calendar before it is returned,
so a plan the calendar's own rules reject cannot escape.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from datetime import date

import numpy as np

from cartnet.network.model import Network
from cartnet.schedule.backlog import Backlog, Order
from cartnet.schedule.capacity import CapacityCalendar, CapacityError, Party
from cartnet.schedule.offers import Exclusion, OfferPlanner
from cartnet.schedule.optimizer.chains import Chains, Job
from cartnet.schedule.optimizer.formulation import Problem
from cartnet.schedule.optimizer.result import (
    LEXICOGRAPHIC,
    PENALTY,
    Assignment,
    BacklogPlan,
    PlanStatus,
    Unassigned,
    Why,
)
from cartnet.schedule.optimizer.search import Solved


def assignment_of(
    network: Network, calendar: CapacityCalendar, job: Job, c: Chains, k: int, collect: int
) -> Assignment:
    site = network.sites[int(c.site[k])]
    return Assignment(
        order=job.order.id,
        site=site.id,
        site_name=site.name,
        apheresis=calendar.date_of(collect),
        start=calendar.date_of(int(c.start[k])),
        release=calendar.date_of(int(c.release[k])),
        delivery=calendar.date_of(int(c.delivery[k])),
        infusion=calendar.date_of(int(c.infusion[k])),
        time_to_treatment_days=int(c.ttt[k]),
        lane_cost=float(c.cost[k]),
        weight=job.order.weight,
    )


def plan_from(
    network: Network,
    calendar: CapacityCalendar,
    planner: OfferPlanner,
    backlog: Backlog,
    jobs: list[Job],
    outside: list[Order],
    problem: Problem,
    solved: Solved,
    now: date,
    penalty: float | None,
) -> BacklogPlan:
    plan = BacklogPlan(
        status=solved.status,
        method=solved.method,
        objective=solved.objective,
        bound=solved.bound,
        gap=solved.gap,
        assignments=[],
        unassigned=[],
        objective_kind=LEXICOGRAPHIC if penalty is None else PENALTY,
        assigned_bound=solved.assigned_bound,
        solve_seconds=solved.seconds,
        variables=problem.n_cols,
        constraints=problem.n_constraints,
        candidates=problem.pool.size,
        message=solved.message,
    )
    chosen = solved.chosen
    collect = problem.collection_plan(chosen)
    if collect is None:
        raise RuntimeError("internal error: no apheresis days fit the plan")
    found = {
        jobs[j].order.id: assignment_of(network, calendar, jobs[j], problem.pool, k, collect[j])
        for j, k in chosen.items()
    }
    plan.assignments = [found[o.id] for o in backlog.orders if o.id in found]
    proven = solved.status is PlanStatus.OPTIMAL
    plan.unassigned = explain_missing(
        planner, calendar, jobs, outside, problem, chosen, now, penalty, proven
    )
    verify(calendar, backlog, plan, now)
    return plan


def explain_missing(
    planner: OfferPlanner,
    calendar: CapacityCalendar,
    jobs: list[Job],
    outside: list[Order],
    problem: Problem,
    chosen: dict[int, int],
    now: date,
    penalty: float | None,
    proven: bool,
) -> list[Unassigned]:
    """A reason for every order without a chain, in backlog order."""
    c = problem.pool
    found: dict[str, Unassigned] = {o.id: outside_calendar(o, calendar) for o in outside}
    # what the plan uses, to say what stopped an order's chains
    slots_left = (calendar.slots - calendar.booked).astype(np.int64)
    qc_left = (calendar.qc - calendar.qc_booked).astype(np.int64)
    for k in chosen.values():
        slots_left[c.site[k], c.start[k]] -= 1
        if c.release[k] < calendar.days:
            qc_left[c.site[k], c.release[k]] -= 1
    for job in jobs:
        if job.index in chosen:
            continue
        lo, hi = int(problem.bounds[job.index]), int(problem.bounds[job.index + 1])
        if hi == lo:
            offers = planner.offers(job.order.request(), k=1, today=now)
            found[job.order.id] = no_candidate(job.order, offers.excluded)
            continue
        ks = np.arange(lo, hi)
        full_day = slots_left[c.site[ks], c.start[ks]] <= 0
        release = np.minimum(c.release[ks], calendar.days - 1)
        full_qc = (c.release[ks] < calendar.days) & (qc_left[c.site[ks], release] <= 0) & ~full_day
        other = ~full_day & ~full_qc
        sites = sorted({calendar.site_ids[int(s)] for s in c.site[ks]})
        span = (
            f"{ks.size} candidate chain{'s' if ks.size > 1 else ''} at {', '.join(sites)}, "
            f"starts {calendar.date_of(int(c.start[ks].min()))} to "
            f"{calendar.date_of(int(c.start[ks].max()))}"
        )
        if penalty is not None:
            best = int(ks[np.argmin(problem.cost[ks])])
            leave = float(job.order.weight * penalty)
            if problem.cost[best] > leave:
                found[job.order.id] = Unassigned(
                    job.order.id, Why.PENALTY,
                    f"its best chain ({calendar.site_ids[int(c.site[best])]}, "
                    f"{int(c.ttt[best])} days to treatment) costs {problem.cost[best]:.1f} "
                    f"weighted days, more than leaving it unassigned ({leave:.1f}); {span}",
                )  # fmt: skip
                continue
        parts = []
        if full_day.any():
            parts.append(f"{int(full_day.sum())} on manufacturing days the plan fills")
        if full_qc.any():
            parts.append(f"{int(full_qc.sum())} on QC days the plan fills")
        if other.any():
            parts.append(
                f"{int(other.sum())} blocked by apheresis capacity at {job.order.center} or by "
                "quotas, given the other orders' chains"
            )
        if not proven:
            why = "the plan is not proven optimal"
        elif penalty is None:
            why = (
                "no plan assigns more patients: placing it would leave another patient "
                "without a chain"
            )
        else:
            why = "placing it would displace orders that weigh more in the objective"
        found[job.order.id] = Unassigned(
            job.order.id, Why.CAPACITY, f"no room left for it: {span}; {'; '.join(parts)}; {why}"
        )
    position = {
        oid: i for i, oid in enumerate([j.order.id for j in jobs] + [o.id for o in outside])
    }
    return sorted(found.values(), key=lambda u: position[u.order])


def verify(calendar: CapacityCalendar, backlog: Backlog, plan: BacklogPlan, now: date) -> None:
    """Book the plan into a scratch copy: the calendar's own rules must accept every chain."""
    try:
        book(scratch_copy(calendar), backlog, plan, now)
    except CapacityError as e:
        raise RuntimeError(f"internal error: the plan does not fit the calendar: {e}") from e


def book(calendar: CapacityCalendar, backlog: Backlog, plan: BacklogPlan, now: date) -> list[int]:
    """Book every assignment, quota holders first (the order the model counts), all or
    nothing."""
    by_id = {o.id: o for o in backlog.orders}
    parties: dict[str, Party] = {}
    for a in plan.assignments:
        order = by_id[a.order]
        market = calendar.network.center(order.center).market
        parties[a.order] = Party(order.center, market, order.trial)

    def holders_first(a: Assignment) -> tuple[bool, date, str]:
        party = parties[a.order]
        holds = any(
            q.site == a.site and party.holds(q) and q.start <= a.start <= q.end
            for q in calendar.quotas
        )
        return (not holds, a.start, a.order)

    made: list[int] = []
    try:
        for a in sorted(plan.assignments, key=holders_first):
            made.append(
                calendar.book(a.order, parties[a.order], a.site, a.apheresis, a.start, a.release,
                              today=now).id
            )  # fmt: skip
    except CapacityError:
        for b in made:
            calendar.cancel(b)
        raise
    return made


def outside_calendar(order: Order, calendar: CapacityCalendar) -> Unassigned:
    return Unassigned(
        order.id, Why.OUTSIDE_CALENDAR,
        f"earliest apheresis {order.earliest_apheresis} is outside the capacity calendar "
        f"({calendar.origin} to {calendar.date_of(calendar.days - 1)})",
    )  # fmt: skip


def no_candidate(order: Order, excluded: list[Exclusion]) -> Unassigned:
    why = "; ".join(f"{e.site}: {e.message}" for e in excluded) or "no site makes this product"
    return Unassigned(
        order.id, Why.NO_CANDIDATE, f"no site can offer a slot chain: {why}", tuple(excluded)
    )


def scratch_copy(calendar: CapacityCalendar) -> CapacityCalendar:
    """A copy of ``calendar`` whose bookings can change without touching the original.

    Shares the network and the (read-only) capacity arrays; copies what bookings
    change: booked counts, the bookings, quota use.
    """
    new = copy.copy(calendar)
    new.booked = calendar.booked.copy()
    new.qc_booked = calendar.qc_booked.copy()
    new.apheresis_booked = calendar.apheresis_booked.copy()
    new.bookings = dict(calendar.bookings)
    new.quotas = list(calendar.quotas)
    new._quotas = [dataclasses.replace(q) for q in calendar._quotas]
    new._ids = itertools.count(max(calendar.bookings, default=0) + 1)
    return new
