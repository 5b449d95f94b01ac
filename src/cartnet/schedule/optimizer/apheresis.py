"""Apheresis days: can a center collect the orders a plan gives it, and on which days?

Fresh material is collected exactly ``lead`` days before the start; cryopreserved
material may be collected on any day from the earliest apheresis to the chain's
latest day, and wait. Whether a set of such windows fits a center's daily
capacity is a bipartite matching of orders to days, decided exactly by earliest
deadline first.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from cartnet.schedule.capacity import CapacityCalendar
from cartnet.schedule.optimizer.chains import Chains, Job


def capacity_of(cap: np.ndarray, mirrored: bool = False) -> Callable[[int], int]:
    """Capacity of day t (of day -t on mirrored days); none outside the calendar."""
    sign = -1 if mirrored else 1
    return lambda t: int(cap[sign * t]) if 0 <= sign * t < cap.size else 0


def never_binds(jobs: list[Job], latest: list[np.ndarray], cap: np.ndarray) -> bool:
    """Can the center collect every order whichever of its chains each one gets?

    With fresh orders (fixed collection days): every day must hold every order that
    could use it. Cryopreserved only: the orders' tightest windows (earliest
    apheresis to the earliest chain's latest day) must admit a matching of orders
    to days (earliest deadline first); wider windows only help.
    """
    if any(j.fresh for j in jobs):
        use = np.zeros(cap.size, dtype=np.int64)
        for j, lat in zip(jobs, latest, strict=True):
            if j.fresh:
                use[np.unique(lat)] += 1
            else:
                use[j.first_a : int(lat.max()) + 1] += 1
        return bool(np.all(use <= cap))
    windows = sorted((j.first_a, int(lat.min())) for j, lat in zip(jobs, latest, strict=True))
    return matching(windows, capacity_of(cap)) is not None


def matching(
    windows: list[tuple[int, int]], capacity: Callable[[int], int], drop: bool = False
) -> list[int | None] | None:
    """Earliest deadline first: a day in [lo, hi] for each window (sorted by lo), at most
    ``capacity(t)`` on day t. None if impossible; with ``drop``, windows that cannot be
    served get None instead."""
    days: list[int | None] = [None] * len(windows)
    heap: list[tuple[int, int]] = []
    k, n = 0, len(windows)
    t = windows[0][0] if windows else 0
    while k < n or heap:
        if not heap:
            t = max(t, windows[k][0])
        while k < n and windows[k][0] <= t:
            heapq.heappush(heap, (windows[k][1], k))
            k += 1
        while heap and heap[0][0] < t:
            if not drop:
                return None
            heapq.heappop(heap)
        for _ in range(capacity(t)):
            if not heap:
                break
            days[heapq.heappop(heap)[1]] = t
        t += 1
    return days


def collection_days(
    calendar: CapacityCalendar,
    jobs: list[Job],
    pool: Chains,
    chosen: dict[int, int],
) -> dict[int, int] | None:
    """Apheresis day of each chosen job: fresh on its fixed day, cryopreserved as late as the
    center's capacity allows; None if they do not fit (earliest deadline first is exact)."""
    cap = (calendar.apheresis - calendar.apheresis_booked).astype(np.int64)
    days: dict[int, int] = {}
    by_center: dict[int, list[Job]] = defaultdict(list)
    for j, k in chosen.items():
        job = jobs[j]
        if job.fresh:
            days[j] = int(pool.latest_apheresis[k])
            cap[job.center, days[j]] -= 1
        else:
            by_center[job.center].append(job)
    if (cap < 0).any():
        return None
    for center, group in by_center.items():
        # as late as possible: earliest deadline first on mirrored days
        windows = [(-int(pool.latest_apheresis[chosen[j.index]]), -j.first_a) for j in group]
        order = sorted(range(len(group)), key=lambda i: windows[i])
        found = matching([windows[i] for i in order], capacity_of(cap[center], mirrored=True))
        if found is None:
            return None
        for pos, i in enumerate(order):
            day = found[pos]
            assert day is not None
            days[group[i].index] = -day
    return days
