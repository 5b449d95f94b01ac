"""The discrete-event kernel: a heap of timed callbacks.

Our own ``heapq`` loop rather than SimPy: events are plain callbacks, with no
generator or event objects per step. ``benchmarks/kernel_speed.py`` measures the
bare kernel against SimPy on an M/M/c queue, and ``benchmarks/twin_speed.py``
the whole pipeline against a SimPy model of it, each in the same run. Ties are
broken by insertion order, so a run is deterministic.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any


class Kernel:
    """Time in float days from the start of the run."""

    __slots__ = ("_heap", "_seq", "events", "now")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._seq = 0
        self.now = 0.0
        self.events = 0

    def at(self, time: float, action: Callable[[Any], None], arg: Any = None) -> None:
        """Run ``action(arg)`` at ``time`` (never in the past)."""
        self._seq += 1
        if time < self.now:
            time = self.now
        heapq.heappush(self._heap, (time, self._seq, action, arg))

    def run(self, until: float, stop: Callable[[], bool] | None = None) -> None:
        """Process events up to ``until``; ``stop`` may end the run early."""
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] <= until:
            time, _, action, arg = pop(heap)
            self.now = time
            self.events += 1
            action(arg)
            if stop is not None and stop():
                return
        self.now = max(self.now, until)
