"""How fast and how good is the batch optimizer, against the greedy baseline?

For backlogs of 100, 500 and 2,000 orders on ``kymriah-2020`` (scenario
``after-ema-2020``, as of 2020-09-01) and, if the synthetic network generator is
available, 2,000 orders on ``generate_network(sites=100, centers=2000, seed=0)``,
prints for ``optimize`` and ``greedy``: wall time, objective (weighted days),
mean and p90 time to treatment, unassigned orders, method, status and gap, and
the ratio of the objectives.

Backlogs are drawn deterministically (seeded ``numpy`` Generator) from the
network's demand: a center and demand line with probability proportional to
``patients_per_year``, the earliest apheresis uniform over the next 60 days,
enrolment 0-13 days before the backlog date, a quarter of the orders urgent
(weight 2). Before each run the calendar is preloaded with existing bookings:
earlier orders (30 % of the manufacturing slots of the next 45 days) booked
greedily.

    python benchmarks/optimizer_speed.py               # all instances
    python benchmarks/optimizer_speed.py --sizes 500 --no-synthetic
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date

import numpy as np

from cartnet.network import Network, open_network
from cartnet.schedule.backlog import Backlog, sample_backlog
from cartnet.schedule.capacity import CapacityCalendar
from cartnet.schedule.optimizer import BacklogPlan, greedy, optimize

HORIZON_DAYS = 60
CALENDAR_DAYS = 400


def make_backlog(network: Network, n: int, as_of: date, seed: int, prefix: str = "o") -> Backlog:
    """``n`` orders drawn from the network's demand, earliest apheresis in the next 60 days."""
    return sample_backlog(network, n, as_of, seed=seed, window_days=HORIZON_DAYS, prefix=prefix)


def preloaded_calendar(network: Network, as_of: date, seed: int) -> CapacityCalendar:
    """A calendar holding earlier orders' bookings: 30 % of the slots of the next 45 days."""
    cal = CapacityCalendar(network, as_of, days=CALENDAR_DAYS)
    existing = int(0.3 * cal.slots[:, :45].sum())
    earlier = make_backlog(network, existing, as_of, seed + 1000, prefix="booked-")
    earlier = Backlog(
        as_of=as_of,
        orders=[
            o.model_copy(
                update={"earliest_apheresis": as_of + (o.earliest_apheresis - as_of) * 30 // 60}
            )
            for o in earlier.orders
        ],
    )
    greedy(network, cal, earlier, apply=True)
    return cal


def row(name: str, plan: BacklogPlan, seconds: float) -> str:
    gap = "-" if plan.gap is None else f"{100 * plan.gap:.3f}%"
    mean = plan.mean_time_to_treatment
    p90 = plan.p90_time_to_treatment
    return (
        f"  {name:<8} {seconds:8.2f} s  objective {plan.objective or float('nan'):12.1f}  "
        f"TTT mean {mean or float('nan'):6.1f} p90 {p90 or float('nan'):6.1f}  "
        f"assigned {plan.assigned:5d} (at most {plan.assigned_bound})  "
        f"{plan.method:<17} {plan.status.value:<11} gap {gap}"
    )


def run(label: str, network: Network, as_of: date, n: int, time_limit: float, gap: float) -> None:
    cal = preloaded_calendar(network, as_of, seed=n)
    backlog = make_backlog(network, n, as_of, seed=n)
    booked = int(cal.booked[:, :HORIZON_DAYS].sum())
    free = int((cal.slots - cal.booked)[:, :HORIZON_DAYS].sum())
    print(
        f"{label}: {n} orders, {len(network.sites)} sites, {len(network.treatment_centers)} "
        f"centers; next {HORIZON_DAYS} days: {booked} slots booked, {free} free"
    )
    before = cal.booked.copy()
    clock = time.perf_counter()
    base = greedy(network, cal, backlog)
    t_greedy = time.perf_counter() - clock
    clock = time.perf_counter()
    plan = optimize(network, cal, backlog, time_limit=time_limit, mip_gap=gap, baseline=base)
    t_opt = time.perf_counter() - clock
    assert np.array_equal(before, cal.booked), "a plan changed the calendar"
    print(row("greedy", base, t_greedy))
    print(row("optimize", plan, t_opt))
    print(
        f"  optimize: build {plan.build_seconds:.2f} s, solve {plan.solve_seconds:.2f} s "
        f"(+ greedy warm start {t_greedy:.2f} s, passed in); {plan.candidates} candidate chains, "
        f"{plan.variables} columns, {plan.constraints} rows; bound {plan.bound}; {plan.message}"
    )
    if base.objective and plan.objective and plan.assigned == base.assigned:
        print(f"  objective optimize / greedy = {plan.objective / base.objective:.4f}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 500, 2000])
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--no-synthetic", action="store_true")
    args = parser.parse_args()
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"optimize(time_limit={args.time_limit}); mip_gap 1e-6 on kymriah, 1 % on synthetic\n"
    )
    kymriah = open_network("kymriah-2020").with_scenario("after-ema-2020")
    for n in args.sizes:
        run("kymriah-2020 after-ema-2020", kymriah, date(2020, 9, 1), n, args.time_limit, 1e-6)
    if args.no_synthetic:
        return
    try:
        from cartnet.network.synthetic import generate_network
    except ImportError:
        print("synthetic network generator not available: skipped")
        return
    clock = time.perf_counter()
    synthetic = generate_network(sites=100, centers=2000, seed=0)
    print(f"(generated the synthetic network in {time.perf_counter() - clock:.1f} s)")
    as_of = synthetic.reference_date
    run("synthetic 100 sites", synthetic, as_of, 2000, args.time_limit, 0.01)


if __name__ == "__main__":
    main()
