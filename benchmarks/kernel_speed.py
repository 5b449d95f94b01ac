"""The bare event kernel against SimPy: an M/M/c queue, same arrivals and services.

Usage: python benchmarks/kernel_speed.py [--customers 200000] [--lines 10] [--rho 0.9]

Both models serve the same pre-drawn interarrival and service times, FIFO on c
servers, so they produce the same sample path (the script checks that the mean
waits are equal) and the ratio of their wall times is the kernel's own speed-up.
"""

from __future__ import annotations

import argparse
import time
from collections import deque

import numpy as np
import simpy

from cartnet.twin.kernel import Kernel


def ours(arrivals: np.ndarray, services: np.ndarray, c: int) -> tuple[float, int]:
    kernel = Kernel()
    free = [c]
    queue: deque[int] = deque()
    waits = np.zeros(len(arrivals))
    serve = services.tolist()
    arrive = arrivals.tolist()

    def start(i: int) -> None:
        waits[i] = kernel.now - arrive[i]
        kernel.at(kernel.now + serve[i], finish, i)

    def finish(_: int) -> None:
        if queue:
            start(queue.popleft())
        else:
            free[0] += 1

    def arrival(i: int) -> None:
        if free[0] > 0:
            free[0] -= 1
            start(i)
        else:
            queue.append(i)
        if i + 1 < len(arrive):
            kernel.at(arrive[i + 1], arrival, i + 1)

    kernel.at(arrive[0], arrival, 0)
    kernel.run(float("inf"))
    return float(waits.mean()), kernel.events


def theirs(arrivals: np.ndarray, services: np.ndarray, c: int) -> float:
    env = simpy.Environment()
    lines = simpy.Resource(env, capacity=c)
    waits = np.zeros(len(arrivals))
    serve = services.tolist()
    arrive = arrivals.tolist()

    def customer(i: int):  # type: ignore[no-untyped-def]
        with lines.request() as req:
            yield req
            waits[i] = env.now - arrive[i]
            yield env.timeout(serve[i])

    def source():  # type: ignore[no-untyped-def]
        for i, t in enumerate(arrive):
            yield env.timeout(t - env.now)
            env.process(customer(i))

    env.process(source())
    env.run()
    return float(waits.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--lines", type=int, default=10)
    parser.add_argument("--rho", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=1)
    a = parser.parse_args()
    rng = np.random.default_rng(a.seed)
    arrivals = np.cumsum(rng.exponential(1 / (a.rho * a.lines), a.customers))
    services = rng.exponential(1.0, a.customers)

    t0 = time.perf_counter()
    w_ours, events = ours(arrivals, services, a.lines)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    w_simpy = theirs(arrivals, services, a.lines)
    t_simpy = time.perf_counter() - t0

    print(f"M/M/{a.lines}, rho {a.rho}, {a.customers:,} customers (same sample path)")
    print(f"{'model':<8} {'seconds':>8} {'events/s':>12} {'mean wait':>10}")
    print(f"{'cartnet':<8} {t_ours:8.2f} {events / t_ours:12,.0f} {w_ours:10.4f}")
    print(f"{'SimPy':<8} {t_simpy:8.2f} {'':>12} {w_simpy:10.4f}")
    print(f"same mean wait: {abs(w_ours - w_simpy) < 1e-9}")
    print(f"ratio cartnet / SimPy speed: {t_simpy / t_ours:.1f}x")


if __name__ == "__main__":
    main()
