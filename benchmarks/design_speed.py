"""Solve time, objective, cost per therapy and gap of the i-SHIPMENT-class instances.

Target (issue 5): proven optimal in ≤ 10 s at 3,000 patients a year on 2 cores.
Each level is solved ``--repeat`` times (default 3) and the median time printed,
by the default method (enumeration of size combinations, each allocation an LP)
and, with ``--mip``, by handing the whole MILP to HiGHS as well, for comparison.

    .venv/bin/python benchmarks/design_speed.py [--repeat 3] [--mip] [--time-limit 60]
"""

from __future__ import annotations

import argparse
import statistics

from cartnet.design.ishipment import DEMAND_LEVELS, ishipment_instance
from cartnet.design.solve import solve_design


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mip", action="store_true", help="also solve the whole MILP")
    parser.add_argument("--time-limit", type=float, default=60.0)
    args = parser.parse_args()
    methods = ["auto", "mip"] if args.mip else ["auto"]
    print(
        f"{'patients/yr':>11} {'method':>11} {'status':>9} {'seconds':>8} {'objective':>14} "
        f"{'per therapy':>11} {'gap':>9} {'evaluated':>9}  sites"
    )
    for level in DEMAND_LEVELS:
        design = ishipment_instance(level)
        for method in methods:
            times = []
            r = None
            for _ in range(args.repeat):
                r = solve_design(design, method=method, time_limit=args.time_limit)
                times.append(r.seconds)
            assert r is not None
            sites = ", ".join(f"{s.site} {s.lines}" for s in r.sites)
            gap = "-" if r.gap is None else f"{100 * r.gap:.4f}%"
            obj = "-" if r.objective is None else f"{r.objective:,.0f}"
            print(
                f"{level:>11} {r.method:>11} {r.status:>9} {statistics.median(times):>8.2f} "
                f"{obj:>14} {r.cost_per_therapy.get('total', 0):>11,.0f} {gap:>9} "
                f"{r.evaluated:>9}  {sites}"
            )


if __name__ == "__main__":
    main()
