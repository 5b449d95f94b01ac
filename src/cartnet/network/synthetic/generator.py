"""``generate_network``: checks the arguments, draws the parts in a fixed order, validates.

The order of the parts is the order of the draws: changing it changes every network.
"""

from __future__ import annotations

import math
from typing import Any

from cartnet.network.entities import StartingMaterial
from cartnet.network.model import Network
from cartnet.network.synthetic.centers import draw_centers
from cartnet.network.synthetic.coverage import balance, cover_commercial
from cartnet.network.synthetic.demand import CLINICAL_SHARE, default_total, spread_demand
from cartnet.network.synthetic.draws import Draws
from cartnet.network.synthetic.lanes import draw_lanes
from cartnet.network.synthetic.scenarios import draw_scenarios
from cartnet.network.synthetic.sites import draw_sites
from cartnet.network.synthetic.trials import draw_trials
from cartnet.network.synthetic.world import MARKETS


def generate_network(
    sites: int = 100,
    centers: int = 2000,
    *,
    seed: int = 0,
    products: int = 1,
    patients_per_year: float | None = None,
    name: str | None = None,
) -> Network:
    """A validated synthetic network of ``sites`` sites and ``centers`` treatment centers.

    ``patients_per_year`` is the total demand (commercial and clinical); by default it
    is sized for a network utilisation of about 75 %. The same arguments always give
    the same network.

    >>> net = generate_network(5, 20, seed=1)
    >>> len(net.sites), len(net.treatment_centers), len(net.markets)
    (5, 20, 8)
    >>> net.sites[0].id, net.treatment_centers[0].id, net.sites[0].assumption
    ('site-001', 'center-0001', 'synthetic (generated, seed 1)')
    """
    if sites < 2:
        raise ValueError("a synthetic network needs at least 2 sites (2 per market)")
    if centers < 1:
        raise ValueError("a synthetic network needs at least 1 treatment center")
    if products < 1:
        raise ValueError("a synthetic network needs at least 1 product")
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    if patients_per_year is not None and not (
        patients_per_year >= 0 and math.isfinite(patients_per_year)
    ):
        raise ValueError("patients_per_year must be a finite number >= 0")
    data = _build(
        sites,
        centers,
        seed,
        products,
        patients_per_year,
        name or f"synthetic-{sites}x{centers}-seed{seed}",
    )
    return Network.model_validate(data)


def _build(
    n_sites: int,
    n_centers: int,
    seed: int,
    n_products: int,
    patients_per_year: float | None,
    name: str,
) -> dict[str, Any]:
    """One network as plain data (the dict to validate)."""
    draws = Draws(seed)
    products = _products(draws, n_products)
    markets = [
        {
            "id": m.id,
            "name": m.name,
            "regulator": m.regulator.value,
            "countries": list(m.countries),
            "assumption": draws.note,
        }
        for m in MARKETS
    ]
    sites = draw_sites(draws, n_sites, products)
    centers = draw_centers(draws, n_centers, products)
    cover_commercial(draws, sites, products)
    total = patients_per_year if patients_per_year is not None else default_total(sites, products)
    trials = draw_trials(draws, n_sites, sites, centers, products, total * CLINICAL_SHARE)
    spread_demand(draws, centers, products, trials, total)
    balance(draws, sites, centers, products)
    lanes = draw_lanes(draws, n_sites, sites, centers)
    for s in sites:
        del s["_market"]
    for c in centers:
        del c["_size"]
    return {
        "name": name,
        "description": (
            f"Synthetic network: {n_sites} sites, {n_centers} treatment centers, "
            f"{n_products} product(s), {round(total, 1):g} patients a year, from seed "
            f"{seed} (cartnet.network.synthetic). Realistic in kind, not real: for scale "
            "tests and benchmarks."
        ),
        "reference_date": draws.ref.isoformat(),
        "currency": "USD",
        "assumption": draws.note,
        "products": products,
        "markets": markets,
        "sites": sites,
        "treatment_centers": centers,
        "lanes": lanes,
        "lane_defaults": {"assumption": draws.note},
        "scenarios": draw_scenarios(draws, n_sites, sites),
    }


def _products(draws: Draws, n_products: int) -> list[dict[str, Any]]:
    """``product-01`` ...; every second one is made from fresh apheresis."""
    out = []
    for i in range(n_products):
        p: dict[str, Any] = {
            "id": f"product-{i + 1:02d}",
            "name": f"Synthetic CAR-T {i + 1:02d}",
            "starting_material": StartingMaterial.CRYOPRESERVED.value,
            "oos_probability": round(float(draws.rng.uniform(0.03, 0.08)), 3),
            "assumption": draws.note,
        }
        if i % 2 == 1:  # every second product ships fresh apheresis, like some real ones
            p["starting_material"] = StartingMaterial.FRESH.value
            p["stability_hours"] = float(draws.rng.choice([72.0, 96.0]))
        out.append(p)
    return out
