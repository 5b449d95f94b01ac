"""The seeded draws every part of the generator shares.

One ``numpy`` Generator drives every draw, so the parts must take it in a fixed
order; ``Draws`` holds it with the small draws (places, dates, approvals) they reuse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np

from cartnet.network.entities import Regulator
from cartnet.network.synthetic.world import ANCHORS, EU_POPULATION, REFERENCE_DATE, MarketSpec

PENDING_SHARE = 0.06
"""Share of approvals that take effect only after the reference date."""


class Draws:
    """The random source of one generated network and the note every object carries."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.note = f"synthetic (generated, seed {seed})"
        self.ref = REFERENCE_DATE

    def pick(self, n: int, p: Sequence[float] | None = None) -> int:
        if p is None:
            return int(self.rng.integers(n))
        w = np.asarray(p, dtype=float)
        return int(self.rng.choice(n, p=w / w.sum()))

    def place(self, market: MarketSpec) -> tuple[str, str, float, float]:
        """(country, city, lat, lon) of a new place in ``market``."""
        if market.id == "EU":
            weights = [EU_POPULATION[c] for c in market.countries]
            country = market.countries[self.pick(len(weights), weights)]
        else:
            country = market.countries[self.pick(len(market.countries))]
        anchors = ANCHORS[country]
        city, lat, lon, radius = anchors[self.pick(len(anchors))]
        r = radius * math.sqrt(float(self.rng.random()))
        angle = 2 * math.pi * float(self.rng.random())
        lat_j = lat + r * math.sin(angle)
        lon_j = lon + r * math.cos(angle) / math.cos(math.radians(lat))
        return country, city, round(lat_j, 4), round(lon_j, 4)

    def day(self, low_days: int, high_days: int) -> str:
        """An ISO date ``low_days``..``high_days`` after the reference date."""
        offset = int(self.rng.integers(low_days, high_days + 1))
        return (self.ref + timedelta(days=offset)).isoformat()

    def effective(self, pending_share: float = PENDING_SHARE) -> str:
        """Mostly 1 month to 7 years before the reference date; sometimes up to 18 months after."""
        if self.rng.random() < pending_share:
            return self.day(14, 540)
        return self.day(-7 * 365, -30)

    def approval(
        self, product: str, regulator: Regulator, effective: str, trial: str | None = None
    ) -> dict[str, Any]:
        a: dict[str, Any] = {
            "product": product,
            "regulator": regulator.value,
            "scope": "clinical" if trial else "commercial",
            "effective": effective,
            "assumption": self.note,
        }
        if trial:
            a["trial"] = trial
        return a
