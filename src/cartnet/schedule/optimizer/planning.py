"""``optimize`` and ``greedy``: a whole backlog of orders planned onto slot chains at once."""

from __future__ import annotations

import math
import time
from datetime import date

import numpy as np

from cartnet.network.model import Network
from cartnet.schedule.backlog import Backlog, check_backlog
from cartnet.schedule.capacity import CapacityCalendar, CapacityError, Party
from cartnet.schedule.optimizer.chains import ChainSearch, planner_for, resolve, with_baseline
from cartnet.schedule.optimizer.explain import (
    assignment_of,
    book,
    no_candidate,
    outside_calendar,
    plan_from,
    scratch_copy,
)
from cartnet.schedule.optimizer.formulation import Problem
from cartnet.schedule.optimizer.result import (
    GREEDY,
    LEXICOGRAPHIC,
    PENALTY,
    Assignment,
    BacklogPlan,
    PlanStatus,
    Unassigned,
    gap,
    objective_of,
)
from cartnet.schedule.optimizer.search import solve


def optimize(
    network: Network,
    calendar: CapacityCalendar,
    backlog: Backlog,
    *,
    time_limit: float = 30.0,
    cost_weight: float = 0.0001,
    unassigned_penalty: float | None = None,
    today: date | None = None,
    mip_gap: float = 1e-6,
    warm_start: bool = True,
    baseline: BacklogPlan | None = None,
    apply: bool = False,
) -> BacklogPlan:
    """Assign each order of ``backlog`` a slot chain, or none, with a proof of optimality.

    By default (``unassigned_penalty=None``) the objective is lexicographic: first as
    many patients assigned as capacity allows, then the least Σ weight × time to
    treatment + ``cost_weight`` × lane cost. A number makes it one weighted sum
    instead, an order left out counting ``unassigned_penalty`` days times its weight.
    Every start day the offer planner may offer is a candidate. ``time_limit``:
    seconds the solver may run in all. ``today``: the day quotas are released from
    (default ``backlog.as_of``). ``mip_gap``: relative gap of level 2 at which a plan
    counts as optimal. ``warm_start``: start from the greedy plan (``baseline``: a
    greedy plan already made on this calendar). ``apply``: book the plan into
    ``calendar``; otherwise the calendar is left as it was.
    """
    check_arguments(network, calendar, time_limit, cost_weight, unassigned_penalty)
    if not 0 <= mip_gap < 1:
        raise ValueError(f"mip_gap must be in [0, 1) (got {mip_gap})")
    check_backlog(backlog, network)
    clock = time.perf_counter()
    now = today or backlog.as_of
    planner = planner_for(network, calendar)
    jobs, outside = resolve(network, calendar, backlog)
    if warm_start and baseline is None and jobs:
        baseline = greedy(network, calendar, backlog, cost_weight=cost_weight, today=now)
    search = ChainSearch(planner, calendar.day(now))
    pool = search.pool(jobs)
    start_at: dict[int, int] = {}
    if warm_start and baseline is not None:
        pool, start_at = with_baseline(search, jobs, pool, baseline)
        try:  # a baseline made on another calendar is a source of chains, not a start
            book(scratch_copy(calendar), backlog, baseline, now)
        except CapacityError:
            start_at = {}
    problem = Problem(calendar, jobs, pool, cost_weight, calendar.day(now), start_at)
    build = time.perf_counter() - clock
    solved = solve(problem, unassigned_penalty, clock + time_limit, mip_gap)
    plan = plan_from(
        network, calendar, planner, backlog, jobs, outside, problem, solved, now,
        unassigned_penalty,
    )  # fmt: skip
    plan.build_seconds = build
    if outside and unassigned_penalty is not None:
        # orders outside the calendar are unassigned whatever the solver does
        offset = unassigned_penalty * sum(o.weight for o in outside)
        plan.objective = None if plan.objective is None else plan.objective + offset
        plan.bound = None if plan.bound is None else plan.bound + offset
        if plan.objective is not None and plan.bound is not None:
            plan.gap = gap(plan.objective, plan.bound)
    if apply and plan.assignments:
        plan.bookings = book(calendar, backlog, plan, now)
    return plan


def greedy(
    network: Network,
    calendar: CapacityCalendar,
    backlog: Backlog,
    *,
    cost_weight: float = 0.0001,
    unassigned_penalty: float | None = None,
    today: date | None = None,
    apply: bool = False,
) -> BacklogPlan:
    """First come, first served: by enrolment day then id, each order on its best offer.

    The best offer is the one ``OfferPlanner.offers`` ranks first (earliest time to
    treatment, i.e. earliest delivery, then lane cost, site id, start day) on a copy
    of the calendar that holds the bookings of the orders before it; it is found by
    the optimizer's vectorised chain search, which finds the planner's chains (tested
    order by order against ``offers``). The objective is computed as ``optimize``'s,
    so the two compare directly. ``apply=True`` books the plan into ``calendar``.
    """
    check_arguments(network, calendar, 1.0, cost_weight, unassigned_penalty)
    check_backlog(backlog, network)
    clock = time.perf_counter()
    now = today or backlog.as_of
    scratch = scratch_copy(calendar)
    planner = planner_for(network, scratch)
    search = ChainSearch(planner, scratch.day(now))
    jobs, outside = resolve(network, scratch, backlog)
    rank = np.argsort(np.argsort(np.array(scratch.site_ids, dtype=object)))
    found: dict[str, Assignment] = {}
    missing: dict[str, Unassigned] = {o.id: outside_calendar(o, scratch) for o in outside}
    booked: list[tuple[str, Party, Assignment]] = []
    for job in sorted(jobs, key=lambda j: (j.order.enrolled_on, j.order.id)):
        c = search.search(job, 1)
        if not c.size:
            offers = planner.offers(job.order.request(), k=1, today=now)
            missing[job.order.id] = no_candidate(job.order, offers.excluded)
            continue
        # the planner's ranking: time to treatment, lane cost, site id, start
        k = int(np.lexsort((c.start, rank[c.site], c.cost, c.ttt))[0])
        a = assignment_of(network, scratch, job, c, k, int(c.latest_apheresis[k]))
        scratch.book(job.order.id, job.party, a.site, a.apheresis, a.start, a.release, today=now)
        search.booked(int(c.site[k]), int(c.start[k]), job.center, int(c.latest_apheresis[k]),
                      int(c.release[k]))  # fmt: skip
        found[job.order.id] = a
        booked.append((job.order.id, job.party, a))
    assignments = [found[o.id] for o in backlog.orders if o.id in found]
    unassigned = [missing[o.id] for o in backlog.orders if o.id in missing]
    plan = BacklogPlan(
        status=PlanStatus.FEASIBLE,  # a heuristic proves nothing
        method=GREEDY,
        objective=objective_of(backlog, assignments, unassigned, cost_weight, unassigned_penalty),
        bound=None,
        gap=None,
        assignments=assignments,
        unassigned=unassigned,
        objective_kind=LEXICOGRAPHIC if unassigned_penalty is None else PENALTY,
        solve_seconds=time.perf_counter() - clock,
        message="first come, first served on the best offer",
    )
    if apply:
        made: list[int] = []
        try:
            for oid, party, a in booked:
                made.append(
                    calendar.book(oid, party, a.site, a.apheresis, a.start, a.release,
                                  today=now).id
                )  # fmt: skip
        except CapacityError:
            for b in made:
                calendar.cancel(b)
            raise
        plan.bookings = made
    return plan


def check_arguments(
    network: Network,
    calendar: CapacityCalendar,
    time_limit: float,
    cost_weight: float,
    penalty: float | None,
) -> None:
    if not time_limit > 0 or not math.isfinite(time_limit):
        raise ValueError(f"time limit must be a positive number of seconds (got {time_limit})")
    if not cost_weight >= 0 or not math.isfinite(cost_weight):
        raise ValueError(f"cost_weight must be >= 0 (got {cost_weight})")
    if penalty is not None and (not penalty > 0 or not math.isfinite(penalty)):
        raise ValueError(f"unassigned_penalty must be > 0 days, or None (got {penalty})")
    same_sites = [s.id for s in network.sites] == calendar.site_ids
    same_centers = [c.id for c in network.treatment_centers] == calendar.center_ids
    if not same_sites or not same_centers:
        raise ValueError("the capacity calendar was built for another network")
