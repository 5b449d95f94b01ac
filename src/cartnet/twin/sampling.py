"""Durations drawn in blocks.

One numpy call per block of draws instead of one per event: a scalar draw from a
``Generator`` costs about a microsecond, a draw from a block a few nanoseconds
(``benchmarks/twin_speed.py`` measures the whole pipeline). The sequence is still
fixed by the replication's generator, so a seed gives the same run every time.
"""

from __future__ import annotations

import numpy as np

from cartnet.network.distributions import Duration

BLOCK = 256


class DrawPool:
    __slots__ = ("_block", "_buffer", "_dist", "_i", "_rng")

    def __init__(self, dist: Duration, rng: np.random.Generator, block: int = BLOCK) -> None:
        self._dist = dist
        self._rng = rng
        self._block = block
        self._buffer: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        i = self._i
        if i == len(self._buffer):
            self._buffer = self._dist.sample_many(self._rng, self._block).tolist()
            i = 0
        self._i = i + 1
        return self._buffer[i]
