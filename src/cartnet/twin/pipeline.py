"""The vein-to-vein pipeline of every order, simulated on the event kernel.

One order: enrolment at a treatment center → waiting for a slot → apheresis →
inbound lane → manufacturing on one line → QC → release (or out of
specification) → outbound lane, with import testing and QP certification on the
way when the batch is made outside the patient's market → infusion. Apheresis
and infusion fall on days the center is open. Patients may be lost at any time
before infusion (a constant daily hazard).

Slots are a call-off (CONWIP) system, as sites run them: a site holds
``lines + call-ahead`` pipeline places; an order booked at the site waits,
first come first served, for a place ("waiting for a slot"); when it gets one,
the patient is called for apheresis, the material ships, waits at the site for
a free line if need be (cryopreserved material may wait), and the place is
freed when manufacturing ends. With no lead time and no call-ahead this is
exactly an M/M/c queue, which the validation tests use.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from cartnet.network.distributions import Duration
from cartnet.network.entities import Scope, Site, StartingMaterial
from cartnet.network.geo import great_circle_km
from cartnet.network.model import Network
from cartnet.twin.kernel import Kernel
from cartnet.twin.policies import BookingPolicy, OrderRequest, SiteOption, WaitingOrder
from cartnet.twin.sampling import DrawPool
from cartnet.twin.settings import TwinSettings

# Order stages
WAITING, CALLED, MANUFACTURING, RELEASING, DONE = range(5)
_UNIFORMS_PER_ORDER = 8  # up to four QC decisions (fail?, then which outcome?)


@dataclass(frozen=True)
class DemandStream:
    """Poisson arrivals of one product and scope at one center."""

    center: str
    market: str
    product: str
    scope: str
    trial: str | None
    per_day: float
    growth_per_year: float


class SiteState:
    __slots__ = (
        "busy",
        "draw_mfg",
        "draw_qc",
        "free_lines",
        "free_places",
        "id",
        "line_queue",
        "lines",
        "mean_cycle",
        "mfg",
        "oos",
        "open_day",
        "place_queue",
        "places",
        "qc",
        "site",
        "starts",
    )

    def __init__(
        self,
        site: Site,
        oos: float | None,
        places: int,
        open_day: list[bool],
        weeks: int,
        rng: np.random.Generator,
    ):
        self.site = site
        self.draw_mfg = DrawPool(site.manufacturing, rng)
        self.draw_qc = DrawPool(site.qc, rng)
        self.id = site.id
        self.lines = site.lines
        self.free_lines = site.lines
        self.places = places
        self.free_places = places
        self.place_queue: deque[Order] = deque()
        self.line_queue: deque[Order] = deque()
        self.mfg: Duration = site.manufacturing
        self.qc: Duration = site.qc
        self.mean_cycle = site.manufacturing.mean
        self.oos = oos
        self.open_day = open_day
        self.busy = np.zeros(weeks)
        self.starts = 0


class LegFacts:
    """A center and a site: the lanes, their expected days and cost, as plain numbers.

    The way back is a delivery route: one lane, or two around the site where an
    imported batch is certified, plus the importation step's days.
    """

    __slots__ = (
        "cost",
        "cross_border",
        "distance_km",
        "fixed_days",
        "in_days",
        "lane_in",
        "lane_out",
        "out_days",
        "route",
    )

    def __init__(self, net: Network, center: str, site: Site):
        self.lane_in = net.lane(center, site.id)
        self.route = net.delivery_route(site.id, center)
        self.lane_out = self.route.lanes[-1]
        self.in_days = self.lane_in.mean_days
        self.out_days = self.route.mean_days
        self.fixed_days = self.in_days + site.manufacturing.mean + site.qc.mean + self.out_days
        self.cost = self.lane_in.cost + self.route.cost
        country, lat, lon = net.place(center)
        self.cross_border = country != site.country
        self.distance_km = great_circle_km(lat, lon, site.lat, site.lon)


class Leg:
    """The facts of a center-site pair plus this replication's transit draws."""

    __slots__ = ("customs_out", "facts", "importation", "transit_in", "transit_out")

    def __init__(self, facts: LegFacts, rng: np.random.Generator):
        self.facts = facts
        self.transit_in = DrawPool(facts.lane_in.transit, rng)
        self.transit_out = [DrawPool(lane.transit, rng) for lane in facts.route.lanes]
        self.customs_out = sum(lane.customs_days for lane in facts.route.lanes)
        step = facts.route.importation
        self.importation = DrawPool(step.duration, rng) if step is not None else None

    def delivery_days(self, order: Order) -> float:
        """Days from release to delivery: transit, customs and any importation step."""
        days = self.customs_out
        for draw in self.transit_out:
            days += draw()
        if self.importation is not None:
            order.importation_days = self.importation()
            days += order.importation_days
        return days


class Order:
    __slots__ = (
        "apheresis",
        "attempts",
        "called",
        "center",
        "cost",
        "cross_border",
        "delivered",
        "enrolled",
        "holds_place",
        "id",
        "importation_days",
        "infused",
        "lane_in",
        "lane_out",
        "leg",
        "loss_at",
        "lost_at",
        "mfg_start",
        "oos",
        "oos_released",
        "released",
        "request",
        "site",
        "stage",
        "stream",
        "u",
        "u_next",
    )

    def __init__(self, oid: int, stream: DemandStream, enrolled: float, loss_at: float, u: Any):
        self.id = oid
        self.stream = stream
        self.center = stream.center
        self.enrolled = enrolled
        self.loss_at = loss_at
        self.u = u
        self.u_next = 0
        self.request = OrderRequest(
            oid, stream.center, stream.market, stream.product, stream.scope, stream.trial, enrolled
        )
        self.site: SiteState | None = None
        self.stage = WAITING
        self.holds_place = False
        self.called: float | None = None
        self.apheresis: float | None = None
        self.mfg_start: float | None = None
        self.released: float | None = None
        self.delivered: float | None = None
        self.infused: float | None = None
        self.lost_at: float | None = None
        self.oos = 0
        self.oos_released = False
        self.cross_border = False
        self.importation_days: float | None = None
        self.cost = 0.0
        self.attempts = 0
        self.lane_in: Any = None
        self.lane_out: Any = None
        self.leg: Leg | None = None

    def uniform(self) -> float:
        """The order's next pre-drawn uniform, so every scenario sees the same patient."""
        if self.u_next < len(self.u):
            value = float(self.u[self.u_next])
        else:  # a fifth QC failure: reuse the stream deterministically
            value = float(self.u[self.u_next % len(self.u)])
        self.u_next += 1
        return value


@dataclass
class RunRecord:
    """What one replication leaves behind for the KPIs: orders, and time series.

    ``backlog_daily[d]`` is the time-average backlog over day ``d`` (its integral),
    not a sample at one instant.
    """

    orders: list[Order]
    sites: dict[str, SiteState]
    backlog_daily: np.ndarray
    backlog_area: float
    backlog_entries: int
    events: int
    end: float
    unserved: list[DemandStream] = field(default_factory=list)


def demand_streams(network: Network) -> list[DemandStream]:
    return [
        DemandStream(
            c.id,
            c.market,
            d.product,
            d.scope.value,
            d.trial,
            d.patients_per_year / 365.0,
            d.growth_per_year,
        )
        for c in network.treatment_centers
        for d in c.demand
        if d.patients_per_year > 0
    ]


def arrival_times(stream: DemandStream, end: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson arrivals on [0, end) with rate λ(t) = λ₀ (1+g)^(t/365), exactly.

    The cumulative rate Λ(t) = λ₀·365/ln(1+g)·((1+g)^(t/365) − 1) is inverted at
    uniform order statistics of a Poisson(Λ(end)) count.
    """
    lam0, g = stream.per_day, stream.growth_per_year
    if g == 0:
        total = lam0 * end
        n = rng.poisson(total)
        return np.sort(rng.uniform(0, end, n))
    k = math.log1p(g) / 365.0
    total = lam0 / k * math.expm1(k * end)
    n = rng.poisson(total)
    cum = np.sort(rng.uniform(0, total, n))
    return np.log1p(cum * k / lam0) / k


def draw_patients(
    streams: list[DemandStream], end: float, hazard: float, rng: np.random.Generator
) -> tuple[list[float], list[int], list[float], np.ndarray]:
    """Every patient of a replication, before it runs: enrolment time, stream, loss time,
    and the uniforms of its QC decisions. Drawn first, so every variant sees them."""
    batches = [arrival_times(st, end, rng) for st in streams]
    times = np.concatenate(batches) if batches else np.zeros(0)
    which = np.repeat(np.arange(len(batches)), [len(b) for b in batches])
    order = np.argsort(times, kind="stable")
    times, which = times[order], which[order]
    n = len(times)
    loss = rng.exponential(1.0 / hazard, n) if hazard > 0 else np.full(n, np.inf)
    uniforms = rng.random((n, _UNIFORMS_PER_ORDER))
    return times.tolist(), which.tolist(), (times + loss).tolist(), uniforms


def option_for(
    site: SiteState,
    facts: LegFacts,
    queued: int,
    free_places: int,
    now: float,
    settings: TwinSettings,
) -> SiteOption:
    """What booking ``site`` is expected to mean for an order of the leg's center.

    With no free place, the order waits for the ``queued`` orders ahead of it and
    itself, one place freeing up every cycle / lines days.
    """
    interval = site.mean_cycle / max(site.lines, 1)
    wait = 0.0 if free_places > 0 else (queued + 1) * interval
    return SiteOption(
        site.id,
        wait,
        facts.in_days,
        facts.out_days,
        now + settings.apheresis_days + wait + facts.fixed_days,
        facts.distance_km,
        facts.cost,
        facts.cross_border,
        free_places,
        interval,
    )


class Plan:
    """What every replication of a network under the same settings shares.

    Built once per process (see ``plan_for``): calendars, pipeline places, demand
    streams, eligibility by date and lane facts. Replications only add their own
    queues and random draws.
    """

    def __init__(self, network: Network, settings: TwinSettings) -> None:
        self.net = network
        self.start = settings.start or network.reference_date
        self.horizon = settings.horizon_days
        self.end = settings.horizon_days + settings.drain_days
        self.weeks = math.ceil(self.horizon / 7)
        days = math.ceil(self.end) + 2
        self.places: dict[str, int] = {}
        self.open_day: dict[str, list[bool]] = {}
        for s in network.sites:
            per_line = settings.call_ahead_per_line
            if per_line is None:
                per_line = 3.0 / max(s.manufacturing.mean, 1e-9)
            self.places[s.id] = s.lines + math.ceil(s.lines * per_line - 1e-9)
            self.open_day[s.id] = [
                s.calendar.is_open(self.start + timedelta(days=d)) for d in range(days)
            ]
        self.product_oos = {p.id: p.oos_probability for p in network.products}
        self.stability_hours = {
            p.id: (p.stability_hours if p.starting_material is StartingMaterial.FRESH else None)
            for p in network.products
        }
        self.apheresis_cap = {c.id: c.apheresis_per_day for c in network.treatment_centers}
        self.center_open: dict[str, list[bool] | None] = {}
        """Per center, whether each day is open for apheresis and infusion (None: every day)."""
        for c in network.treatment_centers:
            cal = network.center_days(c.id)
            self.center_open[c.id] = (
                None if cal.always_open else cal.open_days(self.start, days).tolist()
            )
        self.streams = demand_streams(network)
        cuts = {0}
        for s in network.sites:
            for a in s.approvals:
                for d in (a.effective, a.end):
                    if d is not None and 0 < (d - self.start).days <= self.end:
                        cuts.add((d - self.start).days)
        self.cuts = sorted(cuts)
        self._eligible: dict[tuple[Any, ...], list[list[str]]] = {}
        self._legs: dict[tuple[str, str], LegFacts] = {}

    def leg(self, center: str, site: str) -> LegFacts:
        key = (center, site)
        facts = self._legs.get(key)
        if facts is None:
            facts = self._legs[key] = LegFacts(self.net, center, self.net.site(site))
        return facts

    def eligibility(self, st: DemandStream) -> list[list[str]]:
        """Eligible site ids for each segment between approval dates (``cuts``)."""
        fresh = self.stability_hours[st.product] is not None
        key = (st.product, st.market, st.scope, st.trial, st.center if fresh else None)
        found = self._eligible.get(key)
        if found is None:
            found = []
            for day in self.cuts:
                on = self.start + timedelta(days=day)
                sites = self.net.eligible_sites(
                    st.product, st.market, Scope(st.scope), on, st.trial
                )
                limit = self.stability_hours[st.product]
                found.append(
                    [
                        s.id
                        for s in sites
                        if limit is None or self.leg(st.center, s.id).in_days * 24 <= limit
                    ]
                )
            self._eligible[key] = found
        return found


_PLANS: dict[tuple[int, TwinSettings], tuple[Network, Plan]] = {}


def plan_for(network: Network, settings: TwinSettings) -> Plan:
    """The shared plan of a network and settings, built once per process."""
    key = (id(network), settings)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is network:
        return hit[1]
    if len(_PLANS) >= 16:
        _PLANS.clear()
    plan = Plan(network, settings)
    _PLANS[key] = (network, plan)
    return plan


class Pipeline:
    """One replication of the network under one booking policy."""

    def __init__(
        self,
        network: Network,
        policy: BookingPolicy,
        settings: TwinSettings,
        patients: np.random.Generator,
        durations: np.random.Generator,
        *,
        arrivals: bool = True,
    ) -> None:
        self.net = network
        self.policy = policy
        self.cfg = settings
        self.rng = durations
        plan = self.plan = plan_for(network, settings)
        self.start = plan.start
        self.horizon = plan.horizon
        self.end = plan.end
        self.weeks = plan.weeks
        self.kernel = Kernel()
        self.sites: dict[str, SiteState] = {
            s.id: SiteState(
                s, s.oos_probability, plan.places[s.id], plan.open_day[s.id], self.weeks,
                durations,
            )
            for s in network.sites
        }  # fmt: skip
        self._eligible: dict[int, tuple[list[int], list[list[SiteState]]]] = {}
        self._legs: dict[tuple[str, str], Leg] = {}
        self.apheresis_used: dict[tuple[str, int], int] = {}
        self.unplaced: list[Order] = []
        self.backlog = 0
        self.backlog_area = 0.0
        self.backlog_entries = 0
        self._last_change = 0.0
        self.backlog_daily = np.zeros(math.ceil(self.horizon))
        self.orders: list[Order] = []
        self.streams = plan.streams
        if arrivals:
            self._make_arrivals(patients)

    # -- set-up --------------------------------------------------------------

    def _make_arrivals(self, rng: np.random.Generator) -> None:
        streams = self.streams
        at = self.kernel.at
        enrol = self._enrol
        patients = draw_patients(streams, self.end, self.cfg.loss_hazard_per_day, rng)
        for oid, (t, w, lost, u) in enumerate(zip(*patients, strict=True)):
            order_ = Order(oid, streams[w], t, lost, u)
            self.orders.append(order_)
            at(t, enrol, order_)
        for day in range(math.ceil(self.end) + 1):
            self.kernel.at(float(day), self._daily, day)

    # -- helpers ---------------------------------------------------------------

    def _eligible_sites(self, st: DemandStream, day: int) -> list[SiteState]:
        """Eligible sites on a day; constant between approval start and end dates."""
        segments = self._eligible.get(id(st))
        if segments is None:
            found = [[self.sites[i] for i in ids] for ids in self.plan.eligibility(st)]
            segments = self._eligible[id(st)] = (self.plan.cuts, found)
        starts, found = segments
        return found[bisect_right(starts, day) - 1]

    def _leg(self, center: str, site: SiteState) -> Leg:
        key = (center, site.id)
        leg = self._legs.get(key)
        if leg is None:
            leg = self._legs[key] = Leg(self.plan.leg(center, site.id), self.rng)
        return leg

    def _options(self, order: Order, now: float) -> list[SiteOption]:
        options = []
        for site in self._eligible_sites(order.stream, int(now)):
            facts = self._leg(order.center, site).facts
            options.append(
                option_for(site, facts, len(site.place_queue), site.free_places, now, self.cfg)
            )
        return options

    def _backlog_change(self, delta: int) -> None:
        now = self.kernel.now
        if now > self._last_change:
            self.backlog_area += self.backlog * (now - self._last_change)
            if self.backlog:
                self._spread_backlog(self._last_change, now)
        self._last_change = now
        self.backlog += delta
        if delta > 0:
            self.backlog_entries += 1

    def _spread_backlog(self, a: float, b: float) -> None:
        """Add the backlog held on [a, b) to the daily integrals (days before the horizon).

        Integrals rather than a sample at midnight: batches held over closed days start
        at midnight, so a midnight sample counts them and overstates the day's backlog.
        """
        daily = self.backlog_daily
        while a < b:
            day = int(a)
            if day >= len(daily):
                return
            edge = min(b, day + 1.0, self.horizon)
            if edge <= a:
                return
            daily[day] += self.backlog * (edge - a)
            a = edge

    def _is_lost(self, order: Order) -> bool:
        return order.lost_at is not None

    # -- events ----------------------------------------------------------------

    def _daily(self, day: int) -> None:
        if self.unplaced:
            waiting, self.unplaced = self.unplaced, []
            for order in waiting:
                if not self._is_lost(order):
                    self._place(order)
        every = self.policy.replan_every_days
        if every and day % max(1, int(every)) == 0:
            self._replan()

    def _enrol(self, order: Order) -> None:
        self._backlog_change(+1)
        if order.loss_at < self.end:
            self.kernel.at(order.loss_at, self._loss, order)
        self._place(order)

    def _place(self, order: Order) -> None:
        now = self.kernel.now
        options = self._options(order, now)
        if not options:
            self.unplaced.append(order)
            return
        choice = self.policy.choose(order.request, options, now)
        self._book(order, self.sites[choice.site])

    def _book(self, order: Order, site: SiteState) -> None:
        order.site = site
        leg = order.leg = self._leg(order.center, site)
        order.lane_in = leg.facts.lane_in
        order.lane_out = leg.facts.lane_out
        if site.free_places > 0:
            site.free_places -= 1
            order.holds_place = True
            self._call(order)
        else:
            site.place_queue.append(order)

    def _replan(self) -> None:
        waiting = [
            WaitingOrder(o.request, o.site.id, self._options(o, self.kernel.now))
            for s in self.sites.values()
            for o in s.place_queue
            if o.site is not None and not self._is_lost(o)
        ]
        moves = self.policy.replan(self.kernel.now, waiting)
        for s in self.sites.values():
            keep = deque(o for o in s.place_queue if moves.get(o.id, s.id) == s.id)
            moved = [o for o in s.place_queue if moves.get(o.id, s.id) != s.id]
            s.place_queue = keep
            for o in moved:
                self._book(o, self.sites[moves[o.id]])

    def _loss(self, order: Order) -> None:
        if order.infused is not None or order.lost_at is not None:
            return
        order.lost_at = self.kernel.now
        if order.stage in (WAITING, CALLED):
            self._backlog_change(-1)
        if order.stage == WAITING and order in self.unplaced:
            self.unplaced.remove(order)
        order.stage = DONE

    def _free_place(self, site: SiteState) -> None:
        while site.place_queue:
            nxt = site.place_queue.popleft()
            if not self._is_lost(nxt):
                nxt.holds_place = True
                self._call(nxt)
                return
        site.free_places += 1

    def _call(self, order: Order) -> None:
        """The site calls the patient forward: apheresis on the first day with capacity."""
        now = self.kernel.now
        order.stage = CALLED
        if order.called is None:
            order.called = now
        cap = self.plan.apheresis_cap[order.center]
        open_day = self.plan.center_open[order.center]
        day = int(now)
        while self.apheresis_used.get((order.center, day), 0) >= cap or (
            open_day is not None and day < len(open_day) and not open_day[day]
        ):
            day += 1
        self.apheresis_used[(order.center, day)] = (
            self.apheresis_used.get((order.center, day), 0) + 1
        )
        at = now if day == int(now) else float(day)
        order.apheresis = at
        self.kernel.at(at + self.cfg.apheresis_days, self._ship_in, order)

    def _ship_in(self, order: Order) -> None:
        if self._is_lost(order):
            self._release_place(order)
            return
        leg = order.leg
        assert leg is not None
        facts = leg.facts
        days = leg.transit_in() + facts.lane_in.customs_days
        order.cost += facts.lane_in.cost
        order.cross_border = facts.cross_border
        stability = self.plan.stability_hours[order.stream.product]
        if stability is not None and days * 24 > stability:
            order.attempts += 1  # fresh material expired in transit: collect again
            self.kernel.at(self.kernel.now + days, self._recollect, order)
            return
        self.kernel.at(self.kernel.now + days, self._arrive, order)

    def _recollect(self, order: Order) -> None:
        if self._is_lost(order):
            self._release_place(order)
            return
        self._call(order)

    def _release_place(self, order: Order) -> None:
        if order.holds_place and order.site is not None:
            order.holds_place = False
            self._free_place(order.site)

    def _arrive(self, order: Order) -> None:
        if self._is_lost(order):
            self._release_place(order)
            return
        site = order.site
        assert site is not None
        if site.free_lines > 0:
            site.free_lines -= 1
            self._start(order)
        else:
            site.line_queue.append(order)

    def _start(self, order: Order) -> None:
        """A line is held for the order; the batch starts on the first open day."""
        site = order.site
        assert site is not None
        now = self.kernel.now
        day = int(now)
        if day < len(site.open_day) and not site.open_day[day]:
            while day < len(site.open_day) and not site.open_day[day]:
                day += 1
            self.kernel.at(float(day), self._begin, order)
        else:
            self._begin(order)

    def _free_line(self, site: SiteState) -> None:
        """The line goes to the next material waiting at the site, or stands free."""
        while site.line_queue:
            nxt = site.line_queue.popleft()
            if self._is_lost(nxt):
                self._release_place(nxt)
                continue
            self._start(nxt)
            return
        site.free_lines += 1

    def _begin(self, order: Order) -> None:
        site = order.site
        assert site is not None
        now = self.kernel.now
        if self._is_lost(order):  # lost on a closed day before the batch could start
            self._free_line(site)
            self._release_place(order)
            return
        if order.stage == CALLED:
            self._backlog_change(-1)
        order.stage = MANUFACTURING
        if order.mfg_start is None:
            order.mfg_start = now
        site.starts += 1
        duration = site.draw_mfg()
        self.kernel.at(now + duration, self._finish, (order, now))

    def _finish(self, arg: tuple[Order, float]) -> None:
        order, began = arg
        site = order.site
        assert site is not None
        now = self.kernel.now
        self._add_busy(site, began, now)
        self._free_line(site)
        self._release_place(order)
        if self._is_lost(order):
            return
        order.stage = RELEASING
        self.kernel.at(now + site.draw_qc(), self._qc_done, order)

    def _qc_done(self, order: Order) -> None:
        if self._is_lost(order):
            return
        site = order.site
        assert site is not None
        oos = site.oos if site.oos is not None else self.plan.product_oos[order.stream.product]
        if order.uniform() < oos:
            order.oos += 1
            u = order.uniform()
            cfg = self.cfg
            if u < cfg.oos_remanufacture:
                order.stage = MANUFACTURING  # from stored apheresis, back into the line queue
                if site.free_lines > 0:
                    site.free_lines -= 1
                    self._start(order)
                else:
                    site.line_queue.append(order)
                return
            if u < cfg.oos_remanufacture + cfg.oos_new_apheresis:
                order.stage = WAITING  # a new apheresis: wait for a slot again
                self._backlog_change(+1)
                self._book(order, site)
                return
            order.oos_released = True
        order.released = self.kernel.now
        leg = order.leg
        assert leg is not None
        order.cost += leg.facts.route.cost
        self.kernel.at(self.kernel.now + leg.delivery_days(order), self._deliver, order)

    def _deliver(self, order: Order) -> None:
        if self._is_lost(order):
            return
        order.delivered = self.kernel.now
        infusion = order.delivered + self.cfg.infusion_days
        open_day = self.plan.center_open[order.center]
        if open_day is not None:
            day = int(infusion)
            while day < len(open_day) and not open_day[day]:
                day += 1
            if day != int(infusion):
                infusion = float(day)  # the center's next open day
        if order.loss_at < infusion:
            return  # the loss event will record it
        order.infused = infusion
        order.stage = DONE

    def _add_busy(self, site: SiteState, a: float, b: float) -> None:
        weeks = site.busy
        while a < b:
            w = int(a // 7)
            if w >= len(weeks):
                return
            edge = min(b, (w + 1) * 7.0)
            weeks[w] += edge - a
            a = edge

    # -- run -------------------------------------------------------------------

    def run(self) -> RunRecord:
        warm, horizon = self.cfg.warmup_days, self.horizon
        cohort = [o for o in self.orders if warm <= o.enrolled < horizon]

        def settled() -> bool:
            return self.kernel.now >= horizon and all(
                o.infused is not None or o.lost_at is not None for o in cohort
            )

        self.kernel.run(horizon)
        while self.kernel.now < self.end and not settled():
            self.kernel.run(min(self.end, self.kernel.now + 30))
        self._backlog_change(0)
        tail = horizon - math.floor(horizon)
        if tail > 0:  # the last day is cut short by the horizon: average over its part
            self.backlog_daily[-1] /= tail
        return RunRecord(
            orders=self.orders,
            sites=self.sites,
            backlog_daily=self.backlog_daily,
            backlog_area=self.backlog_area,
            backlog_entries=self.backlog_entries,
            events=self.kernel.events,
            end=self.kernel.now,
        )


def unserved_streams(network: Network, settings: TwinSettings) -> list[DemandStream]:
    """Demand that no site may serve on any day of the run."""
    plan = plan_for(network, settings)
    return [st for st in plan.streams if not any(plan.eligibility(st))]
