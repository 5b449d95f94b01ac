"""Small networks built in code for the twin's validation tests."""

from __future__ import annotations

from typing import Any

from cartnet.network import Network


def single_site_queue(lines: int, rho: float, mean_service: float = 1.0) -> Network:
    """One site with ``lines`` lines, exponential manufacturing, and nothing else in the way.

    No transit, no QC, no failures, every day open: the pipeline reduces to M/M/c
    with arrival rate ``rho × lines / mean_service`` per day.
    """
    per_day = rho * lines / mean_service
    site: dict[str, Any] = {
        "id": "plant",
        "name": "Plant",
        "operator": {"name": "Op", "kind": "owned"},
        "city": "Basel",
        "country": "CH",
        "lat": 47.56,
        "lon": 7.59,
        "lines": lines,
        "manufacturing": {"dist": "exponential", "mean": mean_service},
        "qc": {"dist": "fixed", "days": 0},
        "approvals": [
            {"product": "p", "regulator": "Swissmedic", "scope": "commercial",
             "effective": "2000-01-01"}
        ],
    }  # fmt: skip
    return Network.model_validate(
        {
            "name": "mmc",
            "reference_date": "2021-01-01",
            "products": [{"id": "p", "name": "P", "oos_probability": 0}],
            "markets": [{"id": "CH", "name": "CH", "regulator": "Swissmedic", "countries": ["CH"]}],
            "sites": [site],
            "treatment_centers": [
                {
                    "id": "clinic",
                    "name": "Clinic",
                    "market": "CH",
                    "city": "Basel",
                    "country": "CH",
                    "lat": 47.56,
                    "lon": 7.59,
                    "products": ["p"],
                    "apheresis_per_day": 1_000_000,
                    "demand": [{"product": "p", "patients_per_year": per_day * 365}],
                }
            ],
            "lanes": [
                {
                    "origin": "clinic",
                    "destination": "plant",
                    "transit": {"dist": "fixed", "days": 0},
                }
            ],
        }
    )
