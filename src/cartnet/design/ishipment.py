"""Reference instances of the i-SHIPMENT class (Triantafyllou et al., Sci Rep 2022).

From the paper (summarised in docs/background/domain.md §6):

* 4 leukapheresis (collection) sites and 6 candidate manufacturing sites;
* facility sizes of 4, 10 and 31 lines;
* leukapheresis 1 day, transport 1 day (air) or 2 days (ground), manufacturing
  7 days, QC 7 days; capacity = manufacturing starts in any rolling 7-day window
  ≤ lines; vein-to-vein ≤ 18 days;
* materials USD 10,476 and QC USD 9,312 per therapy;
* demand of 200, 500, 1,000, 2,000 and 3,000 patients a year, arriving over 90 days.

Assumptions (not from the paper; every generated instance carries them in its
``assumption`` notes and the solver result lists them):

* places: the collection centers are London, Manchester, Birmingham and Glasgow,
  the candidates Stevenage, Cambridge, Oxford, Leeds, Cardiff and Edinburgh;
  each collection site is also where the product returns;
* demand is split evenly over the four centers and spread evenly over the 90 days
  (patient ``i`` of ``N`` arrives on day ``⌊90·i/N⌋`` at center ``i mod 4``);
* fixed facility costs: USD 3.0 M a year for 4 lines, 6.5 M for 10, 16 M for 31
  (economies of scale), charged for the 90-day horizon; no variable cost beyond
  materials and QC;
* transport per shipment: air USD 1,500 + 0.5/km, ground USD 300 + 1.2/km, each
  way.
"""

from __future__ import annotations

from typing import Any

from cartnet.design.model import DesignInput

DEMAND_LEVELS = (200, 500, 1_000, 2_000, 3_000)
"""Patients per year of the paper's instances."""

PAPER = (
    "Triantafyllou, Bernardi, Lakelin, Shah, Papathanasiou, Sci Rep 2022 (i-SHIPMENT): "
    "4 collection sites, 6 candidates of 4/10/31 lines, 1 d apheresis, 1 d air / 2 d ground, "
    "7 d manufacturing, 7 d QC, 18-day cap, materials 10,476 and QC 9,312 USD per therapy, "
    "arrivals over 90 days"
)

CENTERS = (
    ("london", "London", 51.5074, -0.1278),
    ("manchester", "Manchester", 53.4808, -2.2426),
    ("birmingham", "Birmingham", 52.4862, -1.8904),
    ("glasgow", "Glasgow", 55.8642, -4.2518),
)
CANDIDATES = (
    ("stevenage", "Stevenage", 51.9038, -0.1966),
    ("cambridge", "Cambridge", 52.2053, 0.1218),
    ("oxford", "Oxford", 51.7520, -1.2577),
    ("leeds", "Leeds", 53.8008, -1.5491),
    ("cardiff", "Cardiff", 51.4816, -3.1791),
    ("edinburgh", "Edinburgh", 55.9533, -3.1883),
)
SIZES = ((4, "small", 3.0e6), (10, "medium", 6.5e6), (31, "large", 16.0e6))
"""(lines from the paper, label, fixed cost per year: assumption)."""

ASSUMPTIONS = (
    "places: collection centers London, Manchester, Birmingham, Glasgow; candidates "
    "Stevenage, Cambridge, Oxford, Leeds, Cardiff, Edinburgh (the product returns to the "
    "collection center)",
    "demand split evenly over the 4 centers and spread evenly over the 90 days",
    "fixed cost per year: 4 lines USD 3.0 M, 10 lines 6.5 M, 31 lines 16 M",
    "transport per shipment each way: air USD 1,500 + 0.5/km, ground USD 300 + 1.2/km",
)


def arrivals(patients_per_year: float, horizon_days: int = 90, centers: int = 4) -> list[list[int]]:
    """Whole patients per center and day: even in time, round-robin over centers.

    >>> [sum(a) for a in arrivals(200)]
    [13, 12, 12, 12]
    """
    n = round(patients_per_year * horizon_days / 365)
    out = [[0] * horizon_days for _ in range(centers)]
    for i in range(n):
        out[i % centers][horizon_days * i // n] += 1
    return out


def ishipment_data(patients_per_year: float, horizon_days: int = 90) -> dict[str, Any]:
    """The design file content (a plain mapping) of one i-SHIPMENT-class instance."""
    per_center = arrivals(patients_per_year, horizon_days)
    return {
        "name": f"ishipment-{round(patients_per_year)}",
        "description": f"i-SHIPMENT-class instance, {patients_per_year:g} patients a year",
        "source": PAPER,
        "assumption": "; ".join(ASSUMPTIONS),
        "horizon_days": horizon_days,
        "v2v_cap_days": 18,
        "durations": {"apheresis_days": 1, "manufacturing_days": 7, "qc_days": 7},
        "costs": {"materials_per_therapy": 10_476, "qc_per_therapy": 9_312, "source": PAPER},
        "modes": [
            {
                "id": "air",
                "transit_days": 1,
                "cost_per_shipment": 1_500,
                "cost_per_km": 0.5,
                "assumption": ASSUMPTIONS[3],
            },
            {
                "id": "ground",
                "transit_days": 2,
                "cost_per_shipment": 300,
                "cost_per_km": 1.2,
                "assumption": ASSUMPTIONS[3],
            },
        ],
        "candidates": [
            {
                "id": cid,
                "name": name,
                "country": "GB",
                "lat": lat,
                "lon": lon,
                "sizes": [
                    {"lines": lines, "label": label, "fixed_cost_per_year": cost}
                    for lines, label, cost in SIZES
                ],
                "assumption": ASSUMPTIONS[0] + "; " + ASSUMPTIONS[2],
            }
            for cid, name, lat, lon in CANDIDATES
        ],
        "centers": [
            {
                "id": cid,
                "name": name,
                "country": "GB",
                "lat": lat,
                "lon": lon,
                "market": "UK",
                "arrivals": per_center[i],
                "assumption": ASSUMPTIONS[1],
            }
            for i, (cid, name, lat, lon) in enumerate(CENTERS)
        ],
    }


def ishipment_instance(patients_per_year: float, horizon_days: int = 90) -> DesignInput:
    """One i-SHIPMENT-class instance (see the module docstring for paper vs assumption)."""
    return DesignInput.model_validate(ishipment_data(patients_per_year, horizon_days))
