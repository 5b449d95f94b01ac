"""Demand: the network's capacity in patients, and the patients each center sends.

Commercial demand follows market weights and center sizes; clinical demand (a share
``CLINICAL_SHARE``) goes to the trials' centers. Rounded to 0.1 with the exact total kept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cartnet.network.synthetic.apportion import round_to_total
from cartnet.network.synthetic.draws import Draws
from cartnet.network.synthetic.trials import Trial
from cartnet.network.synthetic.world import MARKETS

TARGET_UTILIZATION = 0.75
"""Default demand as a share of the network's manufacturing capacity."""

CLINICAL_SHARE = 0.08
"""Share of all patients who are clinical-trial patients (kymriah-2020: 132 of 1,660)."""


def site_capacity(site: dict[str, Any], products: list[dict[str, Any]]) -> float:
    """Patients a year the site can make with every line busy (failed batches re-made)."""
    oos = site.get("oos_probability", np.mean([p["oos_probability"] for p in products]))
    line_days = site["manufacturing"]["mean"] / (1 - float(oos))
    return float(site["lines"] * 365 / line_days)


def default_total(sites: list[dict[str, Any]], products: list[dict[str, Any]]) -> float:
    """Patients a year that load the network's lines to ``TARGET_UTILIZATION``."""
    return round(TARGET_UTILIZATION * sum(site_capacity(s, products) for s in sites), 1)


def spread_demand(
    draws: Draws,
    centers: list[dict[str, Any]],
    products: list[dict[str, Any]],
    trials: list[Trial],
    total: float,
) -> None:
    """Give every center its demand rows, ``total`` patients a year in all."""
    clinical_total = total * CLINICAL_SHARE if trials else 0.0
    commercial_total = total - clinical_total
    present = {c["market"] for c in centers}
    weights = {m.id: m.demand_weight for m in MARKETS if m.id in present}
    market_size: dict[str, float] = {}
    for c in centers:
        market_size[c["market"]] = market_size.get(c["market"], 0.0) + c["_size"]
    product_weight = {p["id"]: (1.0 if i == 0 else 0.5) for i, p in enumerate(products)}
    rows: list[tuple[dict[str, Any], float]] = []
    for c in centers:
        share = weights[c["market"]] / sum(weights.values())
        patients = commercial_total * share * c["_size"] / market_size[c["market"]]
        mix = sum(product_weight[p] for p in c["products"])
        for p in c["products"]:
            row = {"product": p, "scope": "commercial", "assumption": draws.note}
            rows.append((row, patients * product_weight[p] / mix))
            c["demand"].append(row)
    for trial, pid, participants in trials:
        per_trial = clinical_total / len(trials)
        sizes = [c["_size"] for c in participants]
        for c, size in zip(participants, sizes, strict=True):
            row = {"product": pid, "scope": "clinical", "trial": trial, "assumption": draws.note}
            rows.append((row, per_trial * size / sum(sizes)))
            c["demand"].append(row)
    values = round_to_total([v for _, v in rows], round(total, 1))
    for (row, _), value in zip(rows, values, strict=True):
        row["patients_per_year"] = value
    for c in centers:  # a very busy center collects on more chairs
        patients = sum(d["patients_per_year"] for d in c["demand"])
        c["apheresis_per_day"] = max(c["apheresis_per_day"], math.ceil(patients / 125))
