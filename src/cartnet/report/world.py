"""The world's countries for offline maps.

Natural Earth 1:110m country outlines (public domain) ship in
``cartnet/data/world_countries.json``, so maps need no tile server or CDN.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def country_rings() -> list[list[tuple[float, float]]]:
    """Exterior rings of every country as (lon, lat) points."""
    raw = json.loads(
        resources.files("cartnet.data").joinpath("world_countries.json").read_text("utf-8")
    )
    return [[(p[0], p[1]) for p in ring] for c in raw["countries"] for ring in c["rings"]]


ATTRIBUTION = "Country outlines: Natural Earth (public domain)"
