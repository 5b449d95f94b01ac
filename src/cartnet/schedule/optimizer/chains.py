"""Candidate slot chains: the offer planner's rules, vectorised over sites and start days.

A chain is one order's apheresis, manufacturing start at a site, release,
delivery and infusion. The optimizer's candidates are *every* start day the
offer planner may offer (``OfferPlanner.horizon_days`` after the first possible
start, inside the calendar) at every eligible site with a free slot open to the
order's party, apheresis capacity that meets the slot and QC capacity on the
release day. The search is vectorised with numpy instead of calling
``OfferPlanner.offers`` per order (which loops over sites and days in Python); it
reuses the planner's approval masks and lane legs, and
``tests/schedule/test_optimizer.py`` checks that it finds exactly the chains
``offers`` finds.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from cartnet.network.entities import StartingMaterial
from cartnet.network.model import Network
from cartnet.schedule.backlog import Backlog, Order
from cartnet.schedule.capacity import CapacityCalendar, Party
from cartnet.schedule.offers import OfferPlanner
from cartnet.schedule.optimizer.result import BacklogPlan

_LEGS: dict[int, tuple[Network, dict[tuple[str, str], tuple[int, int, float, float, float]]]] = {}


def planner_for(network: Network, calendar: CapacityCalendar) -> OfferPlanner:
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
class Job:
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


def resolve(
    network: Network, calendar: CapacityCalendar, backlog: Backlog
) -> tuple[list[Job], list[Order]]:
    """Jobs for the orders inside the calendar, and the orders outside it."""
    jobs: list[Job] = []
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
            Job(
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
class Chains:
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

    def select(self, keep: np.ndarray) -> Chains:
        return Chains(*(getattr(self, f.name)[keep] for f in dataclasses.fields(self)))

    @staticmethod
    def join(parts: list[Chains]) -> Chains:
        names = [f.name for f in dataclasses.fields(Chains)]
        if not parts:
            return Chains(*([np.zeros(0, dtype=np.int64)] * (len(names) - 1) + [np.zeros(0)]))
        return Chains(*(np.concatenate([getattr(p, n) for p in parts]) for n in names))

    def bounds(self, jobs: int) -> np.ndarray:
        """``bounds[j]:bounds[j + 1]`` are job ``j``'s chains."""
        return np.searchsorted(self.job, np.arange(jobs + 1))


@dataclass(frozen=True)
class Sites:
    """A job's eligible sites with their approval masks and lane legs, as arrays."""

    index: np.ndarray
    approved: np.ndarray
    """sites × calendar days: approval in force."""
    lead: np.ndarray
    back: np.ndarray
    cost: np.ndarray
    make: np.ndarray


class ChainSearch:
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
        self._sites: dict[tuple[str, str, str, str, str | None, str], Sites] = {}

    def sites(self, job: Job) -> Sites:
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
            found = Sites(
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
        self, job: Job, limit: int, site: int | None = None, day: int | None = None
    ) -> Chains:
        """The first ``limit`` feasible start days at each eligible site (or only at ``site``,
        only on ``day``), as chains in site order then day order."""
        s = self.sites(job)
        rows = np.arange(s.index.size)
        if site is not None:
            rows = rows[s.index == site]
        if not rows.size:
            return Chains.join([])
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
            return Chains.join([])
        r = np.concatenate(got_rows)
        d = np.concatenate(got_days)
        order = np.lexsort((d, r))
        r, d = rows[r[order]], d[order]
        lead, make = s.lead[r], s.make[r]
        latest = d - lead if job.fresh else self.latest_free_ap[job.center, d - lead]
        release = d + make
        delivery = release + s.back[r]
        table = self.planner.infusion_days_from(self.cal.center_ids[job.center])
        infusion = table[np.minimum(delivery + self.planner.infusion_days, len(table) - 1)]
        n = d.size
        return Chains(
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
        self, job: Job, s: Sites, rows: np.ndarray, days: np.ndarray, last: np.ndarray
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
        self, job: Job, site: int, days: np.ndarray, ok: np.ndarray, need: int
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

    def pool(self, jobs: list[Job]) -> Chains:
        """Every candidate chain of every job: each start day of the planner's horizon."""
        every = self.planner.horizon_days + 1
        return Chains.join([self.search(job, every) for job in jobs])

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


def with_baseline(
    search: ChainSearch, jobs: list[Job], pool: Chains, baseline: BacklogPlan
) -> tuple[Chains, dict[int, int]]:
    """The pool with the baseline plan's chains in it, and job → its chain in the pool."""
    cal = search.cal
    job_of = {j.order.id: j for j in jobs}
    # the pool is sorted by job, site, start: its keys ascend
    width = len(cal.site_ids) * cal.days
    keys = pool.job * width + pool.site * cal.days + pool.start
    extra: list[Chains] = []
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
    merged = Chains.join([pool, *extra])
    order = np.argsort(merged.job, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return merged.select(order), {j: int(rank[k]) for j, k in start_at.items()}
