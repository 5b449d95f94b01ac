"""Batch optimizer: optimal against exhaustive search, within capacity, explained, honest.

Tiny networks are built in code (two sites with one or two slots a day, starts
on nine days) so that every assignment of a handful of orders can be
enumerated; the brute force below knows only the chain arithmetic of the domain page
and the capacity calendar's own booking rules, not the optimizer's model.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from cartnet.network import Network, Regulator
from cartnet.schedule.backlog import Backlog, BacklogError, Order
from cartnet.schedule.capacity import (
    CapacityCalendar,
    CapacityError,
    HolderKind,
    Party,
    Quota,
)
from cartnet.schedule.offers import OfferPlanner, Reason
from cartnet.schedule.optimizer import (
    MIP,
    TRANSPORTATION_LP,
    BacklogPlan,
    PlanStatus,
    Why,
    greedy,
    optimize,
    plan_objective,
)

ORIGIN = date(2021, 1, 4)
SEPT = date(2020, 9, 1)


# -- tiny networks and an exhaustive search --------------------------------------


def tiny(
    *,
    lines: tuple[int, int] = (8, 16),
    apheresis: tuple[int, int] = (9, 9),
    qc_capacity: tuple[int | None, int | None] = (None, None),
    fresh: bool = False,
) -> Network:
    """Sites alpha (1 start a day) and beta (2 a day), centers c1 and c2, fixed lanes.

    Eight-day manufacturing: 8 lines give one start a day. Lead (1 day of apheresis
    + inbound) is 2 or 3 days, return 1 or 2 days, release 10 (alpha) or 11 (beta)
    days after the start. The approvals end after nine days, so starts fall on the
    first nine days of a calendar while releases (QC) fall inside a longer one.
    """
    end = (ORIGIN + timedelta(days=9)).isoformat()
    approvals = [
        {"product": "p", "regulator": "Swissmedic", "scope": "commercial",
         "effective": "2000-01-01", "end": end},
        {"product": "p", "regulator": "Swissmedic", "scope": "clinical", "trial": "T1",
         "effective": "2000-01-01", "end": end},
    ]  # fmt: skip
    sites = [
        {
            "id": sid,
            "name": sid.title(),
            "operator": {"name": "Op", "kind": "owned"},
            "city": "Basel",
            "country": "CH",
            "lat": 47.5 + k,
            "lon": 7.6,
            "lines": n,
            "manufacturing": {"dist": "fixed", "days": 8},
            "qc": {"dist": "fixed", "days": 2 + k},
            "starting_materials": ["cryopreserved", "fresh"] if fresh else ["cryopreserved"],
            "qc_capacity_per_day": qc_capacity[k],
            "approvals": approvals,
        }
        for k, (sid, n) in enumerate(zip(("alpha", "beta"), lines, strict=True))
    ]
    centers = [
        {
            "id": cid,
            "name": cid.upper(),
            "market": "CH",
            "city": "Bern",
            "country": "CH",
            "lat": 46.9,
            "lon": 7.4 + k,
            "products": ["p"],
            "apheresis_per_day": apheresis[k],
        }
        for k, cid in enumerate(("c1", "c2"))
    ]
    lanes = [
        {"origin": c, "destination": s, "transit": {"dist": "fixed", "days": days}, "cost": cost}
        for c, s, days, cost in (
            ("c1", "alpha", 1, 1000), ("c1", "beta", 2, 400),
            ("c2", "alpha", 2, 300), ("c2", "beta", 1, 900),
        )
    ]  # fmt: skip
    product: dict[str, Any] = {"id": "p", "name": "P"}
    if fresh:
        product.update(starting_material="fresh", stability_hours=30)
    return Network.model_validate(
        {
            "name": "tiny",
            "reference_date": ORIGIN.isoformat(),
            "products": [product],
            "markets": [{"id": "CH", "name": "CH", "regulator": "Swissmedic", "countries": ["CH"]}],
            "sites": sites,
            "treatment_centers": centers,
            "lanes": lanes,
        }
    )


def random_backlog(
    seed: int, n: int, *, clinical: bool = False, center: str | None = None, ready: int = 3
) -> Backlog:
    """``n`` orders ready for apheresis on one of the first ``ready`` days."""
    rng = np.random.default_rng(seed)
    orders = []
    for k in range(n):
        first = int(rng.integers(0, ready))
        trial = clinical and rng.random() < 0.3
        orders.append(
            Order(
                id=f"o{k}",
                center=center or str(rng.choice(["c1", "c2"])),
                product="p",
                scope="clinical" if trial else "commercial",
                trial="T1" if trial else None,
                earliest_apheresis=ORIGIN + timedelta(days=first),
                enrolled=ORIGIN - timedelta(days=int(rng.integers(0, 4))),
                weight=float(rng.choice([1.0, 1.0, 2.0, 3.5])),
            )
        )
    return Backlog(as_of=ORIGIN, orders=orders)


def holds_quota(cal: CapacityCalendar, party: Party, site: str, start: date) -> bool:
    return any(q.site == site and party.holds(q) and q.start <= start <= q.end for q in cal.quotas)


def exhaustive_optimum(
    net: Network,
    calendar: Callable[[], CapacityCalendar],
    backlog: Backlog,
    cost_weight: float,
    penalty: float,
) -> float:
    """The least objective over every assignment of every order to a start day at a site
    (or to nothing) that the capacity calendar accepts, booked holders first."""
    cal = calendar()
    product = net.products[0]
    options: list[list[tuple[float, str | None, int, int, int]]] = []
    for o in backlog.orders:
        fresh = (o.material or product.starting_material).value == "fresh"
        first_a, enrolled = cal.day(o.earliest_apheresis), cal.day(o.enrolled_on)
        mine: list[tuple[float, str | None, int, int, int]] = [(o.weight * penalty, None, 0, 0, 0)]
        for i, site in enumerate(net.sites):
            lane_in, lane_out = net.lane(o.center, site.id), net.lane(site.id, o.center)
            if fresh and lane_in.mean_days * 24 > (product.stability_hours or 0):
                continue
            lead = math.ceil(1 + lane_in.mean_days)
            make = math.ceil(site.manufacturing.mean + site.qc.mean)
            back = math.ceil(lane_out.mean_days)
            for d in range(first_a + lead, cal.days):
                approved = site.may_make(
                    "p", Regulator.SWISSMEDIC, o.scope, cal.date_of(d), o.trial
                )
                if approved and cal.slots[i, d] - cal.booked[i, d] > 0:
                    ttt = d + make + back + 2 - enrolled
                    cost = o.weight * ttt + cost_weight * (lane_in.cost + lane_out.cost)
                    mine.append((cost, site.id, d, lead, make))
        options.append(sorted(mine, key=lambda x: x[0]))
    floor = [min(x[0] for x in opts) for opts in options]
    rest = [sum(floor[k:]) for k in range(len(floor) + 1)]
    best = [math.inf]
    used: Counter[tuple[str, int]] = Counter()
    released: Counter[tuple[str, int]] = Counter()
    chosen: list[tuple[float, str | None, int, int, int]] = []

    seen: dict[tuple[Any, ...], bool] = {}

    def fits() -> bool:
        # orders alike in center, trial and readiness are interchangeable here
        orders = backlog.orders
        wanted = [(k, x) for k, x in enumerate(chosen) if x[1] is not None]
        key = tuple(
            sorted(
                (
                    orders[k].center,
                    str(orders[k].trial),
                    orders[k].earliest_apheresis,
                    str(x[1]),
                    x[2],
                )
                for k, x in wanted
            )
        )
        if key not in seen:
            seen[key] = books(wanted)
        return seen[key]

    def books(wanted: list[tuple[int, tuple[float, str | None, int, int, int]]]) -> bool:
        c = calendar()
        orders = backlog.orders
        days = _apheresis_matching(c, net, orders, wanted)
        if days is None:
            return False
        parties = {k: Party(orders[k].center, "CH", orders[k].trial) for k, _ in wanted}
        ordered = sorted(
            wanted,
            key=lambda kx: (
                not holds_quota(c, parties[kx[0]], str(kx[1][1]), c.date_of(kx[1][2])),
                kx[1][2], orders[kx[0]].id,
            ),
        )  # fmt: skip
        try:
            for k, (_, site, d, _, make) in ordered:
                c.book(orders[k].id, parties[k], str(site), c.date_of(days[k]), c.date_of(d),
                       c.date_of(d + make), today=backlog.as_of)  # fmt: skip
        except CapacityError:
            return False
        return True

    def collectable() -> bool:
        wanted = [(k, x) for k, x in enumerate(chosen) if x[1] is not None]
        return _apheresis_matching(cal, net, backlog.orders, wanted) is not None

    def dive(k: int, cost: float) -> None:
        if cost + rest[k] >= best[0] - 1e-9 or not collectable():
            return
        if k == len(options):
            if fits():
                best[0] = cost
            return
        for opt in options[k]:
            key = (str(opt[1]), opt[2])
            qc_key = (str(opt[1]), opt[2] + opt[4])
            if opt[1] is not None:
                i, r = cal.site_index[str(opt[1])], qc_key[1]
                if used[key] >= cal.slots[i, opt[2]] - cal.booked[i, opt[2]]:
                    continue
                if r < cal.days and released[qc_key] >= cal.qc[i, r] - cal.qc_booked[i, r]:
                    continue
                used[key] += 1
                released[qc_key] += 1
            chosen.append(opt)
            dive(k + 1, cost + opt[0])
            chosen.pop()
            if opt[1] is not None:
                used[key] -= 1
                released[qc_key] -= 1

    dive(0, 0.0)
    return best[0]


def _apheresis_matching(
    cal: CapacityCalendar,
    net: Network,
    orders: list[Order],
    wanted: list[tuple[int, tuple[float, str | None, int, int, int]]],
) -> dict[int, int] | None:
    """A collection day per order by augmenting paths (Kuhn), or None."""
    fresh = net.products[0].starting_material.value == "fresh"
    room: dict[tuple[str, int], int] = {}
    allowed: dict[int, list[tuple[str, int]]] = {}
    for k, (_, _, d, lead, _) in wanted:
        o = orders[k]
        j = cal.center_index[o.center]
        first = cal.day(o.earliest_apheresis)
        days = [d - lead] if fresh else list(range(first, d - lead + 1))
        allowed[k] = []
        for t in days:
            free = int(cal.apheresis[j, t] - cal.apheresis_booked[j, t])
            for copy in range(free):
                allowed[k].append((o.center, t * 100 + copy))
                room[(o.center, t * 100 + copy)] = -1
    owner: dict[tuple[str, int], int] = {}

    def augment(k: int, seen: set[tuple[str, int]]) -> bool:
        for slot in allowed[k]:
            if slot in seen:
                continue
            seen.add(slot)
            if slot not in owner or augment(owner[slot], seen):
                owner[slot] = k
                return True
        return False

    for k, _ in wanted:
        if not augment(k, set()):
            return None
    return {k: slot[1] // 100 for slot, k in owner.items()}


def calendar_factory(
    net: Network, quotas: list[Quota] | None = None, days: int = 22
) -> Callable[[], CapacityCalendar]:
    return lambda: CapacityCalendar(net, ORIGIN, days=days, quotas=list(quotas or []))


CASES: dict[str, dict[str, Any]] = {
    "ample apheresis": {"net": {}, "orders": 6, "seed": 1},
    "ample, more orders than slots": {"net": {}, "orders": 7, "seed": 2, "penalty": 20.0},
    "apheresis binds": {"net": {"apheresis": (1, 1)}, "orders": 6, "seed": 3},
    "apheresis binds, tight": {"net": {"apheresis": (1, 1)}, "orders": 6, "seed": 4,
                               "penalty": 25.0},
    "finite QC, all want beta": {"net": {"qc_capacity": (1, 1)}, "orders": 6, "seed": 5,
                                 "center": "c2", "ready": 1},
    "fresh material": {"net": {"fresh": True, "apheresis": (1, 2)}, "orders": 6, "seed": 6},
    "c2's quota at beta, c1 must use beta": {"net": {"lines": (0, 16)}, "orders": 5, "seed": 7,
                                             "quota": True, "center": "c1", "ready": 1},
    "c2's quota at beta, mixed": {"net": {}, "orders": 6, "seed": 10, "quota": True},
    "clinical and commercial": {"net": {"apheresis": (1, 2)}, "orders": 6, "seed": 8,
                                "clinical": True},
    "one slot a day": {"net": {"lines": (8, 8)}, "orders": 6, "seed": 9, "penalty": 30.0},
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_the_optimum_equals_exhaustive_search(case: str) -> None:
    """On instances small enough to enumerate, the optimizer's objective is the optimum."""
    spec = CASES[case]
    net = tiny(**spec["net"])
    quotas = (
        [Quota("beta", HolderKind.CENTER, "c2", ORIGIN, ORIGIN + timedelta(days=8), slots=8,
               release_days_ahead=3)]
        if spec.get("quota") else []
    )  # fmt: skip
    make = calendar_factory(net, quotas)
    backlog = random_backlog(
        spec["seed"], spec["orders"], clinical=spec.get("clinical", False),
        center=spec.get("center"), ready=spec.get("ready", 3),
    )  # fmt: skip
    penalty = spec.get("penalty", 60.0)
    plan = optimize(net, make(), backlog, cost_weight=0.001, unassigned_penalty=penalty,
                    time_limit=20)  # fmt: skip
    assert plan.status is PlanStatus.OPTIMAL
    assert plan.objective == pytest.approx(
        exhaustive_optimum(net, make, backlog, 0.001, penalty), abs=1e-6
    )
    assert plan.objective == pytest.approx(plan_objective(backlog, plan, 0.001, penalty))
    assert plan.bound == pytest.approx(plan.objective)


def test_transportation_lp_when_apheresis_is_ample_and_mip_when_it_binds() -> None:
    """Four cryopreserved orders of one center, all ready on day 0: with room to collect
    them all on their best days it is a transportation problem; with one collection a
    day they cannot all have their best chains, and the apheresis rows make it a MIP."""
    backlog = Backlog(
        as_of=ORIGIN,
        orders=[Order(id=f"o{k}", center="c1", product="p", earliest_apheresis=ORIGIN)
                for k in range(4)],
    )  # fmt: skip
    ample = tiny(apheresis=(9, 9))
    plan = optimize(ample, CapacityCalendar(ample, ORIGIN, days=30), backlog)
    assert (plan.method, plan.status) == (TRANSPORTATION_LP, PlanStatus.OPTIMAL)
    assert [a.apheresis for a in plan.assignments].count(ORIGIN) >= 2

    scarce = tiny(apheresis=(1, 1))
    plan = optimize(scarce, CapacityCalendar(scarce, ORIGIN, days=30), backlog)
    assert (plan.method, plan.status) == (MIP, PlanStatus.OPTIMAL)
    assert len(plan.assignments) == 4
    collected = [a.apheresis for a in plan.assignments]
    assert len(set(collected)) == 4  # one collection a day at c1
    for a in plan.assignments:
        assert ORIGIN <= a.apheresis <= a.start - timedelta(days=2)


# -- on the reference network ----------------------------------------------------------


def kymriah_backlog(net: Network, n: int, seed: int, spread_days: int = 45) -> Backlog:
    rng = np.random.default_rng(seed)
    lines = [(c, d) for c in net.treatment_centers for d in c.demand]
    rate = np.array([d.patients_per_year for _, d in lines])
    orders = []
    for k, pick in enumerate(rng.choice(len(lines), size=n, p=rate / rate.sum()).tolist()):
        center, demand = lines[pick]
        orders.append(
            Order(
                id=f"k{k:04d}", center=center.id, product=demand.product, scope=demand.scope,
                trial=demand.trial,
                earliest_apheresis=SEPT + timedelta(days=int(rng.integers(1, spread_days))),
                enrolled=SEPT - timedelta(days=int(rng.integers(0, 10))),
                weight=2.0 if rng.random() < 0.25 else 1.0,
            )
        )  # fmt: skip
    return Backlog(as_of=SEPT, orders=orders)


@pytest.fixture(scope="module")
def after_ema(kymriah: Network) -> Network:
    return kymriah.with_scenario("after-ema-2020")


def preloaded(net: Network, n: int = 120) -> CapacityCalendar:
    """A calendar holding earlier orders' bookings, and a quota for the BELINDA trial."""
    cal = CapacityCalendar(net, SEPT, days=400)
    cal.add_quota(Quota("les-ulis", HolderKind.TRIAL, "BELINDA", SEPT, SEPT + timedelta(days=60),
                        slots=6, release_days_ahead=10))  # fmt: skip
    greedy(net, cal, kymriah_backlog(net, n, seed=99, spread_days=20), apply=True)
    return cal


def test_plans_never_exceed_capacity(after_ema: Network) -> None:
    """Bookings per site-day, collections per center-day and releases per QC day stay
    within what the calendar had free."""
    cal = preloaded(after_ema)
    backlog = kymriah_backlog(after_ema, 500, seed=5)
    plan = optimize(after_ema, cal, backlog)
    assert plan.status is PlanStatus.OPTIMAL
    assert len(plan.assignments) + len(plan.unassigned) == 500
    starts = Counter((a.site, cal.day(a.start)) for a in plan.assignments)
    for (site, d), n in starts.items():
        i = cal.site_index[site]
        assert n <= cal.slots[i, d] - cal.booked[i, d]
    center_of = {o.id: o.center for o in backlog.orders}
    collections = Counter((center_of[a.order], cal.day(a.apheresis)) for a in plan.assignments)
    for (center, d), n in collections.items():
        j = cal.center_index[center]
        assert n <= cal.apheresis[j, d] - cal.apheresis_booked[j, d]
    order_of = {o.id: o for o in backlog.orders}
    for a in plan.assignments:
        o = order_of[a.order]
        assert o.earliest_apheresis <= a.apheresis < a.start < a.release < a.delivery < a.infusion
        assert a.time_to_treatment_days == (a.infusion - o.enrolled_on).days


@pytest.mark.parametrize("n", [100, 400])
def test_the_optimizer_is_never_worse_than_greedy(after_ema: Network, n: int) -> None:
    cal = preloaded(after_ema)
    backlog = kymriah_backlog(after_ema, n, seed=n)
    base = greedy(after_ema, cal, backlog)
    plan = optimize(after_ema, cal, backlog, baseline=base)
    assert base.objective is not None and plan.objective is not None
    assert plan.assigned >= base.assigned
    if plan.assigned == base.assigned:
        assert plan.objective <= base.objective + 1e-6
    assert plan.bound is not None and plan.bound <= plan.objective + 1e-6
    # every start day is a candidate: the greedy start changes the proof's path, not the optimum
    cold = optimize(after_ema, cal, backlog, warm_start=False)
    assert cold.status is plan.status is PlanStatus.OPTIMAL
    assert cold.assigned == plan.assigned
    assert cold.objective == pytest.approx(plan.objective, rel=1e-6)


def test_greedy_books_each_order_on_its_best_offer_first_come_first_served(
    after_ema: Network,
) -> None:
    """The baseline is exactly: by enrolment then id, the offer planner's first chain, booked."""
    cal = preloaded(after_ema)
    backlog = kymriah_backlog(after_ema, 150, seed=11)
    plan = greedy(after_ema, cal, backlog)
    reference = CapacityCalendar(after_ema, SEPT, days=400, quotas=list(cal.quotas))
    for b in sorted(cal.bookings.values(), key=lambda b: b.id):
        reference.book(b.order, b.party, b.site, b.apheresis, b.start, b.release, today=SEPT)
    planner = OfferPlanner(after_ema, reference)
    expected = {}
    for o in sorted(backlog.orders, key=lambda o: (o.enrolled_on, o.id)):
        best = planner.offers(o.request(), k=1, today=SEPT).chains[0]
        party = Party(o.center, after_ema.center(o.center).market, o.trial)
        reference.book(o.id, party, best.site, best.apheresis, best.start, best.release,
                       today=SEPT)  # fmt: skip
        expected[o.id] = (best.site, best.apheresis, best.start, best.time_to_treatment_days)
    got = {a.order: (a.site, a.apheresis, a.start, a.time_to_treatment_days)
           for a in plan.assignments}  # fmt: skip
    assert got == expected


def test_the_candidate_search_finds_the_offer_planners_chains(after_ema: Network) -> None:
    """The optimizer's vectorised search and ``OfferPlanner.offers`` agree chain for chain,
    with bookings, a quota and full apheresis days in the calendar."""
    from cartnet.schedule.optimizer.chains import ChainSearch, resolve

    cal = preloaded(after_ema)
    cal.apheresis_booked[cal.center_index["charite-berlin"], 3:9] = 1
    backlog = kymriah_backlog(after_ema, 120, seed=21)
    planner = OfferPlanner(after_ema, cal)
    jobs, _ = resolve(after_ema, cal, backlog)
    search = ChainSearch(planner, cal.day(SEPT))
    for job in jobs:
        found = search.search(job, 7)
        mine = {
            (cal.site_ids[int(s)], cal.date_of(int(d)), cal.date_of(int(a)), int(t), float(c))
            for s, d, a, t, c in zip(found.site, found.start, found.latest_apheresis, found.ttt,
                                     found.cost, strict=True)
        }  # fmt: skip
        offers = planner.offers(job.order.request(), k=1000, per_site=7, today=SEPT)
        theirs = {(c.site, c.start, c.apheresis, c.time_to_treatment_days, c.lane_cost)
                  for c in offers.chains}  # fmt: skip
        assert mine == theirs, job.order.id


def test_an_urgent_order_gets_the_earlier_slot() -> None:
    """Two orders of c1 and one slot a day at alpha, c1's faster site: weight decides."""
    net = tiny(lines=(8, 8))
    orders = [
        Order(id="calm", center="c1", product="p", earliest_apheresis=ORIGIN, weight=1.0),
        Order(id="urgent", center="c1", product="p", earliest_apheresis=ORIGIN, weight=3.0),
    ]
    plan = optimize(
        net, CapacityCalendar(net, ORIGIN, days=30), Backlog(as_of=ORIGIN, orders=orders)
    )
    ttt = {a.order: a.time_to_treatment_days for a in plan.assignments}
    assert ttt["urgent"] <= ttt["calm"]
    first_come = greedy(
        net, CapacityCalendar(net, ORIGIN, days=30), Backlog(as_of=ORIGIN, orders=orders)
    )
    assert plan.objective is not None and first_come.objective is not None
    assert plan.objective <= first_come.objective


# -- explanations, statuses, bad input -------------------------------------------------------


def test_unassigned_orders_are_explained(after_ema: Network) -> None:
    """No candidate (with each site's exclusion), outside the calendar, capacity taken."""
    cal = CapacityCalendar(after_ema, SEPT, days=120)
    full = cal.site_index["morris-plains"]
    cal.booked[full, :] = cal.slots[full, :]
    orders = [
        Order(id="aus", center="peter-mac", product="tisagenlecleucel",
              earliest_apheresis=SEPT + timedelta(days=2)),
        Order(id="china", center="ruijin-shanghai", product="tisagenlecleucel",
              earliest_apheresis=SEPT + timedelta(days=2)),
        Order(id="late", center="charite-berlin", product="tisagenlecleucel",
              earliest_apheresis=SEPT + timedelta(days=200)),
        Order(id="trial", center="charite-berlin", product="tisagenlecleucel", scope="clinical",
              trial="NO-SUCH-TRIAL", earliest_apheresis=SEPT + timedelta(days=2)),
    ]  # fmt: skip
    plan = optimize(after_ema, cal, Backlog(as_of=SEPT, orders=orders))
    why = {u.order: u for u in plan.unassigned}
    assert plan.assignments == [] and set(why) == {"aus", "china", "late", "trial"}
    assert why["aus"].reason is Why.NO_CANDIDATE
    reasons = {e.site: e.reason for e in why["aus"].excluded}
    assert reasons["morris-plains"] is Reason.CAPACITY
    assert reasons["melbourne"] is Reason.NO_APPROVAL
    assert "morris-plains: capacity full" in why["aus"].message
    assert {e.reason for e in why["china"].excluded} == {Reason.NO_APPROVAL}
    assert len(why["china"].excluded) == len(after_ema.sites)
    assert why["late"].reason is Why.OUTSIDE_CALENDAR
    assert "outside the capacity calendar" in why["late"].message
    assert why["trial"].reason is Why.NO_CANDIDATE
    assert "no EMA clinical (trial NO-SUCH-TRIAL) approval" in why["trial"].message
    assert (plan.status, plan.assigned, plan.assigned_bound) == (PlanStatus.OPTIMAL, 0, 0)
    assert plan.objective == 0.0
    penalised = optimize(after_ema, cal, Backlog(as_of=SEPT, orders=orders), unassigned_penalty=365)
    assert penalised.objective == pytest.approx(4 * 365.0)


def test_orders_beyond_capacity_are_left_out_with_the_reason() -> None:
    """Five orders, two start days left: the two most urgent are placed, the rest explained."""
    net = tiny(lines=(8, 8))
    make = calendar_factory(net, days=7)
    orders = [Order(id=f"o{k}", center="c2", product="p", earliest_apheresis=ORIGIN,
                    weight=1.0 + k) for k in range(5)]  # fmt: skip
    cal = make()
    cal.booked[:, :5] = cal.slots[:, :5]
    cal.booked[1, 5:] = cal.slots[1, 5:]
    plan = optimize(net, cal, Backlog(as_of=ORIGIN, orders=orders), unassigned_penalty=100.0)
    assert {a.order for a in plan.assignments} == {"o3", "o4"}
    for u in plan.unassigned:
        assert u.reason is Why.CAPACITY
        assert "manufacturing days the plan fills" in u.message
    cheap = optimize(net, make(), Backlog(as_of=ORIGIN, orders=orders[:1]), unassigned_penalty=5.0)
    [u] = cheap.unassigned
    assert u.reason is Why.PENALTY and "more than leaving it unassigned" in u.message


def test_an_overfull_backlog_assigns_as_many_patients_as_capacity_allows() -> None:
    """By default leaving a patient out is never traded for days: the plan assigns the most
    patients any plan can (proven: ``assigned_bound``), even urgent ones waiting longer."""
    net = tiny(lines=(8, 8))
    cal = CapacityCalendar(net, ORIGIN, days=7)
    orders = [Order(id=f"o{k}", center="c1", product="p", earliest_apheresis=ORIGIN,
                    weight=1.0 + k) for k in range(10)]  # fmt: skip
    plan = optimize(net, cal, Backlog(as_of=ORIGIN, orders=orders))
    fit = len(plan.assignments)
    assert 0 < fit < 10
    assert (plan.status, plan.assigned_bound) == (PlanStatus.OPTIMAL, fit)
    for u in plan.unassigned:
        assert u.reason is Why.CAPACITY and "no plan assigns more patients" in u.message
    # a small penalty trades patients for days; the default never does
    traded = optimize(net, cal, Backlog(as_of=ORIGIN, orders=orders), unassigned_penalty=1.0)
    assert traded.assigned < fit


def test_a_time_limit_gives_the_best_plan_found_with_its_gap(after_ema: Network) -> None:
    cal = preloaded(after_ema)
    backlog = kymriah_backlog(after_ema, 800, seed=3)
    plan = optimize(after_ema, cal, backlog, time_limit=0.001)
    if plan.status is PlanStatus.OPTIMAL:  # solved before the clock ran out
        assert plan.gap is not None and plan.gap <= 1e-6
    else:
        assert plan.status is PlanStatus.FEASIBLE
        assert "time limit" in plan.message.lower()
        assert plan.objective is not None and plan.bound is not None and plan.gap is not None
        assert plan.bound <= plan.objective
        assert plan.gap == pytest.approx((plan.objective - plan.bound) / plan.objective)
        assert len(plan.assignments) + len(plan.unassigned) == 800
        base = greedy(after_ema, cal, backlog)
        assert plan.assigned >= base.assigned


def test_the_calendar_is_untouched_unless_the_plan_is_applied(after_ema: Network) -> None:
    cal = preloaded(after_ema)
    before = (cal.booked.copy(), cal.apheresis_booked.copy(), dict(cal.bookings))
    backlog = kymriah_backlog(after_ema, 60, seed=8)
    plan = optimize(after_ema, cal, backlog)
    greedy(after_ema, cal, backlog)
    assert np.array_equal(cal.booked, before[0])
    assert np.array_equal(cal.apheresis_booked, before[1])
    assert cal.bookings == before[2]
    applied = optimize(after_ema, cal, backlog, apply=True)
    assert applied.assignments == plan.assignments
    assert len(applied.bookings) == len(plan.assignments)
    assert int(cal.booked.sum()) == int(before[0].sum()) + len(plan.assignments)
    assert {cal.bookings[b].order for b in applied.bookings} == {a.order for a in plan.assignments}


def test_bad_arguments_are_refused_with_a_clear_message(after_ema: Network) -> None:
    cal = CapacityCalendar(after_ema, SEPT, days=60)
    backlog = kymriah_backlog(after_ema, 3, seed=1)
    with pytest.raises(ValueError, match="time limit must be a positive number of seconds"):
        optimize(after_ema, cal, backlog, time_limit=0)
    with pytest.raises(ValueError, match="time limit"):
        optimize(after_ema, cal, backlog, time_limit=-1)
    with pytest.raises(ValueError, match="mip_gap"):
        optimize(after_ema, cal, backlog, mip_gap=1)
    with pytest.raises(ValueError, match="unassigned_penalty"):
        optimize(after_ema, cal, backlog, unassigned_penalty=0)
    bad = Backlog(as_of=SEPT, orders=[Order(id="x", center="nowhere", product="tisagenlecleucel",
                                            earliest_apheresis=SEPT)])  # fmt: skip
    with pytest.raises(BacklogError, match=r"orders\[0\].center: unknown treatment center"):
        optimize(after_ema, cal, bad)
    other = tiny()
    with pytest.raises(ValueError, match="calendar was built for another network"):
        optimize(other, cal, backlog)


def test_a_plan_reads_as_json(after_ema: Network) -> None:
    cal = CapacityCalendar(after_ema, SEPT, days=120)
    plan: BacklogPlan = optimize(after_ema, cal, kymriah_backlog(after_ema, 20, seed=2))
    data = plan.as_dict()
    assert data["status"] == "optimal" and data["assigned"] == 20
    assert data["objective_kind"] == "lexicographic"
    first_level, second_level = data["levels"]  # type: ignore[misc]
    assert first_level == {"name": "patients assigned", "sense": "maximize", "value": 20,
                           "bound": 20}  # fmt: skip
    assert second_level["value"] == data["objective"] and second_level["bound"] == data["bound"]
    first: Any = data["assignments"]
    assert isinstance(first, list) and set(first[0]) >= {
        "order",
        "site",
        "apheresis",
        "start",
        "release",
        "delivery",
        "infusion",
        "time_to_treatment_days",
        "lane_cost",
    }
