"""Built-in instances in the structure of i-SHIPMENT (Triantafyllou et al., Sci Rep 2022).

They follow the authors' model and published data files
(https://github.com/nikitrian/i-SHIPMENT; ``cartnet design import-ishipment``
reads those files as they are):

* 4 leukapheresis sites, each with its co-located hospital (our centers);
* 6 candidate manufacturing sites, one size each: 4, 31, 10, 4, 31 and 10 lines
  (m1..m6 of the data files); the 3,000-a-year file adds a 7th of 62 lines;
* cost per day of an open site, capital plus running (CIM + CVM of the files):
  USD 23,136.13 for 4 lines, 57,840.33 for 10, 173,521.00 for 31, 357,502.00
  for 62, charged over the whole horizon;
* a 130-day horizon with arrivals on days 1..90, at most two open sites;
* leukapheresis 1 day, transport 1 day (j1) or 2 days (j2) each way,
  manufacturing 7 days, QC 7 days; capacity = manufacturing starts in any
  rolling 7-day window ≤ lines; vein-to-vein ≤ 18 days;
* materials USD 10,476 and QC USD 9,312 per therapy.

Where they deviate (each generated instance carries this in its ``assumption``
notes, and the solver result lists them):

* places: the files have no geography; ours are London, Manchester, Birmingham
  and Glasgow (centers) and Stevenage, Cambridge, Oxford, Leeds, Cardiff,
  Edinburgh (and Liverpool, the 7th) for the candidates;
* transport prices: the files price each lane and mode from a table, out and back
  differently; ours are a distance formula, the same both ways: air (j1) USD 1,500
  + 0.5/km, ground (j2) USD 300 + 1.2/km per shipment;
* demand: ``round(N × 90 / 365)`` patients (the files have 50, 125, 248, 495, 742),
  each at a uniformly random center and day 1..90 drawn with seed ``N``: random
  by day as in the files, but not the authors' draws.

For the authors' own instances, import their files; these built-ins are for
experiments at any demand level.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cartnet.design.model import DesignInput

DEMAND_LEVELS = (200, 500, 1_000, 2_000, 3_000)
"""Patients per year of the authors' instances."""

HORIZON_DAYS = 130
ARRIVAL_DAYS = 90
MAX_SITES = 2

PAPER = (
    "Triantafyllou, Bernardi, Lakelin, Shah, Papathanasiou, Sci Rep 12:17365 (2022), "
    "i-SHIPMENT, and its published data files (https://github.com/nikitrian/i-SHIPMENT): "
    "4 leukapheresis sites with co-located hospitals, 6 candidates of 4/31/10/4/31/10 lines, "
    "capital + running cost per day, 130-day horizon, at most 2 sites, 1 d apheresis, "
    "1 or 2 d transport, 7 d manufacturing, 7 d QC, 18-day cap, materials 10,476 and "
    "QC 9,312 USD per therapy, arrivals over 90 days"
)

CENTERS = (
    ("london", "London", 51.5074, -0.1278),
    ("manchester", "Manchester", 53.4808, -2.2426),
    ("birmingham", "Birmingham", 52.4862, -1.8904),
    ("glasgow", "Glasgow", 55.8642, -4.2518),
)
CANDIDATES = (
    ("stevenage", "Stevenage", 51.9038, -0.1966, 4),
    ("cambridge", "Cambridge", 52.2053, 0.1218, 31),
    ("oxford", "Oxford", 51.7520, -1.2577, 10),
    ("leeds", "Leeds", 53.8008, -1.5491, 4),
    ("cardiff", "Cardiff", 51.4816, -3.1791, 31),
    ("edinburgh", "Edinburgh", 55.9533, -3.1883, 10),
)
SEVENTH = ("liverpool", "Liverpool", 53.4084, -2.9916, 62)
"""The 7th candidate of the authors' 3,000-a-year file."""

COST_PER_DAY = {4: 23_136.13, 10: 57_840.33, 31: 173_521.00, 62: 357_502.00}
"""CIM + CVM of the data files by lines (CVM: the model's 5,230 per line-day)."""

ASSUMPTIONS = (
    "places (the data files have none): collection centers London, Manchester, "
    "Birmingham, Glasgow; candidates Stevenage, Cambridge, Oxford, Leeds, Cardiff, "
    "Edinburgh, and Liverpool as the 7th (the product returns to the collection center)",
    "demand: round(N x 90 / 365) patients, each at a uniformly random center and day "
    "0..89, seed N (random by day like the data files, not the authors' draws)",
    "transport per shipment, the same both ways (the data files price each lane out and "
    "back from a table): air USD 1,500 + 0.5/km, ground USD 300 + 1.2/km",
)


def arrivals(patients_per_year: float, centers: int = 4) -> list[list[int]]:
    """Whole patients per center and day of the horizon, drawn with the level as seed.

    >>> [sum(a) for a in arrivals(200)], sum(map(sum, arrivals(3000)))
    ([14, 10, 14, 11], 740)
    """
    n = round(patients_per_year * ARRIVAL_DAYS / 365)
    rng = np.random.default_rng(round(patients_per_year))
    out = np.zeros((centers, HORIZON_DAYS), dtype=np.int64)
    np.add.at(out, (rng.integers(0, centers, n), rng.integers(0, ARRIVAL_DAYS, n)), 1)
    return [[int(v) for v in row] for row in out]


def ishipment_data(patients_per_year: float) -> dict[str, Any]:
    """The design file content (a plain mapping) of one instance."""
    per_center = arrivals(patients_per_year)
    sites = CANDIDATES + ((SEVENTH,) if patients_per_year >= 3_000 else ())
    return {
        "name": f"ishipment-{round(patients_per_year)}",
        "description": f"i-SHIPMENT-structure instance, {patients_per_year:g} patients a year",
        "source": PAPER,
        "assumption": "; ".join(ASSUMPTIONS),
        "horizon_days": HORIZON_DAYS,
        "v2v_cap_days": 18,
        "durations": {"apheresis_days": 1, "manufacturing_days": 7, "qc_days": 7},
        "costs": {"materials_per_therapy": 10_476, "qc_per_therapy": 9_312, "source": PAPER},
        "limits": {"max_sites": MAX_SITES, "source": PAPER},
        "modes": [
            {
                "id": "air",
                "transit_days": 1,
                "cost_per_shipment": 1_500,
                "cost_per_km": 0.5,
                "assumption": ASSUMPTIONS[2],
            },
            {
                "id": "ground",
                "transit_days": 2,
                "cost_per_shipment": 300,
                "cost_per_km": 1.2,
                "assumption": ASSUMPTIONS[2],
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
                    {
                        "lines": lines,
                        "label": f"{lines} lines",
                        "fixed_cost_per_day": COST_PER_DAY[lines],
                        "source": PAPER,
                    }
                ],
                "assumption": ASSUMPTIONS[0],
            }
            for cid, name, lat, lon, lines in sites
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


def ishipment_instance(patients_per_year: float) -> DesignInput:
    """One instance (see the module docstring for what follows the paper and what does not)."""
    return DesignInput.model_validate(ishipment_data(patients_per_year))
