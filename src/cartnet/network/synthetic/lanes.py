"""Listed lanes: same-city couriers, and long-haul lanes from Asia-Pacific with customs days.

Every other lane follows the network's lane defaults; these few exercise listed lanes.
"""

from __future__ import annotations

from typing import Any

from cartnet.network.synthetic.draws import Draws


def draw_lanes(
    draws: Draws, n_sites: int, sites: list[dict[str, Any]], centers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A few same-city courier lanes and a few long-haul lanes with two customs days."""
    lanes: list[dict[str, Any]] = []
    n = max(1, n_sites // 20)
    by_city: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in centers:
        by_city.setdefault((c["country"], c["city"]), []).append(c)
    local = [s for s in sites if (s["country"], s["city"]) in by_city]
    for j in sorted(int(x) for x in draws.rng.permutation(len(local))[:n]):
        s = local[j]
        near = by_city[(s["country"], s["city"])]
        c = near[draws.pick(len(near))]
        lanes.append(
            {
                "origin": c["id"],
                "destination": s["id"],
                "transit": {"dist": "triangular", "low": 0.1, "mode": 0.3, "high": 0.6},
                "customs_days": 0.0,
                "cost": 400.0,
                "assumption": draws.note,
            }
        )
    far_centers = [c for c in centers if c["market"] in ("JP", "CN", "AU")]
    west_sites = [s for s in sites if s["_market"] in ("US", "EU")]
    if far_centers and west_sites:
        for _ in range(n):
            c = far_centers[draws.pick(len(far_centers))]
            s = west_sites[draws.pick(len(west_sites))]
            if any(x["origin"] == c["id"] and x["destination"] == s["id"] for x in lanes):
                continue
            lanes.append(
                {
                    "origin": c["id"],
                    "destination": s["id"],
                    "transit": {"dist": "triangular", "low": 2.0, "mode": 2.5, "high": 4.0},
                    "customs_days": 2.0,
                    "cost": 8000.0,
                    "assumption": draws.note,
                }
            )
    return lanes
