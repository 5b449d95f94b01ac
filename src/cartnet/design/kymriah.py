"""A design instance on the kymriah-2020 network: which sites to expand for grown demand.

Built from the packaged network (``cartnet.data/kymriah-2020.yaml``): its seven
sites are candidates that must stay open, each with size options of its current
lines and expansions; demand is the network's, times a growth factor.

Taken from the network file (itself partly assumption, see its notes): sites,
coordinates, lines, approvals (which markets a site may serve), manufacturing
and QC means (rounded up to whole days), lanes (mean transit + customs days and
cost per shipment), demand per center and the 7 % batch failure rate (a failed
batch is re-made: 1/0.93 line starts per patient).

Assumptions of this instance (listed in the instance's ``assumption`` and the
result):

* demand is aggregated per market: one demand node per market at the
  demand-weighted centroid of its centers, with the demand-weighted mean lane
  days (rounded up) and cost to each site; commercial and clinical patients of a
  market are pooled and may use a site from the day (counted from the reference
  date) its approval for the market's largest stream (the commercial one, where
  there is one) comes into force, as the twin does for that stream;
* size options: current lines, +25 %, +50 % and +100 % (rounded up);
* fixed cost USD 0.6 M per existing line-year and 1.0 M per added line-year;
* one transport mode (the network's courier lane);
* continuous flows: a market node's daily demand is a rate (patients per day),
  not whole patients, since the aggregation has already averaged over centers;
* vein-to-vein cap 30 days (i-SHIPMENT's 18 days is below Kymriah's 8-day
  manufacturing plus 10-day QC plus transit);
* materials and QC per therapy as in i-SHIPMENT (USD 10,476 and 9,312).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np

from cartnet.design.model import DesignInput
from cartnet.network.catalog import open_network
from cartnet.network.entities import Scope
from cartnet.network.model import Network

EXPANSIONS = (0.0, 0.25, 0.5, 1.0)
COST_EXISTING_LINE_YEAR = 0.6e6
COST_ADDED_LINE_YEAR = 1.0e6
V2V_CAP_DAYS = 30

ASSUMPTIONS = (
    "demand aggregated per market at the demand-weighted centroid of its centers, with "
    "demand-weighted mean lane days (rounded up) and cost to each site; a market's pooled "
    "patients may use a site from the day its approval for the market's largest stream "
    "comes into force",
    "size options: current lines, +25 %, +50 %, +100 % (rounded up)",
    "fixed cost USD 0.6 M per existing line-year, 1.0 M per added line-year",
    "one transport mode: the network's courier lane",
    "continuous flows: a market's daily demand is a rate, not whole patients",
    "vein-to-vein cap 30 days",
    "materials USD 10,476 and QC 9,312 per therapy (i-SHIPMENT's figures)",
)


def _approval_days(network: Network, market: str, horizon_days: int) -> dict[str, int]:
    """First day of the horizon each site may serve the market's largest demand stream.

    The twin checks a patient's site against the approvals in force on the day the
    patient is booked; the model pools a market's streams, so it counts a site for
    the pool from the day it may serve the stream with the most patients (the
    commercial one, where there is one). Sites never approved within the horizon
    are left out.
    """
    streams: dict[tuple[str, str, str | None], float] = {}
    for c in network.centers_in(market):
        for dmd in c.demand:
            key = (dmd.product, dmd.scope.value, dmd.trial)
            streams[key] = streams.get(key, 0.0) + dmd.patients_per_year
    if not streams:
        return {}
    product, scope, trial = max(streams, key=lambda k: (streams[k], k[1] == "commercial"))
    found: dict[str, int] = {}
    for day in range(horizon_days):
        on = network.reference_date + timedelta(days=day)
        for s in network.eligible_sites(product, market, scope, on, trial):
            found.setdefault(s.id, day)
    return found


def kymriah_data(
    growth: float = 2.0, horizon_days: int = 90, network: str = "kymriah-2020"
) -> dict[str, Any]:
    """The design file content (a plain mapping) for demand × ``growth``."""
    net = open_network(network)
    markets: list[dict[str, Any]] = []
    lanes: list[dict[str, Any]] = []
    approved: dict[str, list[str]] = {s.id: [] for s in net.sites}
    approved_from: dict[str, dict[str, int]] = {s.id: {} for s in net.sites}
    for m in net.markets:
        centers = [c for c in net.centers_in(m.id) if c.demand]
        demand = np.array([sum(d.patients_per_year for d in c.demand) for c in centers])
        if not centers or demand.sum() <= 0:
            continue
        w = demand / demand.sum()
        lat = float(np.dot(w, [c.lat for c in centers]))
        lon = float(np.dot(w, [c.lon for c in centers]))
        node = f"market-{m.id.lower()}"
        markets.append(
            {
                "id": node,
                "name": f"{m.name} (all centers)",
                "market": m.id,
                "lat": round(lat, 4),
                "lon": round(lon, 4),
                "patients_per_year": round(float(demand.sum()) * growth, 3),
                "source": f"{network}: demand of {len(centers)} centers",
                "assumption": f"{ASSUMPTIONS[0]}; demand × {growth:g}",
            }
        )
        for sid, day in _approval_days(net, m.id, horizon_days).items():
            approved[sid].append(m.id)
            if day > 0:
                approved_from[sid][m.id] = day
            out_days = [net.lane(c.id, sid).mean_days for c in centers]
            back_days = [net.lane(sid, c.id).mean_days for c in centers]
            cost = [net.lane(c.id, sid).cost for c in centers]
            lanes.append(
                {
                    "center": node,
                    "site": sid,
                    "mode": "courier",
                    "transit_days": math.ceil(
                        float(np.dot(w, np.maximum(out_days, back_days))) - 1e-9
                    ),
                    "cost_per_shipment": round(float(np.dot(w, cost)), 2),
                    "assumption": ASSUMPTIONS[0],
                }
            )
    candidates = []
    for s in net.sites:
        options = sorted({s.lines + math.ceil(s.lines * e - 1e-9) for e in EXPANSIONS})
        candidates.append(
            {
                "id": s.id,
                "name": s.name,
                "city": s.city,
                "country": s.country,
                "lat": s.lat,
                "lon": s.lon,
                "must_open": True,
                "markets": approved[s.id],
                "approved_from": approved_from[s.id],
                "network_site": s.id,
                "manufacturing_days": math.ceil(s.manufacturing.mean - 1e-9),
                "qc_days": math.ceil(s.qc.mean - 1e-9),
                "sizes": [
                    {
                        "lines": n,
                        "label": "current" if n == s.lines else f"+{n - s.lines} lines",
                        "fixed_cost_per_year": COST_EXISTING_LINE_YEAR * s.lines
                        + COST_ADDED_LINE_YEAR * (n - s.lines),
                    }
                    for n in options
                ],
                "assumption": f"{ASSUMPTIONS[1]}; {ASSUMPTIONS[2]}",
            }
        )
    oos = max((p.oos_probability for p in net.products), default=0.0)
    return {
        "name": f"{net.name}-x{growth:g}".replace(".", "_"),
        "description": f"{net.name} with demand × {growth:g}: which sites to expand",
        "assumption": "; ".join(ASSUMPTIONS),
        "currency": net.currency,
        "horizon_days": horizon_days,
        "v2v_cap_days": V2V_CAP_DAYS,
        "durations": {"apheresis_days": 1},
        "costs": {
            "materials_per_therapy": 10_476,
            "qc_per_therapy": 9_312,
            "assumption": ASSUMPTIONS[6],
        },
        "modes": [{"id": "courier", "transit_days": 2, "assumption": ASSUMPTIONS[3]}],
        "lanes": lanes,
        "candidates": candidates,
        "centers": markets,
        "batches_per_patient": round(1 / (1 - oos), 6),
        "integer_flows": False,
        "twin": {"network": network, "demand_scale": growth},
        "source": f"cartnet packaged network {network}",
    }


def kymriah_instance(growth: float = 2.0, horizon_days: int = 90) -> DesignInput:
    """The kymriah-2020 expansion design for demand × ``growth`` (see the module docstring)."""
    return DesignInput.model_validate(kymriah_data(growth, horizon_days))


__all__ = ["Scope", "kymriah_data", "kymriah_instance"]
