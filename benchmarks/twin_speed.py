"""How fast is the twin, against SimPy, in parallel, and in how much memory?

Measures in one run, on one network (default: the packaged ``kymriah-2020``):

(a) one simulated year per replication (``TwinSettings()`` defaults: 365-day
    horizon, then the drain until the year's cohort is treated or lost) with
    cartnet's ``Pipeline`` and with the SimPy model of the same pipeline
    (``benchmarks/simpy_pipeline.py``), replication by replication on the same
    seeds, and prints seconds per replication, events per second and the ratio
    cartnet speed / SimPy speed;
(b) 100 replications of that year through ``run_variants`` on the default
    executor (``executor_for(None, None)``: a process pool with one worker per
    CPU), wall time against the serial time the (a) figure predicts;
(c) the peak resident memory of 1,000 replications run serially through
    ``run_variants`` (only summaries are aggregated, so memory should not grow
    with the count). That part runs in a fresh child process so (a) and (b) do
    not inflate its peak; progress goes to stderr.

    python benchmarks/twin_speed.py                      # a few minutes
    python benchmarks/twin_speed.py --replications 5 --memory-replications 0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import simpy

from cartnet.executors import executor_for
from cartnet.network import Network, open_network
from cartnet.twin.pipeline import Pipeline
from cartnet.twin.policies import make_policy
from cartnet.twin.replications import Variant, generators, run_variants
from cartnet.twin.settings import TwinSettings
from simpy_pipeline import run_simpy

YEAR = TwinSettings()
"""One simulated year: a 365-day horizon with the default warm-up and drain."""


def maxrss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """getrusage's peak resident set size in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(who).ru_maxrss / 1024


def peak_rss_mib() -> float:
    """This process's own peak resident set size in MiB.

    Linux carries ru_maxrss across fork and exec, so a child started from a big
    parent reports at least the parent's peak; VmHWM in /proc is the peak of the
    process's current address space, reset by exec. Elsewhere, fall back on ru_maxrss.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return maxrss_mib()


def time_models(
    net: Network, policy: str, seed: int, replications: int
) -> dict[str, dict[str, float]]:
    """Seconds and events per replication of both models, interleaved replication by replication
    so that both see the same machine load."""
    seconds = {"cartnet": [], "SimPy": []}  # type: dict[str, list[float]]
    events = {"cartnet": [], "SimPy": []}  # type: dict[str, list[int]]
    for r in range(replications):
        t = time.perf_counter()
        patients, durations = generators(seed, r)
        record = Pipeline(net, make_policy(policy), YEAR, patients, durations).run()
        seconds["cartnet"].append(time.perf_counter() - t)
        events["cartnet"].append(record.events)
        t = time.perf_counter()
        record = run_simpy(net, policy, YEAR, seed, r)
        seconds["SimPy"].append(time.perf_counter() - t)
        events["SimPy"].append(record.events)
        print(
            f"  (a) replication {r + 1}/{replications}: cartnet {seconds['cartnet'][-1]:.3f} s, "
            f"SimPy {seconds['SimPy'][-1]:.3f} s",
            file=sys.stderr,
        )
    out = {}
    for model in seconds:
        s, e = np.array(seconds[model]), np.array(events[model], dtype=float)
        out[model] = {
            "s_per_rep": float(s.mean()),
            "s_per_rep_median": float(np.median(s)),
            "events_per_rep": float(e.mean()),
            "events_per_s": float(e.sum() / s.sum()),
        }
    return out


def time_parallel(net: Network, policy: str, seed: int, replications: int) -> dict[str, float]:
    workers = os.cpu_count() or 1
    variants = [Variant("base", net, policy)]
    t = time.perf_counter()
    with executor_for(None, None) as executor:
        aggregates = run_variants(
            variants, YEAR, replications, seed, executor=executor, workers=workers
        )
    wall = time.perf_counter() - t
    assert aggregates[0].replications == replications
    return {"wall_s": wall, "workers": workers}


def memory_child(network: str, policy: str, seed: int, replications: int) -> None:
    """Run in a fresh process: serial replications, peak RSS at checkpoints, JSON on stdout."""
    base = peak_rss_mib()
    net = open_network(network)
    loaded = peak_rss_mib()
    checkpoints = {1, 10, 100, 250, 500, 1000, 2000, 5000, 10000, replications}
    peaks: dict[int, float] = {}
    t = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done in checkpoints:
            peaks[done] = peak_rss_mib()
        if done % 50 == 0 or done == total:
            rate = done / (time.perf_counter() - t)
            print(
                f"  (c) {done}/{total} replications, peak RSS {peak_rss_mib():.0f} MiB, "
                f"{rate:.1f} replications/s",
                file=sys.stderr,
            )

    [aggregate] = run_variants(
        [Variant("base", net, policy)], YEAR, replications, seed, None, progress
    )
    wall = time.perf_counter() - t
    json.dump(
        {
            "python_mib": base,
            "network_mib": loaded,
            "peaks_mib": peaks,
            "wall_s": wall,
            "replications": aggregate.replications,
            "treated_mean": aggregate.estimate("all.treated").mean,
        },
        sys.stdout,
    )


def measure_memory(network: str, policy: str, seed: int, replications: int) -> dict:  # type: ignore[type-arg]
    child = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--memory-child",
            "--network",
            network,
            "--policy",
            policy,
            "--seed",
            str(seed),
            "--memory-replications",
            str(replications),
        ],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    result = json.loads(child.stdout)
    result["children_mib"] = maxrss_mib(resource.RUSAGE_CHILDREN)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", default="kymriah-2020", help="packaged name or file path")
    parser.add_argument("--policy", default="earliest")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument(
        "--replications", type=int, default=20, help="(a): replications timed in each model"
    )
    parser.add_argument(
        "--parallel-replications", type=int, default=100, help="(b): replications on the pool"
    )
    parser.add_argument(
        "--memory-replications", type=int, default=1000, help="(c): serial replications; 0 skips"
    )
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.network, args.policy, args.seed, args.memory_replications)
        return

    net = open_network(args.network)
    print(
        f"network {net.name}: {len(net.sites)} sites, {sum(s.lines for s in net.sites)} lines, "
        f"{len(net.treatment_centers)} centers, {net.annual_demand():.0f} patients/year; "
        f"policy {args.policy}; seed {args.seed}"
    )
    print(
        f"Python {platform.python_version()}, SimPy {simpy.__version__}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    print(
        f"one replication = {YEAR.horizon_days:g}-day horizon (warm-up {YEAR.warmup_days:g} d), "
        f"then up to {YEAR.drain_days:g} d of drain until the cohort is settled"
    )

    print(f"\n(a) {args.replications} replications in each model", file=sys.stderr)
    a = time_models(net, args.policy, args.seed, args.replications)
    ours, theirs = a["cartnet"], a["SimPy"]
    print(f"\n(a) one simulated year, {args.replications} replications each, same seeds")
    print(f"{'model':<10}{'s/replication':>15}{'median s':>10}{'events/rep':>12}{'events/s':>12}")
    for model, m in a.items():
        print(
            f"{model:<10}{m['s_per_rep']:>15.3f}{m['s_per_rep_median']:>10.3f}"
            f"{m['events_per_rep']:>12.0f}{m['events_per_s']:>12.0f}"
        )
    print(
        f"ratio cartnet speed / SimPy speed (seconds per replication): "
        f"{theirs['s_per_rep'] / ours['s_per_rep']:.2f}x"
    )
    print(
        f"ratio of events/s: {ours['events_per_s'] / theirs['events_per_s']:.2f}x "
        f"(SimPy needs {theirs['events_per_rep'] / ours['events_per_rep']:.2f}x the events "
        f"per replication, so this one flatters SimPy)"
    )

    print(f"\n(b) {args.parallel_replications} replications on the pool", file=sys.stderr)
    b = time_parallel(net, args.policy, args.seed, args.parallel_replications)
    serial = args.parallel_replications * ours["s_per_rep"]
    print(
        f"\n(b) {args.parallel_replications} replications of one year, default executor "
        f"(process pool, {b['workers']:.0f} workers)"
    )
    print(f"wall time {b['wall_s']:.1f} s; serial estimate from (a) {serial:.1f} s")
    print(
        f"speed-up {serial / b['wall_s']:.2f}x on {b['workers']:.0f} workers "
        f"({args.parallel_replications / b['wall_s']:.1f} replications/s)"
    )

    if args.memory_replications > 0:
        n = args.memory_replications
        print(f"\n(c) {n} serial replications in a child process", file=sys.stderr)
        c = measure_memory(args.network, args.policy, args.seed, n)
        print(f"\n(c) {n} replications serially through run_variants (fresh child process)")
        print(
            f"peak RSS: interpreter with cartnet, numpy, SimPy imported {c['python_mib']:.0f} MiB, "
            f"network loaded {c['network_mib']:.0f} MiB"
        )
        for done, peak in sorted((int(k), v) for k, v in c["peaks_mib"].items()):
            print(f"  after {done:>5} replications: {peak:7.1f} MiB")
        print(
            f"wall {c['wall_s']:.0f} s ({c['wall_s'] / n:.3f} s/replication); "
            f"mean treated {c['treated_mean']:.1f}"
        )
        print(
            f"ru_maxrss of this process {maxrss_mib():.0f} MiB (it ran (a)), of its children "
            f"{c['children_mib']:.0f} MiB (the largest: a pool worker of (b) or the (c) "
            f"process, which inherits this process's peak)"
        )


if __name__ == "__main__":
    main()
