"""Batch optimizer: a whole backlog of orders assigned to slot chains at once.

Each order may take one of its *candidate* slot chains or stay unassigned. The
candidates follow the offer planner's rules (``offers.py``): at every site that
takes the order's material, has lines, an approval in force on the start day and
(for fresh material) a lane inside the stability window, the first
``candidates_per_site`` start days with a free slot open to the order's party
(quotas), apheresis capacity at the center on a day that meets the slot, and QC
capacity on the release day. A chain's days are the planner's: lead
``ceil(apheresis + inbound mean)``, release ``ceil(manufacturing + QC means)``
after the start, delivery ``ceil(outbound mean)`` later, infusion two days after
delivery. With ``warm_start`` the greedy baseline's chains are candidates too and
its plan is the solver's first incumbent, so the optimum is never worse than it.

The model is a path formulation of i-SHIPMENT's patient allocation (DOMAIN.md §6):
binary ``x_k`` per candidate chain ``k``, ``u_o`` per order ``o``::

    minimise  Σ_k (w_o·TTT_k + c·cost_k)·x_k + Σ_o w_o·P·u_o
    s.t.      Σ_{k of o} x_k + u_o = 1                            each order
              Σ_{k starting at site s on day d} x_k ≤ free slots(s, d)
              Σ_{k releasing at s on day r} x_k ≤ free QC(s, r)     where QC is finite
              Σ_{k of non-holders in q's window} x_k
                − Σ_{k of holders before it} x_k ≤ F_q − R_q         each quota q
              collections at center j on day t ≤ free apheresis(j, t)

A quota ``q`` still holds ``R_q`` slots; ``F_q`` are the free slots of its window
not yet released. Others may book there while the free slots exceed what the
quota still holds (``CapacityCalendar.held_for_others``), counting bookings in the
order a plan is booked: holders first. Fresh material is collected exactly
``lead`` days before the start. Cryopreserved material may be collected on any day
from the earliest apheresis to the chain's latest day and wait: each order of a
center whose apheresis capacity can bind gets a small flow backward through its
days into that center's day rows (continuous: with integral chains it is a
bipartite matching, hence integral). Collection days are then chosen as late as
capacity allows.

Solving. Rows that can never bind are left out: a site-day, QC day or quota with
room for every order that could use it. Apheresis rows are added lazily: the
model is solved without them and a center's rows are added only when the plan
does not fit its capacity (checked exactly by earliest-deadline-first), then it is
solved again. Chains enter by column generation: each order starts with its few
cheapest chains, and a chain joins when its reduced cost under the LP duals is
negative, until none is: the LP is then optimal over every candidate. If only the
order and site-day rows remain, the problem is a transportation problem: its
matrix is totally unimodular and the simplex optimum is an integral vertex
(``method="transportation-lp"``); integrality is checked, and a fractional LP goes
to the MIP. Otherwise (``method="mip"``) an integral LP optimum is optimal as it is
("no branching"); a fractional one is handed to HiGHS's MIP with the greedy plan as
incumbent, with every chain whose reduced cost is below the gap added first, so
that no chain left out can improve on the result. The bound reported is valid for
all candidates: ``max(LP bound, min(MIP bound, LP bound + least reduced cost of a
chain left out))``.

The status is honest: ``optimal`` only when proven (within ``mip_gap``),
``feasible`` when the time limit stopped the search (with the best plan, its bound
and gap), ``infeasible`` only when orders may not be left unassigned and no plan
assigns all. Every plan is booked into a scratch copy of the calendar before it is
returned, so a plan the calendar's own rules reject cannot escape.

The candidate search is vectorised with numpy over sites and days instead of
calling ``OfferPlanner.offers`` per order (which loops over sites and days in
Python): it reuses the planner's approval masks and lane legs, and
``tests/schedule/test_optimizer.py`` checks that it finds exactly the chains
``offers`` finds. Orders without a candidate are explained by the planner's own
exclusions.
"""

from __future__ import annotations

import copy
import dataclasses
import heapq
import itertools
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

import highspy
import numpy as np

from cartnet.network.entities import StartingMaterial
from cartnet.network.model import Network
from cartnet.schedule.backlog import Backlog, Order, check_backlog
from cartnet.schedule.capacity import CapacityCalendar, CapacityError, Party
from cartnet.schedule.offers import Exclusion, OfferPlanner, dated_fields
from cartnet.schedule.solver import new_highs

TRANSPORTATION_LP = "transportation-lp"
MIP = "mip"
GREEDY = "greedy"
NOTHING = "none"
"""``method`` of a plan with nothing to solve (empty backlog, or no order has a candidate)."""

INITIAL_CHAINS = 4
"""Chains per order in the first LP (its cheapest); column generation adds the rest."""
PRICED_PER_ROUND = 8
"""At most this many chains join per order and pricing round (the most negative)."""
COMPLETION_LIMIT = 200_000
"""Most chains added to a MIP so that no chain left out could improve on its plan."""

_INF = highspy.kHighsInf


class PlanStatus(StrEnum):
    OPTIMAL = "optimal"
    """Proven optimal over all candidate chains (a MIP within ``mip_gap``)."""
    FEASIBLE = "feasible"
    """A plan that fits, not proven optimal: the time limit stopped the search, or greedy."""
    INFEASIBLE = "infeasible"
    """No plan assigns every order (only when ``unassigned_penalty`` is None)."""
    NO_SOLUTION = "no-solution"
    """The search stopped before it found a plan that assigns every order."""


class Why(StrEnum):
    """Why an order is left unassigned."""

    NO_CANDIDATE = "no-candidate"
    OUTSIDE_CALENDAR = "outside-calendar"
    CAPACITY = "capacity-taken"
    PENALTY = "penalty-cheaper"
    NOT_SOLVED = "not-solved"


@dataclass(frozen=True)
class Assignment:
    """One order's slot chain in a plan."""

    order: str
    site: str
    site_name: str
    apheresis: date
    start: date
    release: date
    delivery: date
    infusion: date
    time_to_treatment_days: int
    lane_cost: float
    weight: float

    def as_dict(self) -> dict[str, object]:
        return dated_fields(self)


@dataclass(frozen=True)
class Unassigned:
    """An order the plan leaves without a chain, and why."""

    order: str
    reason: Why
    message: str
    excluded: tuple[Exclusion, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "order": self.order,
            "reason": self.reason.value,
            "message": self.message,
            "excluded": [e.as_dict() for e in self.excluded],
        }


@dataclass
class BacklogPlan:
    """The outcome of ``optimize`` or ``greedy``: a chain per order, or why it has none.

    ``objective`` is Σ weight × time to treatment (days) + cost_weight × lane cost
    + Σ weight × unassigned_penalty over unassigned orders; ``bound`` is a proven
    lower bound on the objective of any plan over the same candidates, and
    ``gap`` = (objective − bound) / objective.
    """

    status: PlanStatus
    method: str
    objective: float | None
    bound: float | None
    gap: float | None
    assignments: list[Assignment]
    unassigned: list[Unassigned]
    solve_seconds: float = 0.0
    build_seconds: float = 0.0
    variables: int = 0
    constraints: int = 0
    candidates: int = 0
    message: str = ""
    bookings: list[int] = field(default_factory=list)
    """Ids of the calendar bookings made when the plan was applied (``apply=True``)."""

    @property
    def time_to_treatment(self) -> np.ndarray:
        return np.array([a.time_to_treatment_days for a in self.assignments], dtype=float)

    @property
    def mean_time_to_treatment(self) -> float | None:
        t = self.time_to_treatment
        return float(t.mean()) if t.size else None

    @property
    def p90_time_to_treatment(self) -> float | None:
        t = self.time_to_treatment
        return float(np.percentile(t, 90)) if t.size else None

    def assignment(self, order: str) -> Assignment | None:
        return next((a for a in self.assignments if a.order == order), None)

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "method": self.method,
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "solve_seconds": round(self.solve_seconds, 4),
            "build_seconds": round(self.build_seconds, 4),
            "variables": self.variables,
            "constraints": self.constraints,
            "candidates": self.candidates,
            "message": self.message,
            "assigned": len(self.assignments),
            "mean_time_to_treatment_days": self.mean_time_to_treatment,
            "p90_time_to_treatment_days": self.p90_time_to_treatment,
            "assignments": [a.as_dict() for a in self.assignments],
            "unassigned": [u.as_dict() for u in self.unassigned],
        }


# -- public entry points ------------------------------------------------------


def optimize(
    network: Network,
    calendar: CapacityCalendar,
    backlog: Backlog,
    *,
    time_limit: float = 30.0,
    cost_weight: float = 0.0001,
    unassigned_penalty: float | None = 365.0,
    candidates_per_site: int = 30,
    today: date | None = None,
    mip_gap: float = 1e-6,
    warm_start: bool = True,
    baseline: BacklogPlan | None = None,
    apply: bool = False,
) -> BacklogPlan:
    """Assign each order of ``backlog`` a slot chain, or none, minimising the weighted total.

    ``time_limit``: seconds the solver may run in all. ``cost_weight``: weighted
    days per unit of lane cost. ``unassigned_penalty``: days of time to treatment
    an unassigned order counts (times its weight); None forbids leaving an order
    unassigned, and the plan may then be ``infeasible``. ``candidates_per_site``:
    start days searched per order and site. ``today``: the day quotas are
    released from (default ``backlog.as_of``). ``mip_gap``: relative gap at which a
    plan counts as optimal. ``warm_start``: add the greedy plan's chains to the
    candidates and start from that plan (``baseline``: a greedy plan already made
    on this calendar). ``apply``: book the plan into ``calendar``; otherwise the
    calendar is left as it was.
    """
    _check_arguments(network, calendar, time_limit, cost_weight, unassigned_penalty)
    if candidates_per_site < 1:
        raise ValueError(f"candidates_per_site must be at least 1 (got {candidates_per_site})")
    if not 0 <= mip_gap < 1:
        raise ValueError(f"mip_gap must be in [0, 1) (got {mip_gap})")
    check_backlog(backlog, network)
    clock = time.perf_counter()
    now = today or backlog.as_of
    planner = _planner(network, calendar)
    jobs, outside = _resolve(network, calendar, backlog)
    if warm_start and baseline is None and jobs:
        baseline = greedy(
            network, calendar, backlog,
            cost_weight=cost_weight, unassigned_penalty=unassigned_penalty, today=now,
        )  # fmt: skip
    search = _ChainSearch(planner, calendar.day(now))
    pool = search.pool(jobs, candidates_per_site)
    start_at: dict[int, int] = {}
    if warm_start and baseline is not None:
        pool, start_at = _with_baseline(search, jobs, pool, baseline)
        try:  # a baseline made on another calendar is a source of chains, not a start
            _book(scratch_copy(calendar), backlog, baseline, now)
        except CapacityError:
            start_at = {}
    problem = _Problem(
        calendar, jobs, pool, cost_weight, unassigned_penalty, calendar.day(now), start_at
    )
    build = time.perf_counter() - clock
    solved = problem.solve(time_limit, mip_gap)
    plan = _plan_from(network, calendar, planner, backlog, jobs, outside, problem, solved, now)
    plan.build_seconds = build
    if outside and unassigned_penalty is not None:
        # orders outside the calendar are unassigned whatever the solver does
        offset = unassigned_penalty * sum(o.weight for o in outside)
        plan.objective = None if plan.objective is None else plan.objective + offset
        plan.bound = None if plan.bound is None else plan.bound + offset
        if plan.objective is not None and plan.bound is not None:
            plan.gap = _gap(plan.objective, plan.bound)
    if unassigned_penalty is None and (plan.status is PlanStatus.INFEASIBLE or outside):
        plan = _explain_infeasible(
            plan, network, calendar, backlog, cost_weight, time_limit, candidates_per_site, now
        )
    usable = plan.status in (PlanStatus.OPTIMAL, PlanStatus.FEASIBLE)
    if apply and plan.assignments and usable:
        plan.bookings = _book(calendar, backlog, plan, now)
    return plan


def greedy(
    network: Network,
    calendar: CapacityCalendar,
    backlog: Backlog,
    *,
    cost_weight: float = 0.0001,
    unassigned_penalty: float | None = 365.0,
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
    _check_arguments(network, calendar, 1.0, cost_weight, unassigned_penalty)
    check_backlog(backlog, network)
    clock = time.perf_counter()
    now = today or backlog.as_of
    scratch = scratch_copy(calendar)
    planner = _planner(network, scratch)
    search = _ChainSearch(planner, scratch.day(now))
    jobs, outside = _resolve(network, scratch, backlog)
    rank = np.argsort(np.argsort(np.array(scratch.site_ids, dtype=object)))
    found: dict[str, Assignment] = {}
    missing: dict[str, Unassigned] = {o.id: _outside(o, scratch) for o in outside}
    booked: list[tuple[str, Party, Assignment]] = []
    for job in sorted(jobs, key=lambda j: (j.order.enrolled_on, j.order.id)):
        c = search.search(job, 1)
        if not c.size:
            offers = planner.offers(job.order.request(), k=1, today=now)
            missing[job.order.id] = _no_candidate(job.order, offers.excluded)
            continue
        # the planner's ranking: time to treatment, lane cost, site id, start
        k = int(np.lexsort((c.start, rank[c.site], c.cost, c.ttt))[0])
        a = _assignment_of(network, scratch, job, c, k, int(c.latest_apheresis[k]))
        scratch.book(job.order.id, job.party, a.site, a.apheresis, a.start, a.release, today=now)
        search.booked(int(c.site[k]), int(c.start[k]), job.center, int(c.latest_apheresis[k]),
                      int(c.release[k]))  # fmt: skip
        found[job.order.id] = a
        booked.append((job.order.id, job.party, a))
    assignments = [found[o.id] for o in backlog.orders if o.id in found]
    unassigned = [missing[o.id] for o in backlog.orders if o.id in missing]
    objective = _objective(backlog, assignments, unassigned, cost_weight, unassigned_penalty)
    plan = BacklogPlan(
        # a heuristic proves nothing: orders it could not place without a penalty mean
        # "no plan found", not "infeasible"
        status=PlanStatus.FEASIBLE if objective is not None else PlanStatus.NO_SOLUTION,
        method=GREEDY,
        objective=objective,
        bound=None,
        gap=None,
        assignments=assignments,
        unassigned=unassigned,
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


def plan_objective(
    backlog: Backlog,
    plan: BacklogPlan,
    cost_weight: float = 0.0001,
    unassigned_penalty: float | None = 365.0,
) -> float | None:
    """The objective of ``plan`` recomputed from its assignments (None if an order is left
    out and there is no penalty)."""
    return _objective(backlog, plan.assignments, plan.unassigned, cost_weight, unassigned_penalty)


_LEGS: dict[int, tuple[Network, dict[tuple[str, str], tuple[int, int, float, float, float]]]] = {}


def _planner(network: Network, calendar: CapacityCalendar) -> OfferPlanner:
    """An offer planner that shares lane legs with earlier planners of the same network.

    A leg depends only on the network, and working one out builds two pydantic lanes
    (about 40 µs); 2,000 centers × 100 sites make that seconds per planner.
    """
    entry = _LEGS.get(id(network))
    if entry is None or entry[0] is not network:
        while len(_LEGS) >= 4:
            _LEGS.pop(next(iter(_LEGS)))
        entry = _LEGS[id(network)] = (network, {})
    return OfferPlanner(network, calendar, _lanes=entry[1])


# -- orders resolved against the network and calendar --------------------------


@dataclass(frozen=True)
class _Job:
    index: int
    """Position among the jobs (the orders whose earliest apheresis is in the calendar)."""
    order: Order
    party: Party
    center: int
    regulator: str
    fresh: bool
    material: StartingMaterial
    stability_hours: float | None
    first_a: int
    enrolled: int


def _resolve(
    network: Network, calendar: CapacityCalendar, backlog: Backlog
) -> tuple[list[_Job], list[Order]]:
    """Jobs for the orders inside the calendar, and the orders outside it."""
    jobs: list[_Job] = []
    outside: list[Order] = []
    for order in backlog.orders:
        first_a = calendar.day(order.earliest_apheresis)
        if not 0 <= first_a < calendar.days:
            outside.append(order)
            continue
        center = network.center(order.center)
        product = network.product(order.product)
        market = network.market(center.market)
        material = order.material or product.starting_material
        jobs.append(
            _Job(
                index=len(jobs),
                order=order,
                party=Party(center.id, market.id, order.trial),
                center=calendar.center_index[center.id],
                regulator=market.regulator.value,
                fresh=material is StartingMaterial.FRESH,
                material=material,
                stability_hours=product.stability_hours,
                first_a=first_a,
                enrolled=calendar.day(order.enrolled_on),
            )
        )
    return jobs, outside


# -- candidate chains -----------------------------------------------------------


@dataclass
class _Chains:
    """Candidate chains as arrays, one entry per chain, grouped by job in job order."""

    job: np.ndarray
    site: np.ndarray
    start: np.ndarray
    latest_apheresis: np.ndarray
    """Cryopreserved: the latest day with apheresis capacity that meets the start; fresh:
    the collection day."""
    release: np.ndarray
    delivery: np.ndarray
    infusion: np.ndarray
    ttt: np.ndarray
    cost: np.ndarray

    @property
    def size(self) -> int:
        return int(self.job.size)

    def select(self, keep: np.ndarray) -> _Chains:
        return _Chains(*(getattr(self, f.name)[keep] for f in dataclasses.fields(self)))

    @staticmethod
    def join(parts: list[_Chains]) -> _Chains:
        names = [f.name for f in dataclasses.fields(_Chains)]
        if not parts:
            return _Chains(*([np.zeros(0, dtype=np.int64)] * (len(names) - 1) + [np.zeros(0)]))
        return _Chains(*(np.concatenate([getattr(p, n) for p in parts]) for n in names))

    def bounds(self, jobs: int) -> np.ndarray:
        """``bounds[j]:bounds[j + 1]`` are job ``j``'s chains."""
        return np.searchsorted(self.job, np.arange(jobs + 1))


@dataclass(frozen=True)
class _Sites:
    """A job's eligible sites with their approval masks and lane legs, as arrays."""

    index: np.ndarray
    approved: np.ndarray
    """sites × calendar days: approval in force."""
    lead: np.ndarray
    back: np.ndarray
    cost: np.ndarray
    make: np.ndarray


class _ChainSearch:
    """The offer planner's rules, vectorised over a job's sites and days.

    Keeps boolean arrays of the calendar (slot free, QC free, apheresis free, and
    the latest free apheresis day up to each day); ``booked`` updates them after a
    booking, so the greedy pass can search as the calendar fills.
    """

    def __init__(self, planner: OfferPlanner, today: int) -> None:
        self.planner = planner
        self.cal = cal = planner.calendar
        self.today = today
        self.days = np.arange(cal.days)
        self.open_slot = cal.slots > cal.booked
        self.qc_ok = cal.qc_booked < cal.qc
        self.ap_free = cal.apheresis_booked < cal.apheresis
        self.latest_free_ap = np.maximum.accumulate(np.where(self.ap_free, self.days, -1), axis=1)
        self.quota_site = np.zeros(len(cal.site_ids), dtype=bool)
        for q in cal.quotas:
            self.quota_site[cal.site_index[q.site]] = True
        self._approved: dict[tuple[str, str, str, str | None, str], tuple[np.ndarray, ...]] = {}
        self._sites: dict[tuple[str, str, str, str, str | None, str], _Sites] = {}

    def sites(self, job: _Job) -> _Sites:
        """Sites with lines that take the job's material, may ever make its product for its
        party, and (fresh material) whose inbound lane fits the stability window."""
        o = job.order
        key = (o.product, job.regulator, o.scope.value, o.trial, job.material.value)
        approved = self._approved.get(key)
        net = self.planner.network
        if approved is None:
            idx, masks = [], []
            for i, s in enumerate(net.sites):
                if s.lines > 0 and s.accepts(job.material):
                    mask = self.planner.approved_days(s, o.product, job.regulator, o.scope, o.trial)
                    if mask.any():
                        idx.append(i)
                        masks.append(mask)
            approved = (
                np.array(idx, dtype=np.int64),
                np.array(masks, dtype=bool).reshape(len(idx), self.cal.days),
            )
            self._approved[key] = approved
        found = self._sites.get((o.center, *key))
        if found is None:
            legs = [self.planner.leg(o.center, net.sites[i]) for i in approved[0].tolist()]
            fits = np.array(
                [not job.fresh or leg[3] * 24 <= (job.stability_hours or 0) for leg in legs],
                dtype=bool,
            )
            found = _Sites(
                index=approved[0][fits],
                approved=approved[1][fits],
                lead=np.array([leg[0] for leg in legs], dtype=np.int64)[fits],
                back=np.array([leg[1] for leg in legs], dtype=np.int64)[fits],
                cost=np.array([round(leg[2], 2) for leg in legs], dtype=float)[fits],
                make=np.array([math.ceil(leg[4] - 1e-9) for leg in legs], dtype=np.int64)[fits],
            )
            self._sites[(o.center, *key)] = found
        return found

    def search(
        self, job: _Job, limit: int, site: int | None = None, day: int | None = None
    ) -> _Chains:
        """The first ``limit`` feasible start days at each eligible site (or only at ``site``,
        only on ``day``), as chains in site order then day order."""
        s = self.sites(job)
        rows = np.arange(s.index.size)
        if site is not None:
            rows = rows[s.index == site]
        if not rows.size:
            return _Chains.join([])
        n_days = self.cal.days
        first = job.first_a + s.lead[rows]
        last = np.minimum(n_days - 1, first + self.planner.horizon_days)
        width = self.planner.horizon_days + 1
        count = np.zeros(rows.size, dtype=np.int64)
        got_rows: list[np.ndarray] = []
        got_days: list[np.ndarray] = []
        lo, block = 0, 2 * limit + 14
        while lo < width:
            todo = np.flatnonzero((count < limit) & (first + lo <= last))
            if not todo.size:
                break
            hi = min(width, lo + block)
            if day is not None:
                days = np.full((todo.size, 1), day, dtype=np.int64)
                hi = width
            else:
                days = first[todo, None] + np.arange(lo, hi)[None, :]
            ok = self._feasible(job, s, rows[todo], days, last[todo])
            for q in np.flatnonzero(self.quota_site[s.index[rows[todo]]]).tolist():
                self._quota_check(job, int(s.index[rows[todo[q]]]), days[q], ok[q],
                                  limit - int(count[todo[q]]))  # fmt: skip
            keep = ok & (np.cumsum(ok, axis=1) + count[todo, None] <= limit)
            rr, cc = np.nonzero(keep)
            got_rows.append(todo[rr])
            got_days.append(days[rr, cc])
            count[todo] += keep.sum(axis=1)
            lo, block = hi, 2 * block
        if not got_rows:
            return _Chains.join([])
        r = np.concatenate(got_rows)
        d = np.concatenate(got_days)
        order = np.lexsort((d, r))
        r, d = rows[r[order]], d[order]
        lead, make = s.lead[r], s.make[r]
        latest = d - lead if job.fresh else self.latest_free_ap[job.center, d - lead]
        release = d + make
        delivery = release + s.back[r]
        infusion = delivery + self.planner.infusion_days
        n = d.size
        return _Chains(
            job=np.full(n, job.index, dtype=np.int64),
            site=s.index[r],
            start=d,
            latest_apheresis=latest,
            release=release,
            delivery=delivery,
            infusion=infusion,
            ttt=infusion - job.enrolled,
            cost=s.cost[r],
        )

    def _feasible(
        self, job: _Job, s: _Sites, rows: np.ndarray, days: np.ndarray, last: np.ndarray
    ) -> np.ndarray:
        """Boolean (rows × days): approval in force, slot free, apheresis and QC capacity."""
        n_days = self.cal.days
        first = job.first_a + s.lead[rows]
        d = np.minimum(days, n_days - 1)
        sites = s.index[rows][:, None]
        ok: np.ndarray = (days >= first[:, None]) & (days <= last[:, None])
        ok &= s.approved[rows[:, None], d] & self.open_slot[sites, d]
        collect = np.maximum(d - s.lead[rows][:, None], 0)
        if job.fresh:
            ok &= self.ap_free[job.center, collect]
        else:
            ok &= self.latest_free_ap[job.center, collect] >= job.first_a
        release = d + s.make[rows][:, None]
        ok &= (release >= n_days) | self.qc_ok[sites, np.minimum(release, n_days - 1)]
        return ok

    def _quota_check(
        self, job: _Job, site: int, days: np.ndarray, ok: np.ndarray, need: int
    ) -> None:
        """Clear the days whose slot a quota holds for others; keep the first ``need`` open."""
        site_id = self.cal.site_ids[site]
        kept = 0
        for c in np.flatnonzero(ok).tolist():
            if kept >= need or not self.cal.slot_open_to(
                site_id, int(days[c]), job.party, self.today
            ):
                ok[c] = False
            else:
                kept += 1

    def pool(self, jobs: list[_Job], per_site: int) -> _Chains:
        return _Chains.join([self.search(job, per_site) for job in jobs])

    def booked(self, site: int, start: int, center: int, collect: int, release: int) -> None:
        """Refresh the arrays after a booking at (site, start), collection and release days."""
        cal = self.cal
        self.open_slot[site, start] = cal.slots[site, start] > cal.booked[site, start]
        self.ap_free[center, collect] = (
            cal.apheresis_booked[center, collect] < cal.apheresis[center, collect]
        )
        self.latest_free_ap[center] = np.maximum.accumulate(
            np.where(self.ap_free[center], self.days, -1)
        )
        if release < cal.days:
            self.qc_ok[site, release] = cal.qc_booked[site, release] < cal.qc[site, release]


def _with_baseline(
    search: _ChainSearch, jobs: list[_Job], pool: _Chains, baseline: BacklogPlan
) -> tuple[_Chains, dict[int, int]]:
    """The pool with the baseline plan's chains in it, and job → its chain in the pool."""
    cal = search.cal
    job_of = {j.order.id: j for j in jobs}
    # the pool is sorted by job, site, start: its keys ascend
    width = len(cal.site_ids) * cal.days
    keys = pool.job * width + pool.site * cal.days + pool.start
    extra: list[_Chains] = []
    start_at: dict[int, int] = {}
    n = pool.size
    for a in baseline.assignments:
        job = job_of.get(a.order)
        if job is None or a.site not in cal.site_index:
            continue
        i, d = cal.site_index[a.site], cal.day(a.start)
        key = job.index * width + i * cal.days + d
        at = int(np.searchsorted(keys, key))
        k: int | None = at if at < keys.size and keys[at] == key else None
        if k is None:
            found = search.search(job, 1, site=i, day=d)
            if not found.size:
                continue  # e.g. a slot only the greedy booking order opened; not a candidate
            extra.append(found)
            k, n = n, n + 1
        start_at[job.index] = k
    if not extra:
        return pool, start_at
    merged = _Chains.join([pool, *extra])
    order = np.argsort(merged.job, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return merged.select(order), {j: int(rank[k]) for j, k in start_at.items()}


# -- the model ------------------------------------------------------------------


@dataclass
class _Solved:
    status: PlanStatus
    method: str
    objective: float | None
    bound: float | None
    gap: float | None
    chosen: dict[int, int] | None
    """Job index → its chain in the pool; None when there is no plan."""
    seconds: float
    message: str


@dataclass
class _Layout:
    """The apheresis part of the model for the centers whose rows are in it."""

    row_lower: np.ndarray
    row_upper: np.ndarray
    chain_row: np.ndarray
    """Per pool chain: its node row (cryopreserved) or center-day row (fresh), or -1."""
    starts: np.ndarray
    index: np.ndarray
    value: np.ndarray
    """Flow columns (collect, store) in CSC form."""
    flows: dict[int, tuple[int, int, np.ndarray, np.ndarray]]
    """Job → (first day, its first store column, collection days, their columns)."""

    @property
    def n_cols(self) -> int:
        return int(self.starts.size - 1)


class _Problem:
    """The assignment problem over a pool of chains; solved by column and row generation."""

    def __init__(
        self,
        calendar: CapacityCalendar,
        jobs: list[_Job],
        pool: _Chains,
        cost_weight: float,
        penalty: float | None,
        today: int,
        start_at: dict[int, int],
    ) -> None:
        self.cal = calendar
        self.jobs = jobs
        self.today = today
        self.penalty = penalty
        self.n_jobs = n = len(jobs)
        self.weight = np.array([j.order.weight for j in jobs], dtype=float)
        self.pool, self.start_at = self._quota_filter(pool, start_at)
        p = self.pool
        self.bounds = p.bounds(n)
        self.cost = self.weight[p.job] * p.ttt + cost_weight * p.cost if p.size else np.zeros(0)
        if penalty is not None:
            self.u_cost = self.weight * penalty
        else:
            # leaving an order out must cost more than any reshuffle of the others can save
            worst = np.zeros(n)
            if p.size:
                np.maximum.at(worst, p.job, self.cost)
            big = 10.0 * (worst.sum() + 1.0) / (self.weight.min() if n else 1.0)
            self.u_cost = self.weight * big
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.n_rows = 0
        self.side = Counter[str]()
        table: list[np.ndarray] = []
        coef: list[np.ndarray] = []
        orders = self._rows(np.ones(n), np.ones(n))
        table.append(orders[p.job])
        coef.append(np.ones(p.size, dtype=np.int8))
        for family, rows in (("site-day", self._site_day_rows()), ("qc-day", self._qc_rows())):
            if rows is not None:
                table.append(rows)
                coef.append(np.ones(p.size, dtype=np.int8))
                self.side[family] = int(np.unique(rows[rows >= 0]).size)
        for rows, signs in self._quota_rows():
            table.append(rows)
            coef.append(signs)
        self.table = np.stack(table, axis=1) if p.size else np.zeros((0, 1), dtype=np.int64)
        self.coef = np.stack(coef, axis=1) if p.size else np.zeros((0, 1), dtype=np.int8)
        self.fixed_rows = self.n_rows
        self.maybe_binding = self._maybe_binding_centers()
        self.active: set[int] = set()
        self.layout = self._layout()

    # -- rows that never change

    def _rows(self, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        ids = self.n_rows + np.arange(lower.size)
        self.n_rows += int(lower.size)
        self.lower.append(np.asarray(lower, dtype=float))
        self.upper.append(np.asarray(upper, dtype=float))
        return ids

    def _capacity_rows(
        self, key: np.ndarray, use: np.ndarray, free: np.ndarray
    ) -> np.ndarray | None:
        """Per chain, its ``≤ free`` row, for keys that more orders could use than have room.

        An order has at most one chain per key (one per site and start day, or per site
        and release day), so the chains on a key count distinct orders.
        """
        if not use.any():
            return None
        uniq, inverse, counts = np.unique(key[use], return_inverse=True, return_counts=True)
        room = free[uniq]
        binding = counts > room
        if not binding.any():
            return None
        ids = np.full(uniq.size, -1, dtype=np.int64)
        ids[binding] = self._rows(np.full(int(binding.sum()), -_INF), room[binding].astype(float))
        rows = np.full(use.size, -1, dtype=np.int64)
        rows[use] = ids[inverse]
        return rows

    def _site_day_rows(self) -> np.ndarray | None:
        p, cal = self.pool, self.cal
        free = (cal.slots - cal.booked).astype(np.int64).ravel()
        return self._capacity_rows(p.site * cal.days + p.start, np.ones(p.size, dtype=bool), free)

    def _qc_rows(self) -> np.ndarray | None:
        p, cal = self.pool, self.cal
        finite = np.array([s.qc_capacity_per_day is not None for s in cal.network.sites])
        use = finite[p.site] & (p.release < cal.days)
        free = (cal.qc - cal.qc_booked).astype(np.int64).ravel()
        key = p.site * cal.days + np.minimum(p.release, cal.days - 1)
        return self._capacity_rows(key, use, free)

    def _quota_windows(self) -> list[tuple[int, int, int, int, int, np.ndarray]]:
        """Per quota still holding slots: (site, first, open_from, last, room, holder mask);
        ``room`` = free slots of the unreleased window − slots the quota still holds."""
        cal = self.cal
        found = []
        for qs in cal._quotas:  # the quotas' use lives only in the calendar's quota states
            q = qs.quota
            remaining = qs.slots - qs.used
            open_from = max(qs.first, self.today + q.release_days_ahead + 1)
            if remaining <= 0 or open_from > qs.last:
                continue
            i = cal.site_index[q.site]
            free = int(
                (cal.slots[i, open_from : qs.last + 1] - cal.booked[i, open_from : qs.last + 1])
                .clip(min=0)
                .sum()
            )
            holds = np.array([j.party.holds(q) for j in self.jobs], dtype=bool)
            found.append((i, qs.first, open_from, qs.last, free - remaining, holds))
        return found

    def _quota_filter(
        self, pool: _Chains, start_at: dict[int, int]
    ) -> tuple[_Chains, dict[int, int]]:
        """Drop chains of non-holders inside a window whose quota leaves no room at all.

        The calendar lets such a chain through only once the holder's own early
        bookings shrink the protection, or when its party holds another quota
        there; the model counts on neither.
        """
        if not pool.size or not self.cal.quotas:
            return pool, start_at
        keep = np.ones(pool.size, dtype=bool)
        for i, _, open_from, last, room, holds in self._quota_windows():
            if room >= 1:
                continue
            inside = (pool.site == i) & (pool.start >= open_from) & (pool.start <= last)
            keep &= ~(inside & ~holds[pool.job])
        if keep.all():
            return pool, start_at
        new = np.cumsum(keep) - 1
        return pool.select(keep), {j: int(new[k]) for j, k in start_at.items() if keep[k]}

    def _quota_rows(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Table columns (row per chain, -1 if none; coefficient) of the quota rows."""
        p = self.pool
        entries: list[tuple[np.ndarray, int, int]] = []
        for i, first, open_from, last, room, holds in self._quota_windows():
            at = p.site == i
            others = at & (p.start >= open_from) & (p.start <= last) & ~holds[p.job]
            if np.unique(p.job[others]).size <= room:
                continue
            early = at & (p.start >= first) & (p.start < open_from) & holds[p.job]
            [row] = self._rows(np.array([-_INF]), np.array([float(room)]))
            entries.append((np.flatnonzero(others), int(row), 1))
            entries.append((np.flatnonzero(early), int(row), -1))
            self.side["quota"] += 1
        if not entries:
            return []
        chain = np.concatenate([e[0] for e in entries])
        row = np.concatenate([np.full(e[0].size, e[1]) for e in entries])
        sign = np.concatenate([np.full(e[0].size, e[2]) for e in entries])
        order = np.argsort(chain, kind="stable")
        chain, row, sign = chain[order], row[order], sign[order]
        slot = np.arange(chain.size) - np.searchsorted(chain, chain)
        columns = []
        for s in range(int(slot.max()) + 1 if slot.size else 0):
            on = slot == s
            rows = np.full(p.size, -1, dtype=np.int64)
            signs = np.zeros(p.size, dtype=np.int8)
            rows[chain[on]] = row[on]
            signs[chain[on]] = sign[on]
            columns.append((rows, signs))
        return columns

    # -- apheresis rows, for the centers where they are needed

    def _maybe_binding_centers(self) -> set[int]:
        p = self.pool
        cap = self.cal.apheresis - self.cal.apheresis_booked
        by_center: dict[int, list[_Job]] = defaultdict(list)
        for j in self.jobs:
            if self.bounds[j.index + 1] > self.bounds[j.index]:
                by_center[j.center].append(j)
        found = set()
        for center, jobs in by_center.items():
            latest = [
                p.latest_apheresis[self.bounds[j.index] : self.bounds[j.index + 1]] for j in jobs
            ]
            if not _never_binds(jobs, latest, cap[center]):
                found.add(center)
        return found

    def _layout(self) -> _Layout:
        """Center-day rows and flows for the centers in ``self.active``."""
        p, cal = self.pool, self.cal
        self.n_rows = self.fixed_rows
        cap = (cal.apheresis - cal.apheresis_booked).astype(np.int64)
        chain_row = np.full(p.size, -1, dtype=np.int64)
        cols: list[tuple[np.ndarray, np.ndarray]] = []  # per flow column: rows, values
        flows: dict[int, tuple[int, int, np.ndarray, np.ndarray]] = {}
        n_cols = 0
        lower: list[float] = []
        upper: list[float] = []
        center_row: dict[tuple[int, int], int] = {}

        def new_row(lo: float, hi: float) -> int:
            lower.append(lo)
            upper.append(hi)
            return self.fixed_rows + len(lower) - 1

        def day_row(center: int, t: int) -> int:
            r = center_row.get((center, t))
            if r is None:
                r = center_row[(center, t)] = new_row(-_INF, float(cap[center, t]))
            return r

        for job in self.jobs:
            if job.center not in self.active:
                continue
            lo_k, hi_k = int(self.bounds[job.index]), int(self.bounds[job.index + 1])
            if hi_k == lo_k:
                continue
            latest = p.latest_apheresis[lo_k:hi_k]
            if job.fresh:
                chain_row[lo_k:hi_k] = [day_row(job.center, int(t)) for t in latest]
                continue
            lo, hi = job.first_a, int(latest.max())
            nodes = np.array([new_row(0.0, 0.0) for _ in range(hi - lo + 1)])
            chain_row[lo_k:hi_k] = nodes[latest - lo]
            first_store = n_cols
            for t in range(lo + 1, hi + 1):  # store: material of day t collected on day t-1
                cols.append((np.array([nodes[t - lo], nodes[t - lo - 1]]), np.array([-1.0, 1.0])))
                n_cols += 1
            days = np.flatnonzero(cap[job.center, lo : hi + 1] > 0) + lo
            collect = np.arange(n_cols, n_cols + days.size)
            for t in days.tolist():
                cols.append(
                    (np.array([nodes[t - lo], day_row(job.center, t)]), np.array([-1.0, 1.0]))
                )
                n_cols += 1
            flows[job.index] = (lo, first_store, days, collect)
        self.n_rows = self.fixed_rows + len(lower)
        sizes = np.array([c[0].size for c in cols], dtype=np.int64)
        return _Layout(
            row_lower=np.array(lower, dtype=float),
            row_upper=np.array(upper, dtype=float),
            chain_row=chain_row,
            starts=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            index=np.concatenate([c[0] for c in cols]).astype(np.int64)
            if cols
            else np.zeros(0, dtype=np.int64),
            value=np.concatenate([c[1] for c in cols]) if cols else np.zeros(0),
            flows=flows,
        )

    # -- columns for HiGHS

    def _chain_csc(self, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.concatenate([self.table[ks], self.layout.chain_row[ks, None]], axis=1)
        vals = np.concatenate([self.coef[ks], np.ones((ks.size, 1), dtype=np.int8)], axis=1)
        on = rows >= 0
        starts = np.concatenate([[0], np.cumsum(on.sum(axis=1))])
        return starts, rows[on], vals[on].astype(float)

    def _highs(self, ks: np.ndarray, integer: bool, seconds: float, mip_gap: float) -> Any:
        """A HiGHS model with chain columns ``ks``, then the unassigned and flow columns."""
        n = self.n_jobs
        lay = self.layout
        c_start, c_index, c_value = self._chain_csc(ks)
        starts = np.concatenate(
            [c_start[:-1], c_index.size + np.arange(n), c_index.size + n + lay.starts]
        )
        index = np.concatenate([c_index, np.arange(n), lay.index]).astype(np.int32)
        value = np.concatenate([c_value, np.ones(n), lay.value])
        n_cols = ks.size + n + lay.n_cols
        cost = np.concatenate([self.cost[ks], self.u_cost, np.zeros(lay.n_cols)])
        integrality = np.zeros(n_cols, dtype=np.int32)
        if integer:
            integrality[: ks.size] = 1
        row_lower = np.concatenate([*self.lower, lay.row_lower])
        row_upper = np.concatenate([*self.upper, lay.row_upper])
        h = new_highs(time_limit=max(seconds, 1e-3), mip_rel_gap=float(mip_gap))
        if not integer:
            h.setOptionValue("solver", "simplex")
        passed = h.passModel(
            n_cols, self.n_rows, int(index.size), int(highspy.MatrixFormat.kColwise),
            int(highspy.ObjSense.kMinimize), 0.0, cost, np.zeros(n_cols), np.ones(n_cols),
            row_lower, row_upper, starts.astype(np.int32), index, value, integrality,
        )  # fmt: skip
        if passed == highspy.HighsStatus.kError:
            raise RuntimeError("internal error: HiGHS refused the model")
        return h

    def reduced_costs(self, dual: np.ndarray) -> np.ndarray:
        y = np.append(dual, 0.0)  # row -1 (no row) has dual 0
        used = (self.coef * y[self.table]).sum(axis=1) + y[self.layout.chain_row]
        return np.asarray(self.cost - used)

    def objective_of(self, chosen: dict[int, int]) -> float:
        ks = np.fromiter(chosen.values(), dtype=np.int64, count=len(chosen))
        left = np.ones(self.n_jobs, dtype=bool)
        left[np.fromiter(chosen.keys(), dtype=np.int64, count=len(chosen))] = False
        return float(self.cost[ks].sum() + self.u_cost[left].sum())

    def trivial_bound(self) -> float:
        """Σ over orders of its cheapest option, capacity ignored: a lower bound on any plan."""
        best = self.u_cost.copy()
        if self.pool.size:
            np.minimum.at(best, self.pool.job, self.cost)
        return float(best.sum())

    @property
    def transportation(self) -> bool:
        """Only order rows and site-day rows: a transportation problem, its LP integral."""
        return not self.active and not self.side["qc-day"] and not self.side["quota"]

    # -- solving

    def solve(self, time_limit: float, mip_gap: float) -> _Solved:
        clock = time.perf_counter()
        if self.pool.size == 0:
            feasible = self.penalty is not None or not self.jobs
            objective = float(self.u_cost.sum()) if feasible else None
            return _Solved(
                PlanStatus.OPTIMAL if feasible else PlanStatus.INFEASIBLE, NOTHING, objective,
                objective, 0.0 if feasible else None, {}, 0.0,
                "no order has a candidate chain" if self.jobs else "empty backlog",
            )  # fmt: skip
        in_model = self._initial_columns()
        bound = self.trivial_bound()
        notes: list[str] = []
        while True:
            lp = self._lp(in_model, clock, time_limit, mip_gap)
            if lp is None:
                return self._fallback(bound, clock, "time limit reached in the LP", notes)
            lb, x, rc = lp
            bound = max(bound, lb)
            if self._integral(x):
                chosen = self._chosen(x)
                method = TRANSPORTATION_LP if self.transportation else MIP
                status, solved_bound, message = PlanStatus.OPTIMAL, lb, (
                    "the LP optimum is integral (transportation problem)" if self.transportation
                    else "the LP relaxation's optimum is integral, hence optimal (no branching)"
                )  # fmt: skip
            else:
                remaining = time_limit - (time.perf_counter() - clock)
                mip = self._mip(in_model, rc, lb, remaining, mip_gap)
                if mip is None:
                    return self._fallback(bound, clock, "time limit reached in the MIP", notes)
                chosen, status, solved_bound, message = mip
                method = MIP
                if self.transportation:
                    notes.append("the LP optimum was not integral; solved as a MIP")
            violated = self._violated(chosen)
            if violated and time.perf_counter() - clock < time_limit:
                self.active |= violated
                self.layout = self._layout()
                notes.append(f"apheresis rows added for {len(violated)} centers")
                continue
            if violated:
                chosen = self._repair(chosen, violated)
                status, message = PlanStatus.FEASIBLE, "time limit; orders dropped to fit apheresis"
            notes.append(f"{int(in_model.sum())} of {self.pool.size} candidate chains priced in")
            objective = self.objective_of(chosen)
            final_bound = min(max(solved_bound, bound), objective)
            gap = _gap(objective, final_bound)
            if status is PlanStatus.OPTIMAL and gap > mip_gap + 1e-9:
                status = PlanStatus.FEASIBLE
            return self._finish(
                _Solved(status, method, objective, final_bound, gap, chosen,
                        time.perf_counter() - clock, "; ".join([*notes, message])),
            )  # fmt: skip

    def _finish(self, solved: _Solved) -> _Solved:
        """Without a penalty, a plan that leaves an order out means no plan assigns all."""
        if self.penalty is not None or solved.chosen is None:
            return solved
        if len(solved.chosen) == self.n_jobs:
            return solved
        if solved.status is PlanStatus.OPTIMAL:
            return dataclasses.replace(
                solved, status=PlanStatus.INFEASIBLE, objective=None, bound=None, gap=None,
                message="no plan assigns every order",
            )  # fmt: skip
        return dataclasses.replace(
            solved, status=PlanStatus.NO_SOLUTION, objective=None, gap=None,
            message=solved.message + "; no plan assigning every order found in time",
        )  # fmt: skip

    def _initial_columns(self) -> np.ndarray:
        p = self.pool
        order = np.argsort(p.job * (2.0 * np.abs(self.cost).max() + 1.0) + self.cost)
        rank = np.arange(p.size) - self.bounds[p.job[order]]
        in_model = np.zeros(p.size, dtype=bool)
        in_model[order[rank < INITIAL_CHAINS]] = True
        for k in self.start_at.values():
            in_model[k] = True
        return in_model

    def _lp(
        self, in_model: np.ndarray, clock: float, time_limit: float, mip_gap: float
    ) -> tuple[float, np.ndarray, np.ndarray] | None:
        """Column generation to the LP optimum over all chains: (bound, x per chain, reduced
        costs per chain); None if the time ran out. Adds the chains it prices in to
        ``in_model``."""
        ks = np.flatnonzero(in_model)
        h = self._highs(ks, False, time_limit - (time.perf_counter() - clock), mip_gap)
        blocks = [(0, ks)]
        n_fixed = ks.size + self.n_jobs + self.layout.n_cols
        while True:
            h.setOptionValue("time_limit", max(time_limit - (time.perf_counter() - clock), 1e-3))
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                return None
            sol = h.getSolution()
            rc = self.reduced_costs(np.asarray(sol.row_dual))
            rc_out = np.where(in_model, np.inf, rc)
            enter = np.flatnonzero(rc_out < -1e-7)
            if not enter.size:
                break
            # the most negative few per order
            order = enter[np.lexsort((rc_out[enter], self.pool.job[enter]))]
            jobs = self.pool.job[order]
            rank = np.arange(order.size) - np.searchsorted(jobs, jobs)
            new = np.sort(order[rank < PRICED_PER_ROUND])
            starts, index, value = self._chain_csc(new)
            h.addCols(
                int(new.size), self.cost[new], np.zeros(new.size), np.ones(new.size),
                int(index.size), starts[:-1].astype(np.int32), index.astype(np.int32), value,
            )  # fmt: skip
            blocks.append((n_fixed, new))
            n_fixed += new.size
            in_model[new] = True
        col = np.asarray(sol.col_value)
        x = np.zeros(self.pool.size)
        for at, ids in blocks:
            x[ids] = col[at : at + ids.size]
        return float(h.getInfo().objective_function_value), x, rc

    def _mip(
        self, in_model: np.ndarray, rc: np.ndarray, lb: float, seconds: float, mip_gap: float
    ) -> tuple[dict[int, int], PlanStatus, float, str] | None:
        """Branch and bound on the chains in the model; then, if chains left out could still
        improve on the plan (reduced cost below the gap), once more with them."""
        incumbent = self._start_chosen()
        clock = time.perf_counter()
        best: tuple[dict[int, int], PlanStatus, float, str] | None = None
        for _ in range(2):
            left = seconds - (time.perf_counter() - clock)
            if left <= 0:
                break
            ks = np.flatnonzero(in_model)
            h = self._highs(ks, True, left, mip_gap)
            if incumbent is not None:
                start = self._start_vector(ks, incumbent)
                if start is not None:
                    sol = highspy.HighsSolution()
                    sol.col_value = start.tolist()
                    h.setSolution(sol)
            h.run()
            info = h.getInfo()
            if int(info.primal_solution_status) != 2:  # no feasible solution
                break
            col = np.asarray(h.getSolution().col_value)
            x = np.zeros(self.pool.size)
            x[ks] = col[: ks.size]
            chosen = self._chosen(x)
            upper = self.objective_of(chosen)
            out = ~in_model
            least = float(rc[out].min()) if out.any() else np.inf
            mip_bound = float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound) else lb
            bound = max(lb, min(mip_bound, lb + least))
            proven = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
            status = PlanStatus.OPTIMAL if proven else PlanStatus.FEASIBLE
            best = (chosen, status, bound, h.modelStatusToString(h.getModelStatus()))
            incumbent = chosen
            could_improve = out & (rc < upper - lb - 1e-9)
            if not proven or not could_improve.any():
                break
            if could_improve.sum() > COMPLETION_LIMIT:
                best = (chosen, PlanStatus.FEASIBLE, bound, best[3] + "; too many chains to prove")
                break
            in_model |= could_improve
        return best

    def _start_chosen(self) -> dict[int, int] | None:
        if not self.start_at:
            return {} if self.penalty is not None else None
        return dict(self.start_at)

    def _start_vector(self, ks: np.ndarray, chosen: dict[int, int]) -> np.ndarray | None:
        """Column values of a plan (chains in ``ks``), with its flows; None if it cannot be
        written in this model."""
        lay = self.layout
        v = np.zeros(ks.size + self.n_jobs + lay.n_cols)
        where = {int(k): i for i, k in enumerate(ks.tolist())}
        collect = self._collection_plan(chosen)
        if collect is None:
            return None
        for job in self.jobs:
            k = chosen.get(job.index)
            if k is None:
                v[ks.size + job.index] = 1.0
                continue
            if k not in where:
                return None
            v[where[k]] = 1.0
            flow = lay.flows.get(job.index)
            if flow is None:
                continue
            lo, first_store, days, cols = flow
            a, latest = collect[job.index], int(self.pool.latest_apheresis[k])
            at = np.flatnonzero(days == a)
            if not lo <= a <= latest or not at.size:
                return None
            base = ks.size + self.n_jobs
            v[base + cols[at[0]]] = 1.0
            for t in range(a + 1, latest + 1):
                v[base + first_store + (t - lo - 1)] = 1.0
        return v

    def _collection_plan(self, chosen: dict[int, int]) -> dict[int, int] | None:
        """Apheresis days for a plan, each as late as the center's capacity allows."""
        return _collection_days(self.cal, self.jobs, self.pool, chosen)

    def _integral(self, x: np.ndarray) -> bool:
        return bool(np.all(np.minimum(np.abs(x), np.abs(1 - x)) < 1e-6))

    def _chosen(self, x: np.ndarray) -> dict[int, int]:
        ks = np.flatnonzero(x > 0.5)
        return {int(self.pool.job[k]): int(k) for k in ks}

    def _violated(self, chosen: dict[int, int]) -> set[int]:
        """Centers (whose rows are not in the model) that cannot collect the plan's orders."""
        cap = self.cal.apheresis - self.cal.apheresis_booked
        windows: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for j, k in chosen.items():
            job = self.jobs[j]
            if job.center in self.maybe_binding and job.center not in self.active:
                latest = int(self.pool.latest_apheresis[k])
                windows[job.center].append((latest if job.fresh else job.first_a, latest))
        return {
            center
            for center, w in windows.items()
            if _matching(sorted(w), _capacity_of(cap[center])) is None
        }

    def _repair(self, chosen: dict[int, int], centers: set[int]) -> dict[int, int]:
        """Drop the orders a center cannot collect (earliest deadline first keeps the rest)."""
        cap = self.cal.apheresis - self.cal.apheresis_booked
        kept = dict(chosen)
        for center in centers:
            group = [(j, k) for j, k in chosen.items() if self.jobs[j].center == center]
            windows = []
            for j, k in group:
                latest = int(self.pool.latest_apheresis[k])
                windows.append((latest if self.jobs[j].fresh else self.jobs[j].first_a, latest))
            order = sorted(range(len(group)), key=lambda i: windows[i])
            days = _matching([windows[i] for i in order], _capacity_of(cap[center]), drop=True)
            assert days is not None
            for pos, i in enumerate(order):
                if days[pos] is None:
                    del kept[group[i][0]]
        return kept

    def _fallback(self, bound: float, clock: float, message: str, notes: list[str]) -> _Solved:
        """Out of time without a plan of our own: the greedy start if there is one."""
        chosen = self._start_chosen()
        seconds = time.perf_counter() - clock
        text = "; ".join([*notes, message])
        if chosen is None:
            return _Solved(PlanStatus.NO_SOLUTION, MIP, None, bound, None, None, seconds, text)
        objective = self.objective_of(chosen)
        solved = _Solved(
            PlanStatus.FEASIBLE, MIP, objective, min(bound, objective), _gap(objective, bound),
            chosen, seconds, text + ("; the best plan found is the greedy start" if chosen else
                                     "; the best plan found leaves every order unassigned"),
        )  # fmt: skip
        return self._finish(solved)

    @property
    def n_cols(self) -> int:
        return int(self.pool.size + self.n_jobs + self.layout.n_cols)


def _gap(objective: float, bound: float) -> float:
    return max(0.0, (objective - bound) / max(abs(objective), 1e-9))


def _capacity_of(cap: np.ndarray, mirrored: bool = False) -> Callable[[int], int]:
    """Capacity of day t (of day -t on mirrored days); none outside the calendar."""
    sign = -1 if mirrored else 1
    return lambda t: int(cap[sign * t]) if 0 <= sign * t < cap.size else 0


def _never_binds(jobs: list[_Job], latest: list[np.ndarray], cap: np.ndarray) -> bool:
    """Can the center collect every order whichever of its chains each one gets?

    With fresh orders (fixed collection days): every day must hold every order that
    could use it. Cryopreserved only: the orders' tightest windows (earliest
    apheresis to the earliest chain's latest day) must admit a matching of orders
    to days (earliest deadline first); wider windows only help.
    """
    if any(j.fresh for j in jobs):
        use = np.zeros(cap.size, dtype=np.int64)
        for j, lat in zip(jobs, latest, strict=True):
            if j.fresh:
                use[np.unique(lat)] += 1
            else:
                use[j.first_a : int(lat.max()) + 1] += 1
        return bool(np.all(use <= cap))
    windows = sorted((j.first_a, int(lat.min())) for j, lat in zip(jobs, latest, strict=True))
    return _matching(windows, _capacity_of(cap)) is not None


def _matching(
    windows: list[tuple[int, int]], capacity: Callable[[int], int], drop: bool = False
) -> list[int | None] | None:
    """Earliest deadline first: a day in [lo, hi] for each window (sorted by lo), at most
    ``capacity(t)`` on day t. None if impossible; with ``drop``, windows that cannot be
    served get None instead."""
    days: list[int | None] = [None] * len(windows)
    heap: list[tuple[int, int]] = []
    k, n = 0, len(windows)
    t = windows[0][0] if windows else 0
    while k < n or heap:
        if not heap:
            t = max(t, windows[k][0])
        while k < n and windows[k][0] <= t:
            heapq.heappush(heap, (windows[k][1], k))
            k += 1
        while heap and heap[0][0] < t:
            if not drop:
                return None
            heapq.heappop(heap)
        for _ in range(capacity(t)):
            if not heap:
                break
            days[heapq.heappop(heap)[1]] = t
        t += 1
    return days


def _collection_days(
    calendar: CapacityCalendar,
    jobs: list[_Job],
    pool: _Chains,
    chosen: dict[int, int],
) -> dict[int, int] | None:
    """Apheresis day of each chosen job: fresh on its fixed day, cryopreserved as late as the
    center's capacity allows; None if they do not fit (earliest deadline first is exact)."""
    cap = (calendar.apheresis - calendar.apheresis_booked).astype(np.int64)
    days: dict[int, int] = {}
    by_center: dict[int, list[_Job]] = defaultdict(list)
    for j, k in chosen.items():
        job = jobs[j]
        if job.fresh:
            days[j] = int(pool.latest_apheresis[k])
            cap[job.center, days[j]] -= 1
        else:
            by_center[job.center].append(job)
    if (cap < 0).any():
        return None
    for center, group in by_center.items():
        # as late as possible: earliest deadline first on mirrored days
        windows = [(-int(pool.latest_apheresis[chosen[j.index]]), -j.first_a) for j in group]
        order = sorted(range(len(group)), key=lambda i: windows[i])
        found = _matching([windows[i] for i in order], _capacity_of(cap[center], mirrored=True))
        if found is None:
            return None
        for pos, i in enumerate(order):
            day = found[pos]
            assert day is not None
            days[group[i].index] = -day
    return days


# -- from solution to plan --------------------------------------------------------


def _assignment_of(
    network: Network, calendar: CapacityCalendar, job: _Job, c: _Chains, k: int, collect: int
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


def _plan_from(
    network: Network,
    calendar: CapacityCalendar,
    planner: OfferPlanner,
    backlog: Backlog,
    jobs: list[_Job],
    outside: list[Order],
    problem: _Problem,
    solved: _Solved,
    now: date,
) -> BacklogPlan:
    plan = BacklogPlan(
        status=solved.status,
        method=solved.method,
        objective=solved.objective,
        bound=solved.bound,
        gap=solved.gap,
        assignments=[],
        unassigned=[],
        solve_seconds=solved.seconds,
        variables=problem.n_cols,
        constraints=problem.n_rows,
        candidates=problem.pool.size,
        message=solved.message,
    )
    chosen = solved.chosen
    if chosen is None:
        reason = (
            "no plan assigns every order" if solved.status is PlanStatus.INFEASIBLE
            else f"the search stopped ({solved.message}) before it found a plan"
        )  # fmt: skip
        plan.unassigned = [Unassigned(o.id, Why.NOT_SOLVED, reason) for o in backlog.orders]
        return plan
    collect = problem._collection_plan(chosen)
    if collect is None:
        raise RuntimeError("internal error: no apheresis days fit the plan")
    found = {
        jobs[j].order.id: _assignment_of(network, calendar, jobs[j], problem.pool, k, collect[j])
        for j, k in chosen.items()
    }
    plan.assignments = [found[o.id] for o in backlog.orders if o.id in found]
    plan.unassigned = _explain_missing(planner, calendar, jobs, outside, problem, chosen, now)
    _verify(calendar, backlog, plan, now)
    return plan


def _explain_missing(
    planner: OfferPlanner,
    calendar: CapacityCalendar,
    jobs: list[_Job],
    outside: list[Order],
    problem: _Problem,
    chosen: dict[int, int],
    now: date,
) -> list[Unassigned]:
    """A reason for every order without a chain, in backlog order."""
    c = problem.pool
    found: dict[str, Unassigned] = {o.id: _outside(o, calendar) for o in outside}
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
            found[job.order.id] = _no_candidate(job.order, offers.excluded)
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
        if problem.penalty is not None:
            best = int(ks[np.argmin(problem.cost[ks])])
            leave = float(problem.u_cost[job.index])
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
        found[job.order.id] = Unassigned(
            job.order.id, Why.CAPACITY,
            f"no room left for it: {span}; " + "; ".join(parts)
            + "; placing it would displace orders that weigh more in the objective",
        )  # fmt: skip
    position = {
        oid: i for i, oid in enumerate([j.order.id for j in jobs] + [o.id for o in outside])
    }
    return sorted(found.values(), key=lambda u: position[u.order])


def _explain_infeasible(
    plan: BacklogPlan,
    network: Network,
    calendar: CapacityCalendar,
    backlog: Backlog,
    cost_weight: float,
    time_limit: float,
    candidates_per_site: int,
    now: date,
) -> BacklogPlan:
    """No plan assigns every order: solve again with a penalty to show which orders do not
    fit, and keep the status."""
    relaxed = optimize(
        network, calendar, backlog,
        time_limit=time_limit, cost_weight=cost_weight, unassigned_penalty=365.0,
        candidates_per_site=candidates_per_site, today=now, warm_start=False,
    )  # fmt: skip
    left = [u.order for u in relaxed.unassigned]
    proven = plan.status is PlanStatus.INFEASIBLE or (
        len(left) > 0 and relaxed.status is PlanStatus.OPTIMAL
    )
    return dataclasses.replace(
        relaxed,
        status=PlanStatus.INFEASIBLE if proven else plan.status,
        objective=None,
        bound=None,
        gap=None,
        solve_seconds=plan.solve_seconds + relaxed.solve_seconds,
        message=(
            f"no plan assigns every order: at most {len(relaxed.assignments)} of "
            f"{len(backlog.orders)} fit; the plan shown leaves out {', '.join(left)}"
            if proven
            else plan.message
        ),
    )


def _verify(calendar: CapacityCalendar, backlog: Backlog, plan: BacklogPlan, now: date) -> None:
    """Book the plan into a scratch copy: the calendar's own rules must accept every chain."""
    try:
        _book(scratch_copy(calendar), backlog, plan, now)
    except CapacityError as e:
        raise RuntimeError(f"internal error: the plan does not fit the calendar: {e}") from e


def _book(calendar: CapacityCalendar, backlog: Backlog, plan: BacklogPlan, now: date) -> list[int]:
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


# -- small helpers -----------------------------------------------------------------


def _check_arguments(
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


def _outside(order: Order, calendar: CapacityCalendar) -> Unassigned:
    return Unassigned(
        order.id, Why.OUTSIDE_CALENDAR,
        f"earliest apheresis {order.earliest_apheresis} is outside the capacity calendar "
        f"({calendar.origin} to {calendar.date_of(calendar.days - 1)})",
    )  # fmt: skip


def _no_candidate(order: Order, excluded: list[Exclusion]) -> Unassigned:
    why = "; ".join(f"{e.site}: {e.message}" for e in excluded) or "no site makes this product"
    return Unassigned(
        order.id, Why.NO_CANDIDATE, f"no site can offer a slot chain: {why}", tuple(excluded)
    )


def _objective(
    backlog: Backlog,
    assignments: list[Assignment],
    unassigned: list[Unassigned],
    cost_weight: float,
    penalty: float | None,
) -> float | None:
    if unassigned and penalty is None:
        return None
    weight = {o.id: o.weight for o in backlog.orders}
    total = sum(
        a.weight * a.time_to_treatment_days + cost_weight * a.lane_cost for a in assignments
    )
    return float(total + sum(weight[u.order] * (penalty or 0.0) for u in unassigned))
