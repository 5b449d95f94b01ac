"""The vein-to-vein pipeline written in SimPy 4: the readable reference model and speed yardstick.

The same model as ``cartnet.twin.pipeline`` (read its module docstring for the
semantics), written the SimPy way: every order is one process, a generator that
walks through the pipeline; a site's pipeline places and its manufacturing lines
are ``simpy.Resource`` objects with FIFO queues; durations are ``env.timeout``;
a patient's loss is a timeout event whose callback records it, and the last wait
(delivery → infusion) is the condition ``infusion | loss``. A re-planning
policy moves an order still waiting for a place by interrupting its process.

What is shared with cartnet, so the two models can only differ in the process
logic: the data pieces (``Order``, ``SiteState``, ``RunRecord``, demand
streams, arrival times), the random streams of a replication
(``replications.generators``, with the patients drawn exactly as
``Pipeline._make_arrivals`` draws them, so both models see the same patients),
the booking policies and the network's eligibility and lane look-ups. Durations
come from the duration stream in a different order, so sample paths differ and
the comparison is statistical (``tests/twin/test_simpy_agreement.py``).

Lost patients leave lazily, as in cartnet: a lost order keeps its place in a
queue until it reaches the head, then passes the place or line straight on. That
keeps the queue lengths, hence the policies' expected-wait estimates, the same.

``run_simpy(network, policy_name, settings, seed, replication)`` returns a
``RunRecord`` that ``cartnet.twin.kpis.measure`` reads like the Pipeline's.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import numpy as np
import simpy

from cartnet.network.entities import Site, StartingMaterial
from cartnet.network.model import Network
from cartnet.twin.pipeline import (
    CALLED,
    DONE,
    MANUFACTURING,
    RELEASING,
    WAITING,
    DemandStream,
    Order,
    RunRecord,
    SiteState,
    draw_patients,
    option_for,
    plan_for,
)
from cartnet.twin.policies import BookingPolicy, SiteOption, WaitingOrder, make_policy
from cartnet.twin.replications import generators
from cartnet.twin.settings import TwinSettings

Process = Generator[simpy.Event, Any, Any]


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that can say how many events it has processed.

    ``processed`` counts the events popped off SimPy's queue: every event that
    was scheduled (timeouts, resource requests and releases, process starts and
    ends, conditions, interrupts, the ``until`` events of ``run``) minus those
    still queued. cartnet's kernel counts the same thing, one per heap pop. It
    reads SimPy 4's event-id counter and queue rather than wrapping ``step()``,
    because a wrapper costs a Python call per event (5-10 % of the run), which a
    speed yardstick should not pay. SimPy needs about twice as many events per
    order as the kernel, so compare seconds per replication rather than events.
    """

    @property
    def processed(self) -> int:
        # _eid hands out one id per scheduled event; next() reads it (and burns one id)
        return next(self._eid) - len(self._queue)


class SimSite(SiteState):
    """A site's data (busy time, calendar, durations) plus its places and lines as resources.

    ``free_places``, ``free_lines``, ``place_queue`` and ``line_queue`` of the
    base class are not used: the two resources hold that state.
    """

    __slots__ = ("line_pool", "place_pool")

    def __init__(
        self,
        env: simpy.Environment,
        site: Site,
        oos: float | None,
        places: int,
        open_day: list[bool],
        weeks: int,
        rng: np.random.Generator,
    ) -> None:
        super().__init__(site, oos, places, open_day, weeks, rng)
        # a site without lines is never eligible; SimPy only refuses a zero capacity
        self.place_pool = simpy.Resource(env, capacity=max(places, 1))
        self.line_pool = simpy.Resource(env, capacity=max(site.lines, 1))


class SimOrder(Order):
    """An order plus its SimPy handles: its process and its loss event."""

    __slots__ = ("loss", "process")

    def __init__(self, oid: int, stream: DemandStream, enrolled: float, loss_at: float, u: Any):
        super().__init__(oid, stream, enrolled, loss_at, u)
        self.loss: simpy.Event | None = None
        self.process: simpy.Process | None = None


class SimPyPipeline:
    """One replication of the network under one booking policy, on a SimPy environment."""

    def __init__(
        self,
        network: Network,
        policy: BookingPolicy,
        settings: TwinSettings,
        patients: np.random.Generator,
        durations: np.random.Generator,
    ) -> None:
        self.net = network
        self.policy = policy
        self.cfg = settings
        self.rng = durations
        self.env = CountingEnvironment()
        plan = self.plan = plan_for(network, settings)  # calendars, places, eligibility, lanes
        self.start = plan.start
        self.horizon = plan.horizon
        self.end = plan.end
        self._product_oos = plan.product_oos
        self.sites: dict[str, SimSite] = {
            s.id: SimSite(
                self.env, s, s.oos_probability, plan.places[s.id], plan.open_day[s.id],
                plan.weeks, durations,
            )
            for s in network.sites
        }  # fmt: skip
        self.apheresis_used: dict[tuple[str, int], int] = {}
        self.backlog = 0
        self.backlog_area = 0.0
        self.backlog_entries = 0
        self._last_change = 0.0
        self.backlog_daily = np.zeros(math.ceil(self.horizon))
        self.streams = plan.streams
        self.orders = self._patients(patients)
        self.new_day = self.env.event()
        """Succeeds at the start of every day; orders with no eligible site retry then."""
        self.env.process(self._arrivals())
        self.env.process(self._days())

    # -- set-up: the same patients as cartnet's Pipeline -------------------------

    def _patients(self, rng: np.random.Generator) -> list[SimOrder]:
        """The same patients as cartnet's Pipeline draws."""
        drawn = draw_patients(self.streams, self.end, self.cfg.loss_hazard_per_day, rng)
        return [
            SimOrder(oid, self.streams[w], t, lost, u)
            for oid, (t, w, lost, u) in enumerate(zip(*drawn, strict=True))
        ]

    # -- look-ups (as the Pipeline makes them) -----------------------------------

    def _eligible_sites(self, st: DemandStream, day: int) -> list[SimSite]:
        ids = self.plan.eligibility(st)[bisect_right(self.plan.cuts, day) - 1]
        return [self.sites[i] for i in ids]

    def _lane(self, origin: str, destination: str) -> Any:
        return self.plan.leg(origin, destination).lane_in

    def _center_open(self, center: str, day: int) -> bool:
        """Apheresis and infusion only on the center's open days (its calendar, read here)."""
        return self.net.center_days(center).is_open(self.start + timedelta(days=day))

    def _options(self, order: SimOrder) -> list[SiteOption]:
        """One option per eligible site; the wait is the queue ahead over the lines."""
        now = self.env.now
        options = []
        for site in self._eligible_sites(order.stream, int(now)):
            places = site.place_pool
            facts = self.plan.leg(order.center, site.id)
            free = places.capacity - places.count
            options.append(option_for(site, facts, len(places.queue), free, now, self.cfg))
        return options

    # -- bookkeeping ----------------------------------------------------------------

    def _backlog_change(self, delta: int) -> None:
        """Backlog: enrolled (or back for a new apheresis), not yet manufacturing, not lost."""
        now = self.env.now
        self.backlog_area += self.backlog * (now - self._last_change)
        self._last_change = now
        self.backlog += delta
        if delta > 0:
            self.backlog_entries += 1

    def _lose(self, order: SimOrder) -> None:
        """Callback of the loss event: the patient is lost unless already infused."""
        if order.infused is not None or order.lost_at is not None:
            return
        order.lost_at = self.env.now
        if order.stage in (WAITING, CALLED):
            self._backlog_change(-1)
        order.stage = DONE

    def _add_busy(self, site: SimSite, a: float, b: float) -> None:
        weeks = site.busy
        while a < b:
            w = int(a // 7)
            if w >= len(weeks):
                return
            edge = min(b, (w + 1) * 7.0)
            weeks[w] += edge - a
            a = edge

    def _apheresis_day(self, center: str) -> float:
        """The first day from now with apheresis capacity left at the center (booked here)."""
        now = self.env.now
        cap = self.net.center(center).apheresis_per_day
        day = int(now)
        while self.apheresis_used.get((center, day), 0) >= cap or not self._center_open(
            center, day
        ):
            day += 1
        self.apheresis_used[(center, day)] = self.apheresis_used.get((center, day), 0) + 1
        return now if day == int(now) else float(day)

    # -- processes ----------------------------------------------------------------------

    def _arrivals(self) -> Process:
        """Enrol the patients in order of arrival: one process per order."""
        env = self.env
        for order in self.orders:
            yield env.timeout(order.enrolled - env.now)
            order.process = env.process(self._patient(order))

    def _days(self) -> Process:
        """Each day: sample the backlog, wake orders waiting for a site, re-plan if due."""
        env = self.env
        every = self.policy.replan_every_days
        for day in range(math.ceil(self.end) + 1):
            if day < len(self.backlog_daily):
                self.backlog_daily[day] = self.backlog
            self.new_day.succeed()
            self.new_day = env.event()
            if every and day % max(1, int(every)) == 0:
                self._replan()
            yield env.timeout(day + 1 - env.now)

    def _replan(self) -> None:
        """The policy may move orders waiting for a place: their processes are interrupted."""
        waiting = [
            (request.order, site)
            for site in self.sites.values()
            for request in site.place_pool.queue
            if request.order.lost_at is None
        ]
        moves = self.policy.replan(
            self.env.now,
            [WaitingOrder(o.request, s.id, self._options(o)) for o, s in waiting],
        )
        for order, site in waiting:
            target = moves.get(order.id, site.id)
            if target != site.id and order.process is not None:
                order.process.interrupt(target)

    def _patient(self, order: SimOrder) -> Process:
        """One order from enrolment to infusion, or until the patient is lost."""
        env = self.env
        self._backlog_change(+1)
        if order.loss_at < self.end:
            order.loss = env.timeout(order.loss_at - env.now)
            order.loss.callbacks.append(lambda _event: self._lose(order))

        while not (options := self._options(order)):
            yield self.new_day  # no site may take the patient today: try again tomorrow
            if order.lost_at is not None:
                return
        site = self.sites[self.policy.choose(order.request, options, env.now).site]

        while True:  # one pass per apheresis: a place, collection, batch(es), QC
            order.site = site
            order.lane_in = self._lane(order.center, site.id)
            order.lane_out = self.net.delivery_route(site.id, order.center)
            with site.place_pool.request() as place:
                place.order = order  # so a re-planning policy can see who waits
                try:
                    yield place
                except simpy.Interrupt as moved:
                    site = self.sites[moved.cause]
                    continue
                if order.lost_at is not None:
                    return
                order.holds_place = True
                yield from self._collect(order)
                if order.lost_at is not None:
                    return
                with site.line_pool.request() as line:
                    yield line  # the material waits at the site for a free line
                    if order.lost_at is not None:
                        return
                    yield from self._manufacture(order, site)
            # line, then place, are free again when manufacturing ends
            order.holds_place = False
            if order.lost_at is not None:
                return
            outcome = yield from self._quality_control(order, site)
            if outcome == "lost":
                return
            if outcome == "released":
                break
            order.stage = WAITING  # a new apheresis: wait for a place again
            self._backlog_change(+1)

        yield from self._deliver(order)

    def _collect(self, order: SimOrder) -> Process:
        """Called forward: apheresis, then the inbound lane (again if fresh material expires)."""
        env = self.env
        assert order.site is not None
        while True:
            order.stage = CALLED
            if order.called is None:
                order.called = env.now
            order.apheresis = self._apheresis_day(order.center)
            yield env.timeout(order.apheresis + self.cfg.apheresis_days - env.now)
            if order.lost_at is not None:
                return
            lane = order.lane_in
            days = lane.transit.sample(self.rng) + lane.customs_days
            order.cost += lane.cost
            if self.net.place(order.center)[0] != order.site.site.country:
                order.cross_border = True
            product = self.net.product(order.stream.product)
            expired = product.starting_material is StartingMaterial.FRESH and days * 24 > (
                product.stability_hours or 0
            )
            if expired:
                order.attempts += 1
            yield env.timeout(days)
            if order.lost_at is not None or not expired:
                return

    def _manufacture(self, order: SimOrder, site: SimSite) -> Process:
        """With a line held: wait for an open day, then run the batch."""
        env = self.env
        day = int(env.now)
        if day < len(site.open_day) and not site.open_day[day]:
            while day < len(site.open_day) and not site.open_day[day]:
                day += 1
            yield env.timeout(day - env.now)
            if order.lost_at is not None:
                return
        if order.stage == CALLED:
            self._backlog_change(-1)
        order.stage = MANUFACTURING
        if order.mfg_start is None:
            order.mfg_start = env.now
        site.starts += 1
        began = env.now
        yield env.timeout(site.mfg.sample(self.rng))
        self._add_busy(site, began, env.now)

    def _quality_control(self, order: SimOrder, site: SimSite) -> Generator[Any, Any, str]:
        """QC until release: "released", "new_apheresis" or "lost".

        An out-of-specification batch is remade from stored apheresis (back into
        the line queue, without a place), needs a new apheresis, or is released
        out of specification, as the order's pre-drawn uniforms decide.
        """
        env, cfg = self.env, self.cfg
        while True:
            order.stage = RELEASING
            yield env.timeout(site.qc.sample(self.rng))
            if order.lost_at is not None:
                return "lost"
            oos = site.oos if site.oos is not None else self._product_oos[order.stream.product]
            if order.uniform() >= oos:
                return "released"
            order.oos += 1
            u = order.uniform()
            if u < cfg.oos_remanufacture:
                order.stage = MANUFACTURING
                with site.line_pool.request() as line:
                    yield line
                    if order.lost_at is not None:
                        return "lost"
                    yield from self._manufacture(order, site)
                if order.lost_at is not None:
                    return "lost"
                continue
            if u < cfg.oos_remanufacture + cfg.oos_new_apheresis:
                return "new_apheresis"
            order.oos_released = True
            return "released"

    def _deliver(self, order: SimOrder) -> Process:
        """The way back (one lane, or two around the importation step), then infusion on the
        center's first open day after delivery + infusion days, unless the patient is lost."""
        env = self.env
        order.released = env.now
        route = order.lane_out
        order.cost += route.cost
        for lane in route.lanes:
            yield env.timeout(lane.transit.sample(self.rng) + lane.customs_days)
        if route.importation is not None:
            order.importation_days = route.importation.duration.sample(self.rng)
            yield env.timeout(order.importation_days)
        if order.lost_at is not None:
            return
        order.delivered = env.now
        ready = env.now + self.cfg.infusion_days
        day = int(ready)
        while not self._center_open(order.center, day):
            day += 1
        infusion = env.timeout((ready if day == int(ready) else float(day)) - env.now)
        yield infusion if order.loss is None else infusion | order.loss
        if order.lost_at is None:  # the loss callback has run if the loss came first
            order.infused = env.now
            order.stage = DONE

    # -- run ------------------------------------------------------------------------------

    def run(self) -> RunRecord:
        """Run to the horizon, then on (30 days at a time) until the cohort is settled."""
        env = self.env
        warm, horizon = self.cfg.warmup_days, self.horizon
        cohort = [o for o in self.orders if warm <= o.enrolled < horizon]

        def settled() -> bool:
            return all(o.infused is not None or o.lost_at is not None for o in cohort)

        env.run(until=horizon)
        while env.now < self.end and not settled():
            env.run(until=min(self.end, env.now + 30))
        self._backlog_change(0)
        return RunRecord(
            orders=list(self.orders),
            sites=dict(self.sites),
            backlog_daily=self.backlog_daily,
            backlog_area=self.backlog_area,
            backlog_entries=self.backlog_entries,
            events=env.processed,
            end=env.now,
        )


def run_simpy(
    network: Network, policy_name: str, settings: TwinSettings, seed: int, replication: int
) -> RunRecord:
    """One replication in SimPy, with the patient and duration streams cartnet would use."""
    patients, durations = generators(seed, replication)
    model = SimPyPipeline(network, make_policy(policy_name), settings, patients, durations)
    return model.run()
