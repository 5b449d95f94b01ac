"""Every ``optimal`` is a proof: the optimizer against references written without its code.

Two references know only the chain arithmetic of docs/background/domain.md (lead = ⌈1 + inbound⌉,
release = start + ⌈manufacturing + QC⌉, delivery = release + ⌈outbound⌉, infusion
two days later) and the capacity calendar:

* ``brute_force`` enumerates every assignment of a few orders to (site, start day)
  or nothing, and keeps the plans the calendar accepts (booked holders first, a
  collection day per order found by augmenting paths);
* ``time_indexed_milp`` is the plain formulation of i-SHIPMENT's allocation: a
  binary per order × site × start day and per order × collection day, solved by
  HiGHS, for instances too big to enumerate.

Both optimise the documented objective lexicographically (most patients assigned,
then least Σ weight × time to treatment + cost_weight × lane cost), and the tests
compare both levels, not just feasibility.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import highspy
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cartnet.network import Network
from cartnet.schedule.backlog import Backlog, Order
from cartnet.schedule.capacity import CapacityCalendar, CapacityError, HolderKind, Party, Quota
from cartnet.schedule.optimizer import PlanStatus, greedy, optimize

ORIGIN = date(2021, 1, 4)
COST_WEIGHT = 0.001
HORIZON = 180  # the offer planner's search horizon after the first possible start


@dataclass(frozen=True)
class Spec:
    """A network small enough to reason about: sites alpha (and beta), centers c1 and c2."""

    lines: tuple[int, ...] = (8, 16)
    """Eight-day manufacturing: 8 lines are one start a day, 4 one every other day."""
    apheresis: tuple[int, int] = (9, 9)
    qc: tuple[int | None, ...] = (None, None)
    fresh: bool = False
    start_days: int = 5
    """Approvals end after this many days: the only start days."""


def network(spec: Spec) -> Network:
    end = (ORIGIN + timedelta(days=spec.start_days)).isoformat()
    approvals = [
        {"product": "p", "regulator": "Swissmedic", "scope": "commercial",
         "effective": "2000-01-01", "end": end},
        {"product": "p", "regulator": "Swissmedic", "scope": "clinical", "trial": "T1",
         "effective": "2000-01-01", "end": end},
    ]  # fmt: skip
    names = ("alpha", "beta")[: len(spec.lines)]
    sites = [
        {
            "id": sid, "name": sid.title(), "operator": {"name": "Op", "kind": "owned"},
            "city": "Basel", "country": "CH", "lat": 47.5 + k, "lon": 7.6,
            "lines": spec.lines[k], "manufacturing": {"dist": "fixed", "days": 8},
            "qc": {"dist": "fixed", "days": 2 + k},
            "starting_materials": ["cryopreserved", "fresh"],
            "qc_capacity_per_day": spec.qc[k], "approvals": approvals,
        }
        for k, sid in enumerate(names)
    ]  # fmt: skip
    centers = [
        {
            "id": cid, "name": cid.upper(), "market": "CH", "city": "Bern", "country": "CH",
            "lat": 46.9, "lon": 7.4 + k, "products": ["p"], "apheresis_per_day": spec.apheresis[k],
        }
        for k, cid in enumerate(("c1", "c2"))
    ]  # fmt: skip
    legs = {("c1", "alpha"): (1, 1000), ("c1", "beta"): (2, 400),
            ("c2", "alpha"): (2, 300), ("c2", "beta"): (1, 900)}  # fmt: skip
    lanes = [
        {"origin": c, "destination": s, "transit": {"dist": "fixed", "days": days}, "cost": cost}
        for (c, s), (days, cost) in legs.items()
        if s in names
    ]
    product: dict[str, Any] = {"id": "p", "name": "P"}
    if spec.fresh:
        product.update(starting_material="fresh", stability_hours=30)
    return Network.model_validate(
        {
            "name": "small", "reference_date": ORIGIN.isoformat(), "products": [product],
            "markets": [{"id": "CH", "name": "CH", "regulator": "Swissmedic",
                         "countries": ["CH"]}],
            "sites": sites, "treatment_centers": centers, "lanes": lanes,
        }
    )  # fmt: skip


def backlog(rng: np.random.Generator, n: int, centers: tuple[str, ...], ready: int) -> Backlog:
    orders = []
    for k in range(n):
        trial = rng.random() < 0.25
        orders.append(
            Order(
                id=f"o{k}", center=str(rng.choice(centers)), product="p",
                scope="clinical" if trial else "commercial", trial="T1" if trial else None,
                earliest_apheresis=ORIGIN + timedelta(days=int(rng.integers(0, ready))),
                enrolled=ORIGIN - timedelta(days=int(rng.integers(0, 4))),
                weight=float(rng.choice([1.0, 1.0, 2.0, 3.5])),
            )
        )  # fmt: skip
    return Backlog(as_of=ORIGIN, orders=orders)


@dataclass(frozen=True)
class Option:
    """One order on one site and start day: the chain's days and its cost in the objective."""

    site: str
    start: int
    lead: int
    release: int
    cost: float


def options(net: Network, cal: CapacityCalendar, order: Order) -> list[Option]:
    """Every chain the order could take on the calendar as it stands (domain page, §1)."""
    product = net.products[0]
    fresh = (order.material or product.starting_material).value == "fresh"
    party = Party(order.center, "CH", order.trial)
    first_a, enrolled = cal.day(order.earliest_apheresis), cal.day(order.enrolled_on)
    j = cal.center_index[order.center]
    found = []
    for site in net.sites:
        if site.lines == 0:
            continue
        lane_in, lane_out = net.lane(order.center, site.id), net.lane(site.id, order.center)
        if fresh and lane_in.mean_days * 24 > (product.stability_hours or 0):
            continue
        lead = math.ceil(1 + lane_in.mean_days)
        make = math.ceil(site.manufacturing.mean + site.qc.mean)
        back = math.ceil(lane_out.mean_days)
        first = first_a + lead
        for d in range(first, min(cal.days - 1, first + HORIZON) + 1):
            collect = [d - lead] if fresh else range(first_a, d - lead + 1)
            if not (
                site.may_make("p", "Swissmedic", order.scope, cal.date_of(d), order.trial)
                and cal.slot_open_to(site.id, d, party, cal.day(ORIGIN))
                and any(cal.apheresis_booked[j, t] < cal.apheresis[j, t] for t in collect)
                and cal.qc_free(site.id, d + make)
            ):
                continue
            ttt = d + make + back + 2 - enrolled
            cost = order.weight * ttt + COST_WEIGHT * (lane_in.cost + lane_out.cost)
            found.append(Option(site.id, d, lead, d + make, cost))
    return sorted(found, key=lambda o: o.cost)


def collection_days(
    cal: CapacityCalendar, orders: list[Order], chosen: dict[int, Option], fresh: bool
) -> dict[int, int] | None:
    """A collection day per chosen order within the centers' capacity (Kuhn), or None."""
    allowed: dict[int, list[tuple[str, int, int]]] = {}
    for k, opt in chosen.items():
        o = orders[k]
        j = cal.center_index[o.center]
        days = [opt.start - opt.lead] if fresh else range(
            cal.day(o.earliest_apheresis), opt.start - opt.lead + 1
        )  # fmt: skip
        allowed[k] = [
            (o.center, t, c)
            for t in days
            for c in range(int(cal.apheresis[j, t] - cal.apheresis_booked[j, t]))
        ]
    owner: dict[tuple[str, int, int], int] = {}

    def augment(k: int, seen: set[tuple[str, int, int]]) -> bool:
        for slot in allowed[k]:
            if slot not in seen:
                seen.add(slot)
                if slot not in owner or augment(owner[slot], seen):
                    owner[slot] = k
                    return True
        return False

    if not all(augment(k, set()) for k in chosen):
        return None
    return {k: slot[1] for slot, k in owner.items()}


def books(
    make: Any, net: Network, orders: list[Order], chosen: dict[int, Option]
) -> bool:  # fmt: skip
    """Does the calendar accept the plan, booked quota holders first?"""
    cal: CapacityCalendar = make()
    fresh = net.products[0].starting_material.value == "fresh"
    days = collection_days(cal, orders, chosen, fresh)
    if days is None:
        return False
    parties = {k: Party(orders[k].center, "CH", orders[k].trial) for k in chosen}

    def holds(k: int) -> bool:
        start = cal.date_of(chosen[k].start)
        return any(
            q.site == chosen[k].site and parties[k].holds(q) and q.start <= start <= q.end
            for q in cal.quotas
        )

    try:
        for k in sorted(chosen, key=lambda k: (not holds(k), chosen[k].start, orders[k].id)):
            opt = chosen[k]
            cal.book(orders[k].id, parties[k], opt.site, cal.date_of(days[k]),
                     cal.date_of(opt.start), cal.date_of(opt.release), today=ORIGIN)  # fmt: skip
    except CapacityError:
        return False
    return True


def brute_force(net: Network, make: Any, backlog: Backlog) -> tuple[int, float]:
    """(most orders assigned, least cost at that count) over every assignment the calendar
    accepts; depth first, pruned by the best the remaining orders could still add."""
    cal: CapacityCalendar = make()
    orders = backlog.orders
    opts = [options(net, cal, o) for o in orders]
    cheapest = [min((x.cost for x in os), default=0.0) for os in opts]
    can = [1 if os else 0 for os in opts]
    best: list[tuple[int, float]] = [(1, 0.0)]  # worse than any plan, even the empty one
    slots: Counter[tuple[str, int]] = Counter()
    chosen: dict[int, Option] = {}

    def dive(k: int, count: int, cost: float) -> None:
        hope = (
            -(count + sum(can[k:])),
            cost + sum(c for c, a in zip(cheapest[k:], can[k:], strict=True) if a),
        )
        if hope >= best[0]:
            return
        if k == len(orders):
            if books(make, net, orders, chosen):
                best[0] = (-count, cost)
            return
        for opt in opts[k]:
            i = cal.site_index[opt.site]
            if slots[(opt.site, opt.start)] >= cal.slots[i, opt.start] - cal.booked[i, opt.start]:
                continue
            slots[(opt.site, opt.start)] += 1
            chosen[k] = opt
            fresh = net.products[0].starting_material.value == "fresh"
            if collection_days(cal, orders, chosen, fresh) is not None:
                dive(k + 1, count + 1, cost + opt.cost)
            del chosen[k]
            slots[(opt.site, opt.start)] -= 1
        dive(k + 1, count, cost)

    dive(0, 0, 0.0)
    return -best[0][0], best[0][1]


def time_indexed_milp(net: Network, cal: CapacityCalendar, backlog: Backlog) -> tuple[int, float]:
    """(most orders assigned, least cost at that count) by a plain time-indexed MILP.

    x[o, s, d] = 1 when order o starts at site s on day d; a[o, t] = 1 when it is
    collected on day t (fresh: the day the lane needs; cryopreserved: any day from its
    earliest apheresis to the start minus the lead: a[o, t] ≤ Σ_{d − lead ≥ t} x[o, s, d]).
    No quotas.
    """
    orders = backlog.orders
    fresh = net.products[0].starting_material.value == "fresh"
    cols: list[tuple[str, Any]] = []  # ("x", (k, opt)) or ("a", (k, t))
    for k, o in enumerate(orders):
        opts = options(net, cal, o)
        cols += [("x", (k, opt)) for opt in opts]
        last = max((opt.start - opt.lead for opt in opts), default=-1)
        cols += [("a", (k, t)) for t in range(cal.day(o.earliest_apheresis), last + 1)]
    n = len(cols)
    rows: list[tuple[dict[int, float], float, float]] = []

    def row(coef: dict[int, float], lo: float, hi: float) -> None:
        if coef:
            rows.append((coef, lo, hi))

    inf = highspy.kHighsInf
    by: dict[Any, dict[int, float]] = {}
    for c, (kind, data) in enumerate(cols):
        k = data[0]
        if kind == "x":
            opt = data[1]
            by.setdefault(("order", k), {})[c] = 1.0
            by.setdefault(("site-day", opt.site, opt.start), {})[c] = 1.0
            by.setdefault(("qc", opt.site, opt.release), {})[c] = 1.0
            by.setdefault(("collected", k), {})[c] = -1.0
            for t in range(cal.day(orders[k].earliest_apheresis), opt.start - opt.lead + 1):
                by.setdefault(("collect-by", k, t), {})[c] = -1.0
            if fresh:
                by.setdefault(("fresh", k, opt.start - opt.lead), {})[c] = -1.0
        else:
            t = data[1]
            by.setdefault(("collected", k), {})[c] = 1.0
            by.setdefault(("collect-by", k, t), {})[c] = 1.0
            by.setdefault(("center-day", orders[k].center, t), {})[c] = 1.0
            if fresh:
                by.setdefault(("fresh", k, t), {})[c] = 1.0
    for key, coef in by.items():
        if key[0] == "order":
            row(coef, -inf, 1)
        elif key[0] == "site-day":
            i = cal.site_index[key[1]]
            row(coef, -inf, float(cal.slots[i, key[2]] - cal.booked[i, key[2]]))
        elif key[0] == "qc" and key[2] < cal.days:
            i = cal.site_index[key[1]]
            row(coef, -inf, float(min(cal.qc[i, key[2]] - cal.qc_booked[i, key[2]], 10**6)))
        elif key[0] in ("collected", "fresh"):
            row(coef, 0, 0)
        elif key[0] == "collect-by":
            row(coef, -inf, 0)
        elif key[0] == "center-day":
            j = cal.center_index[key[1]]
            row(coef, -inf, float(cal.apheresis[j, key[2]] - cal.apheresis_booked[j, key[2]]))
    count = np.array([1.0 if kind == "x" else 0.0 for kind, _ in cols])
    cost = np.array([data[1].cost if kind == "x" else 0.0 for kind, data in cols])

    def solve(objective: np.ndarray, extra: list[tuple[dict[int, float], float, float]]) -> float:
        h = highspy.Highs()  # type: ignore[no-untyped-call]
        h.setOptionValue("output_flag", False)
        h.setOptionValue("mip_rel_gap", 0.0)
        h.setOptionValue("mip_abs_gap", 1e-7)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, len(rows) + len(extra)
        lp.col_cost_ = objective.tolist()
        lp.col_lower_, lp.col_upper_ = [0.0] * n, [1.0] * n
        lp.row_lower_ = [r[1] for r in rows + extra]
        lp.row_upper_ = [r[2] for r in rows + extra]
        starts, index, value = [0], [], []
        per_col: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        for r, (coef, _, _) in enumerate(rows + extra):
            for c, v in coef.items():
                per_col[c].append((r, v))
        for entries in per_col:
            index += [r for r, _ in entries]
            value += [v for _, v in entries]
            starts.append(len(index))
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = starts, index, value
        lp.integrality_ = [highspy.HighsVarType.kInteger] * n
        h.passModel(lp)
        h.run()
        assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        return float(h.getInfo().objective_function_value)

    most = round(-solve(-count, []))
    least = solve(cost, [({c: 1.0 for c in range(n) if count[c]}, most, inf)]) if most else 0.0
    return most, least


def check(plan: Any, most: int, least: float) -> None:
    """Both levels equal the reference's, proven, with bounds that meet the values."""
    assert plan.status is PlanStatus.OPTIMAL, plan.message
    assert (plan.assigned, plan.assigned_bound) == (most, most), plan.message
    assert plan.objective == pytest.approx(least, abs=1e-6)
    assert plan.bound == pytest.approx(least, rel=1e-6, abs=1e-6)


# -- tiny backlogs against enumeration ------------------------------------------------------


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(3, 7),
    lines=st.sampled_from([(8,), (4,), (8, 8), (8, 16), (4, 8), (0, 8)]),
    apheresis=st.sampled_from([(9, 9), (1, 1), (1, 2), (2, 1)]),
    qc=st.sampled_from([None, 1, 2]),
    fresh=st.booleans(),
    start_days=st.integers(2, 5),
    ready=st.integers(1, 3),
    quota=st.booleans(),
)
def test_the_optimum_is_the_exhaustive_optimum(
    seed: int, n: int, lines: tuple[int, ...], apheresis: tuple[int, int], qc: int | None,
    fresh: bool, start_days: int, ready: int, quota: bool,
) -> None:  # fmt: skip
    """Random tiny backlogs, including one collection a day, one QC release a day and a
    quota: the optimizer's two levels are the enumeration's."""
    spec = Spec(lines=lines, apheresis=apheresis, qc=(qc,) * len(lines), fresh=fresh,
                start_days=start_days)  # fmt: skip
    net = network(spec)
    quotas = (
        [Quota(net.sites[-1].id, HolderKind.CENTER, "c2", ORIGIN,
               ORIGIN + timedelta(days=start_days), slots=2, release_days_ahead=1)]
        if quota else []
    )  # fmt: skip

    def make() -> CapacityCalendar:
        return CapacityCalendar(net, ORIGIN, days=start_days + 14, quotas=list(quotas))

    orders = backlog(np.random.default_rng(seed), n, ("c1", "c2"), ready)
    most, least = brute_force(net, make, orders)
    check(optimize(net, make(), orders, cost_weight=COST_WEIGHT, time_limit=60), most, least)


# -- medium backlogs against an independent formulation -------------------------------------


@pytest.mark.parametrize(
    ("spec", "n", "centers", "ready", "seed"),
    [
        # many orders compete for one collection a day at one center, starts over 40 days
        (Spec(lines=(8,), apheresis=(1, 1), start_days=40), 40, ("c1",), 3, 1),
        (Spec(lines=(8, 16), apheresis=(1, 2), start_days=30), 45, ("c1", "c2"), 5, 2),
        # one QC release a day at each site
        (Spec(lines=(16, 16), qc=(1, 1), start_days=25), 40, ("c1", "c2"), 4, 3),
        (Spec(lines=(8, 16), apheresis=(1, 1), qc=(1, 1), fresh=True, start_days=25),
         35, ("c1", "c2"), 10, 4),
        # more orders than slots: the most patients first, then the least time
        (Spec(lines=(8, 8), apheresis=(2, 2), start_days=20), 50, ("c1", "c2"), 6, 5),
    ],
)  # fmt: skip
def test_the_optimum_is_the_time_indexed_milps(
    spec: Spec, n: int, centers: tuple[str, ...], ready: int, seed: int
) -> None:
    net = network(spec)
    cal = CapacityCalendar(net, ORIGIN, days=spec.start_days + 16)
    orders = backlog(np.random.default_rng(seed), n, centers, ready)
    most, least = time_indexed_milp(net, cal, orders)
    plan = optimize(net, cal, orders, cost_weight=COST_WEIGHT, time_limit=60)
    check(plan, most, least)
    base = greedy(net, cal, orders, cost_weight=COST_WEIGHT)
    assert (plan.assigned, -(plan.objective or 0)) >= (base.assigned, -(base.objective or 0))
