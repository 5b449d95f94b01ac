"""Solve time and objective of the i-SHIPMENT-structure instances, against a per-patient MILP.

Each level (or each ``--file``, an i-SHIPMENT data file) is solved ``--repeat``
times (default 3) by cartnet's default method (enumeration of size combinations,
each allocation an aggregated-flow MILP) and the median time printed; with
``--mip``, by handing cartnet's whole MILP to HiGHS as well. The yardstick is the
same problem written per patient in the paper's style (one binary per patient,
site, day and mode; ``design_per_patient.py``), built and solved by HiGHS once on
the same instance: the script prints its time, the ratio yardstick / cartnet and
the relative difference of the two optima (0 when both are proven optimal).

    .venv/bin/python benchmarks/design_speed.py [--repeat 3] [--mip] [--time-limit 60]
        [--yardstick-limit 300] [--no-yardstick] [--rigid] [--levels 200 500]
        [--file Data200_profileA.dat ...]

``--rigid`` adds the per-patient model with the authors' timing (material starts
manufacturing the day it arrives, no waiting for a line): its optimum can only be
dearer, and on the authors' files it is what their model computes up to their
solver's tolerance.
"""

from __future__ import annotations

import argparse
import statistics

from cartnet.design.ishipment import DEMAND_LEVELS, ishipment_instance
from cartnet.design.ishipment_import import import_ishipment
from cartnet.design.model import DesignInput
from cartnet.design.solve import solve_design
from design_per_patient import solve_per_patient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mip", action="store_true", help="also solve cartnet's whole MILP")
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--yardstick-limit", type=float, default=300.0)
    parser.add_argument("--no-yardstick", action="store_true")
    parser.add_argument(
        "--rigid",
        action="store_true",
        help="also solve per patient without waiting for a line (the authors' timing)",
    )
    parser.add_argument("--levels", type=int, nargs="*", default=list(DEMAND_LEVELS))
    parser.add_argument("--file", nargs="*", default=[], help="i-SHIPMENT .dat files")
    args = parser.parse_args()
    instances: list[tuple[str, DesignInput]] = [
        (f"ishipment-{n}", ishipment_instance(n)) for n in args.levels
    ]
    instances += [(path.rsplit("/", 1)[-1], import_ishipment(path)[0]) for path in args.file]
    methods = ["auto", "mip"] if args.mip else ["auto"]
    print(
        f"{'instance':>22} {'method':>11} {'status':>9} {'seconds':>8} {'objective':>14} "
        f"{'per therapy':>11} {'gap':>9}  sites"
    )
    for name, design in instances:
        ours = None
        for method in methods:
            times = []
            r = None
            for _ in range(args.repeat):
                r = solve_design(design, method=method, time_limit=args.time_limit)
                times.append(r.seconds)
            assert r is not None
            ours = ours or (r, statistics.median(times))
            sites = ", ".join(f"{s.site} {s.lines}" for s in r.sites)
            gap = "-" if r.gap is None else f"{100 * r.gap:.4f}%"
            obj = "-" if r.objective is None else f"{r.objective:,.0f}"
            print(
                f"{name:>22} {r.method:>11} {r.status:>9} {statistics.median(times):>8.2f} "
                f"{obj:>14} {r.cost_per_therapy.get('total', 0):>11,.0f} {gap:>9}  {sites}"
            )
        if args.no_yardstick or ours is None:
            continue
        r, seconds = ours
        y = solve_per_patient(design, time_limit=args.yardstick_limit)
        obj = "-" if y.objective is None else f"{y.objective:,.0f}"
        sites = ", ".join(f"{s} {lines}" for s, lines in y.sites.items())
        print(
            f"{name:>22} {'per-patient':>11} {y.status:>9} {y.seconds:>8.2f} {obj:>14} "
            f"{'':>11} {'':>9}  {sites}  ({y.binaries:,} binaries)"
        )
        if y.objective is not None and r.objective:
            diff = (y.objective - r.objective) / r.objective
            print(
                f"{'':>22} {'ratio':>11} per-patient / cartnet time {y.seconds / seconds:,.1f}x, "
                f"objective difference {100 * diff:+.4f} %"
            )
        if args.rigid:
            z = solve_per_patient(design, wait=False, time_limit=args.yardstick_limit)
            obj = "-" if z.objective is None else f"{z.objective:,.0f}"
            sites = ", ".join(f"{s} {lines}" for s, lines in z.sites.items())
            print(
                f"{name:>22} {'no waiting':>11} {z.status:>9} {z.seconds:>8.2f} {obj:>14} "
                f"{'':>11} {'':>9}  {sites}  ({z.binaries:,} binaries)"
            )


if __name__ == "__main__":
    main()
