"""Manufacturing sites: where they are, who runs them, their lines, times, calendars, approvals.

The sites are drawn before the centers; their home market's approvals come with them,
the approvals that make the network whole come later (``coverage``, ``trials``).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np

from cartnet.network.entities import OperatorKind, StartingMaterial
from cartnet.network.geo import CONTINENT_OF
from cartnet.network.synthetic.apportion import allocate
from cartnet.network.synthetic.draws import Draws
from cartnet.network.synthetic.world import (
    CONTRACT_OPERATORS,
    HOLIDAYS_2025,
    MARKETS,
    SPONSOR,
    MarketSpec,
)


def draw_sites(draws: Draws, n_sites: int, products: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``n_sites`` sites spread over the markets by ``site_weight``, as network-file data.

    Each carries its home market in ``_market``, which the generator drops before validation.
    """
    counts = allocate(n_sites, [m.site_weight for m in MARKETS])
    homes = [m for m, n in zip(MARKETS, counts, strict=True) for _ in range(n)]
    order = draws.rng.permutation(len(homes))
    width = max(3, len(str(n_sites)))
    names: dict[str, int] = {}
    out = []
    for k, idx in enumerate(order):
        market = homes[int(idx)]
        country, city, lat, lon = draws.place(market)
        owned = draws.rng.random() < 0.55
        operator = SPONSOR if owned else CONTRACT_OPERATORS[draws.pick(len(CONTRACT_OPERATORS))]
        label = f"{city} ({operator})"
        names[label] = names.get(label, 0) + 1
        if names[label] > 1:
            label = f"{city} {names[label]} ({operator})"
        lines = int(np.clip(round(float(draws.rng.lognormal(math.log(6.0), 0.75))), 2, 30))
        mfg_mean = round(float(draws.rng.uniform(7.0, 9.0)), 1)
        mfg_sd = round(mfg_mean * float(draws.rng.uniform(0.1, 0.2)), 1)
        qc_low = float(draws.rng.choice([6.5, 7.0, 7.0, 7.5]))
        qc_mode = qc_low + float(draws.rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))
        qc_high = float(draws.rng.choice([12.0, 13.0, 14.0, 14.0, 15.0]))
        fresh = draws.rng.random() < 0.5
        site: dict[str, Any] = {
            "id": f"site-{k + 1:0{width}d}",
            "name": label,
            "operator": {
                "name": operator,
                "kind": (OperatorKind.OWNED if owned else OperatorKind.CONTRACT).value,
                "assumption": draws.note,
            },
            "city": city,
            "country": country,
            "lat": lat,
            "lon": lon,
            "lines": lines,
            "manufacturing": {"dist": "lognormal", "mean": mfg_mean, "sd": mfg_sd},
            "qc": {"dist": "triangular", "low": qc_low, "mode": qc_mode, "high": qc_high},
            "calendar": _calendar(draws, market),
            "starting_materials": (
                [StartingMaterial.CRYOPRESERVED.value, StartingMaterial.FRESH.value]
                if fresh
                else [StartingMaterial.CRYOPRESERVED.value]
            ),
            "assumption": draws.note,
            "approvals": _site_approvals(draws, market, products, fresh),
        }
        if draws.rng.random() < 0.1:
            site["oos_probability"] = round(float(draws.rng.uniform(0.02, 0.12)), 3)
        if draws.rng.random() < 0.1:
            site["qc_capacity_per_day"] = max(1, math.ceil(lines / 4))
        site["_market"] = market.id  # dropped before validation
        out.append(site)
    return out


def _calendar(draws: Draws, market: MarketSpec) -> dict[str, Any]:
    u = float(draws.rng.random())
    if u < 0.7:
        closed = ["sat", "sun"]
    elif u < 0.9:
        closed = ["sun"]
    else:
        closed = []  # a 7-day site
    calendar: dict[str, Any] = {"closed_weekdays": closed}
    if closed:
        calendar["closed_dates"] = list(HOLIDAYS_2025[market.id])
    if draws.rng.random() < 0.1:
        start = draws.ref + timedelta(weeks=int(draws.rng.integers(4, 48)))
        days = 6 if draws.rng.random() < 0.5 else 13
        calendar["shutdowns"] = [
            {
                "start": start.isoformat(),
                "end": (start + timedelta(days=days)).isoformat(),
                "reason": "annual maintenance",
            }
        ]
    return calendar


def _site_approvals(
    draws: Draws, home: MarketSpec, products: list[dict[str, Any]], fresh: bool
) -> list[dict[str, Any]]:
    approvals = []
    for i, product in enumerate(products):
        is_fresh = product["starting_material"] == StartingMaterial.FRESH.value
        if (i > 0 and draws.rng.random() < 0.5) or (is_fresh and not fresh):
            continue  # the site does not make this product
        approvals.append(draws.approval(product["id"], home.regulator, draws.effective()))
        home_continent = CONTINENT_OF[home.countries[0]]
        for m in MARKETS:
            if m is home:
                continue
            if is_fresh and CONTINENT_OF[m.countries[0]] != home_continent:
                continue  # fresh material does not cross oceans
            if draws.rng.random() < m.foreign_approval:
                approvals.append(draws.approval(product["id"], m.regulator, draws.effective()))
    return approvals
