"""The control tower's world map, drawn on the server as SVG from the packaged outlines.

No tiles, no JavaScript: the country outlines (Natural Earth, :mod:`cartnet.report.world`)
are one SVG file served once and cached (:func:`world_svg`); the page's own ``<svg>``
puts it underneath and draws on top, in the same equirectangular projection, each site
as a circle sized by its lines and classed by its load for the coming weeks, and each
open order as a dot: at its center before it leaves, on its lane while a courier carries
it (as far along as the lane's mean transit time says), at its site while there. Colours
come from CSS classes (``load-0`` ... ``load-4``, ``o-*``), so the page needs no inline
style.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from cartnet.ledger.lifecycle import OrderState
from cartnet.network.model import Network
from cartnet.report.world import ATTRIBUTION, country_rings
from cartnet.service.tower_load import NetworkLoad
from cartnet.service.tower_risks import OpenOrder, expected_arrival

WIDTH = 960
NORTH, SOUTH = 85.0, -60.0
SCALE = WIDTH / 360
HEIGHT = round((NORTH - SOUTH) * SCALE)

AT_CENTER = frozenset(
    {
        OrderState.ENROLLED,
        OrderState.BOOKED,
        OrderState.APHERESIS_COLLECTED,
        OrderState.DELIVERED,
    }
)
GROUPS: dict[OrderState, str] = {
    OrderState.ENROLLED: "waiting",
    OrderState.BOOKED: "waiting",
    OrderState.APHERESIS_COLLECTED: "collected",
    OrderState.SHIPPED_TO_SITE: "transit",
    OrderState.RECEIVED_AT_SITE: "making",
    OrderState.IN_MANUFACTURING: "making",
    OrderState.IN_QC: "making",
    OrderState.OUT_OF_SPECIFICATION: "oos",
    OrderState.RELEASED: "released",
    OrderState.SHIPPED_TO_CENTER: "transit",
    OrderState.DELIVERED: "delivered",
}
"""The dot's class (``o-<group>``) by state; the legend names the groups."""
LEGEND = (
    ("waiting", "enrolled or booked, at the center"),
    ("collected", "apheresis collected, at the center"),
    ("transit", "with a courier, on its lane"),
    ("making", "at the site: received, manufacturing, QC"),
    ("oos", "out of specification, at the site"),
    ("released", "released, at the site"),
    ("delivered", "delivered, at the center"),
)


def project(lon: float, lat: float) -> tuple[float, float]:
    """Equirectangular: longitude and latitude to pixels of the ``WIDTH`` × ``HEIGHT`` map."""
    lat = min(max(lat, SOUTH), NORTH)
    return round((lon + 180) * SCALE, 1), round((NORTH - lat) * SCALE, 1)


@cache
def world_svg() -> str:
    """The countries as one SVG document in the map's projection (about 80 kB, cached)."""
    paths = []
    for ring in country_rings():
        points: list[tuple[int, int]] = []
        for lon, lat in ring:
            x, y = project(lon, lat)
            point = (round(x), round(y))
            if not points or points[-1] != point:
                points.append(point)
        if len(points) >= 3:
            paths.append("M" + " ".join(f"{x} {y}" for x, y in points) + "Z")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#f4f8fb"/>'
        f'<path d="{"".join(paths)}" fill="#e8e6df" stroke="#b9b5a8" stroke-width="0.5"/>'
        "</svg>"
    )


@dataclass(frozen=True, slots=True)
class SiteMark:
    x: float
    y: float
    r: float
    level: int | None
    name: str
    title: str


@dataclass(frozen=True, slots=True)
class OrderDot:
    x: float
    y: float
    group: str
    at_risk: bool
    order_id: str
    title: str


@dataclass(frozen=True, slots=True)
class Lane:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True, slots=True)
class NetworkMap:
    width: int
    height: int
    sites: list[SiteMark]
    centers: list[tuple[float, float, str]]
    lanes: list[Lane]
    orders: list[OrderDot]
    title: str
    attribution: str = ATTRIBUTION


def _spread(x: float, y: float, n: int) -> tuple[float, float]:
    """The n-th dot around a place, on a sunflower spiral so that dots do not overlap."""
    if n == 0:
        return x, y
    angle = n * 2.39996
    radius = 3.2 * math.sqrt(n)
    return round(x + radius * math.cos(angle), 1), round(y + radius * math.sin(angle), 1)


def network_map(
    network: Network,
    orders: list[OpenOrder],
    load: NetworkLoad,
    risky: set[str],
    now: datetime,
) -> NetworkMap:
    """The sites with their load, the centers, and every open order where it is now."""
    sites = []
    for site in network.sites:
        x, y = project(site.lon, site.lat)
        row = load.site(site.id)
        total = None if row is None else row.total
        level = None if total is None else total.level
        booked = (
            "no capacity"
            if total is None or not total.capacity
            else (
                f"{total.booked} of {total.capacity} manufacturing starts booked "
                f"({100 * total.booked / total.capacity:.0f} %) in the next {len(load.weeks)} weeks"
            )
        )
        sites.append(
            SiteMark(x, y, round(4 + math.sqrt(site.lines) * 1.6, 1), level, site.name,
                     f"{site.name}, {site.lines} lines: {booked}")
        )  # fmt: skip
    centers = [(*project(c.lon, c.lat), c.name) for c in network.treatment_centers]
    placed: dict[tuple[float, float], int] = {}
    dots: list[OrderDot] = []
    lanes: dict[tuple[float, float, float, float], Lane] = {}
    for o in orders:
        cx, cy = project(*_lon_lat(network, o.center))
        sx, sy = (cx, cy) if o.site is None else project(*_lon_lat(network, o.site))
        if o.state in AT_CENTER or o.site is None:
            x, y = cx, cy
        elif o.state in (OrderState.SHIPPED_TO_SITE, OrderState.SHIPPED_TO_CENTER):
            (x1, y1), (x2, y2) = (
                ((cx, cy), (sx, sy))
                if o.state is OrderState.SHIPPED_TO_SITE
                else ((sx, sy), (cx, cy))
            )
            lanes[(x1, y1, x2, y2)] = Lane(x1, y1, x2, y2)
            arrival = expected_arrival(network, o)
            share = 0.5
            if arrival is not None and arrival > o.since:
                share = (now - o.since) / (arrival - o.since)
            share = min(max(share, 0.1), 0.9)
            x, y = round(x1 + (x2 - x1) * share, 1), round(y1 + (y2 - y1) * share, 1)
        else:
            x, y = sx, sy
        n = placed.get((x, y), 0)
        placed[(x, y)] = n + 1
        px, py = _spread(x, y, n)
        where = network.center(o.center).name
        if o.site is not None:
            where += f" → {network.site(o.site).name}"
        dots.append(
            OrderDot(px, py, GROUPS.get(o.state, "waiting"), o.id in risky, o.id,
                     f"{o.id}: {o.state.value.replace('_', ' ')}, {where}"
                     + (" (at risk)" if o.id in risky else ""))
        )  # fmt: skip
    return NetworkMap(
        width=WIDTH,
        height=HEIGHT,
        sites=sites,
        centers=centers,
        lanes=list(lanes.values()),
        orders=dots,
        title=(
            f"{network.name}: {len(network.sites)} sites by load over the next "
            f"{len(load.weeks)} weeks, {len(orders)} open orders where they are now"
        ),
    )


def _lon_lat(network: Network, place: str) -> tuple[float, float]:
    _, lat, lon = network.place(place)
    return lon, lat
