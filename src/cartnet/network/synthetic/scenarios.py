"""The two what-if scenarios of every synthetic network: more lines, and demand growth."""

from __future__ import annotations

from typing import Any

from cartnet.network.synthetic.draws import Draws


def draw_scenarios(draws: Draws, n_sites: int, sites: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``add-capacity`` at a tenth of the sites, and ``grow-30``."""
    k = max(1, round(n_sites / 10))
    chosen = sorted(int(i) for i in draws.rng.choice(len(sites), size=k, replace=False))
    return [
        {
            "id": "add-capacity",
            "description": f"{k} site(s) add half their lines again (at least 2).",
            "assumption": draws.note,
            "changes": [
                {
                    "op": "set_lines",
                    "site": sites[i]["id"],
                    "lines": sites[i]["lines"] + max(2, sites[i]["lines"] // 2),
                }
                for i in chosen
            ],
        },
        {
            "id": "grow-30",
            "description": "Commercial demand grows 30 % a year in every market.",
            "assumption": draws.note,
            "changes": [{"op": "grow_demand", "scope": "commercial", "per_year": 0.3}],
        },
    ]
