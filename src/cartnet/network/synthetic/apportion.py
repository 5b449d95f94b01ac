"""Splitting whole totals by weight: site and center counts, demand rounded to 0.1."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder, ties to the first).

    >>> allocate(5, [0.38, 0.34, 0.05, 0.04, 0.06, 0.05, 0.04, 0.04])
    [2, 2, 0, 0, 1, 0, 0, 0]
    """
    w = np.asarray(weights, dtype=float)
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(int)
    order = sorted(range(len(w)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - int(counts.sum())]:
        counts[i] += 1
    return [int(c) for c in counts]


def round_to_total(values: list[float], total: float) -> list[float]:
    """Values rounded to 0.1 whose sum is ``total`` (to 0.05) when that is possible."""
    rounded = [round(v, 1) for v in values]
    if rounded:
        big = max(range(len(rounded)), key=lambda i: rounded[i])
        fixed = round(rounded[big] + total - math.fsum(rounded), 1)
        if fixed >= 0:
            rounded[big] = fixed
    return rounded
