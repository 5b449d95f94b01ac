"""How fast is a slot-chain offer, on a calendar loaded with a year of bookings?

Usage: python benchmarks/offers_speed.py [--requests 1000] [--large]

Measures the median and p99 time of ``OfferPlanner.offers`` on kymriah-2020
(after-ema-2020) after booking a year of demand through it, and with ``--large``
on a generated network of 100 sites and 2,000 centers. The yardstick, timed on
the same requests, is the plain way to search: for every site and every day,
ask the network whether the site may make the product that day and look the
slot up one day at a time.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import date, timedelta

import numpy as np

from cartnet.network import Network, open_network
from cartnet.schedule.capacity import CapacityCalendar, Party
from cartnet.schedule.offers import OfferPlanner, OfferRequest


def load_year(planner: OfferPlanner, rng: np.random.Generator, start: date) -> int:
    """Book a year of the network's demand, each order on its best offer."""
    net = planner.network
    booked = 0
    for c in net.treatment_centers:
        for d in c.demand:
            if d.scope.value != "commercial":
                continue
            n = rng.poisson(d.patients_per_year)
            for day in np.sort(rng.integers(0, 365, n)).tolist():
                req = OfferRequest(c.id, d.product, start + timedelta(days=day))
                chains = planner.offers(req, k=1).chains
                if chains:
                    ch = chains[0]
                    planner.calendar.book(
                        f"{c.id}-{booked}", Party(c.id, c.market), ch.site, ch.apheresis, ch.start
                    )
                    booked += 1
    return booked


def naive_first_slot(net: Network, cal: CapacityCalendar, req: OfferRequest) -> int:
    """The yardstick: day by day, site by site, with the network's own questions."""
    market = net.market(net.center(req.center).market).id
    found = 0
    for site in net.sites:
        lane = net.lane(req.center, site.id)
        lead = math.ceil(1 + lane.mean_days)
        first = cal.day(req.earliest_apheresis) + lead
        for d in range(first, min(cal.days, first + 180)):
            on = cal.date_of(d)
            if site.id not in {
                s.id for s in net.eligible_sites(req.product, market, req.scope, on)
            }:
                continue
            if cal.slots[cal.site_index[site.id], d] > cal.booked[cal.site_index[site.id], d]:
                found += 1
                break
    return found


def measure(net: Network, label: str, requests: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    start = net.reference_date
    planner = OfferPlanner(net, CapacityCalendar(net, start, days=730))
    t0 = time.perf_counter()
    booked = load_year(planner, rng, start)
    print(f"{label}: booked a year of demand ({booked} orders) in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)  # fmt: skip
    centers = [c for c in net.treatment_centers if c.demand]
    reqs = [
        OfferRequest(c.id, c.demand[0].product, start + timedelta(days=int(rng.integers(0, 300))))
        for c in (centers[i] for i in rng.integers(0, len(centers), requests))
    ]
    ours = []
    for r in reqs:
        t = time.perf_counter()
        planner.offers(r)
        ours.append(time.perf_counter() - t)
    plain = []
    for r in reqs[: max(20, requests // 20)]:
        t = time.perf_counter()
        naive_first_slot(net, planner.calendar, r)
        plain.append(time.perf_counter() - t)
    o, p = np.array(ours) * 1e3, np.array(plain) * 1e3
    print(f"\n{label}: {len(net.sites)} sites, {len(net.treatment_centers)} centers, "
          f"{booked} bookings")  # fmt: skip
    print(f"{'':<12}{'median ms':>10}{'p99 ms':>10}{'n':>7}")
    print(f"{'cartnet':<12}{np.median(o):10.2f}{np.percentile(o, 99):10.2f}{len(o):7}")
    print(f"{'plain scan':<12}{np.median(p):10.2f}{np.percentile(p, 99):10.2f}{len(p):7}")
    print(f"ratio (median, plain / cartnet): {np.median(p) / np.median(o):.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--large", action="store_true", help="also 100 sites × 2,000 centers")
    a = parser.parse_args()
    net = open_network("kymriah-2020").with_scenario("after-ema-2020")
    measure(net, "kymriah-2020 after-ema-2020", a.requests, a.seed)
    if a.large:
        from cartnet.network.synthetic import generate_network

        measure(generate_network(sites=100, centers=2000, seed=0), "generated", a.requests, a.seed)


if __name__ == "__main__":
    main()
