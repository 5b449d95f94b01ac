"""A network summarised on a date: what ``cartnet network show`` prints and its JSON.

The JSON shape is stable and documented in ``docs/reference/network-json.md``;
bump ``SCHEMA`` on any incompatible change.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from cartnet.network.entities import Scope
from cartnet.network.geo import continent
from cartnet.network.model import Network

SCHEMA = "cartnet.network-show/1"


def summarize(network: Network, on: date | None = None) -> dict[str, Any]:
    """Sites, approvals in force, centers and demand per market, and who may serve whom."""
    on = on or network.reference_date
    sites = [
        {
            "id": s.id,
            "name": s.name,
            "operator": s.operator.name,
            "operator_kind": s.operator.kind.value,
            "city": s.city,
            "country": s.country,
            "continent": continent(s.country),
            "lat": s.lat,
            "lon": s.lon,
            "lines": s.lines,
            "manufacturing_mean_days": round(s.manufacturing.mean, 2),
            "qc_mean_days": round(s.qc.mean, 2),
            "approvals_in_force": [
                {
                    "product": a.product,
                    "regulator": a.regulator.value,
                    "scope": a.scope.value,
                    "trial": a.trial,
                    "effective": a.effective.isoformat(),
                    "end": a.end.isoformat() if a.end else None,
                }
                for a in s.approvals
                if a.in_force(on)
            ],
        }
        for s in network.sites
    ]
    markets = []
    service = []
    for m in network.markets:
        centers = network.centers_in(m.id)
        demand: dict[str, float] = defaultdict(float)
        needs: dict[tuple[str, str, str | None], float] = defaultdict(float)
        for p in network.products:
            needs[(p.id, Scope.COMMERCIAL.value, None)] += 0.0
        for c in centers:
            for d in c.demand:
                demand[d.scope.value] += d.patients_per_year
                needs[(d.product, d.scope.value, d.trial)] += d.patients_per_year
        markets.append(
            {
                "id": m.id,
                "name": m.name,
                "regulator": m.regulator.value,
                "centers": len(centers),
                "demand_per_year": {k: round(v, 1) for k, v in sorted(demand.items())},
            }
        )
        for (product, scope, trial), patients in sorted(
            needs.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")
        ):
            eligible = network.eligible_sites(product, m.id, scope, on, trial)
            service.append(
                {
                    "market": m.id,
                    "product": product,
                    "scope": scope,
                    "trial": trial,
                    "patients_per_year": round(patients, 1),
                    "sites": [s.id for s in eligible],
                }
            )
    centers_out = [
        {
            "id": c.id,
            "name": c.name,
            "market": c.market,
            "city": c.city,
            "country": c.country,
            "lat": c.lat,
            "lon": c.lon,
            "apheresis_per_day": c.apheresis_per_day,
            "demand_per_year": round(sum(d.patients_per_year for d in c.demand), 1),
        }
        for c in network.treatment_centers
    ]
    return {
        "schema": SCHEMA,
        "network": network.name,
        "scenario": network.applied_scenario,
        "on": on.isoformat(),
        "continents": network.continents(),
        "totals": {
            "sites": len(network.sites),
            "lines": sum(s.lines for s in network.sites),
            "treatment_centers": len(network.treatment_centers),
            "demand_per_year": round(network.annual_demand(), 1),
        },
        "sites": sites,
        "markets": markets,
        "service": service,
        "treatment_centers": centers_out,
    }
