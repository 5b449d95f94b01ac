"""Treatment centers: where they are, their size, the products they are qualified for.

A center's size (``_size``, dropped before validation) later sets its share of demand.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cartnet.network.synthetic.apportion import allocate
from cartnet.network.synthetic.draws import Draws
from cartnet.network.synthetic.world import CENTER_KINDS, MARKETS


def draw_centers(
    draws: Draws, n_centers: int, products: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``n_centers`` centers spread over the markets by ``demand_weight``, with no demand yet."""
    counts = allocate(n_centers, [m.demand_weight for m in MARKETS])
    homes = [m for m, n in zip(MARKETS, counts, strict=True) for _ in range(n)]
    order = draws.rng.permutation(len(homes))
    width = max(4, len(str(n_centers)))
    names: dict[str, int] = {}
    sizes = draws.rng.lognormal(0.0, 0.8, len(homes))
    ranked = np.sort(sizes)
    big = (ranked[int(0.75 * len(sizes))], ranked[min(len(sizes) - 1, int(0.95 * len(sizes)))])
    out = []
    for k, idx in enumerate(order):
        market = homes[int(idx)]
        country, city, lat, lon = draws.place(market)
        label = f"{city} {CENTER_KINDS[draws.pick(len(CENTER_KINDS))]}"
        names[label] = names.get(label, 0) + 1
        if names[label] > 1:
            label = f"{label} {names[label]}"
        size = float(sizes[k])
        qualified = [p["id"] for i, p in enumerate(products) if i == 0 or draws.rng.random() < 0.5]
        out.append(
            {
                "id": f"center-{k + 1:0{width}d}",
                "name": label,
                "market": market.id,
                "city": city,
                "country": country,
                "lat": lat,
                "lon": lon,
                "products": qualified,
                "apheresis_per_day": 1 + int(size > big[0]) + int(size > big[1]),
                "assumption": draws.note,
                "demand": [],
                "_size": size,  # dropped before validation
            }
        )
    return out
