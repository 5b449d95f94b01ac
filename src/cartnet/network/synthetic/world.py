"""The synthetic world: its markets, anchor cities, operators and holidays.

Fixed facts every generated network shares, kept apart from the draws so that the
generator's parts read only what varies. The anchor cities live in ``cities.csv``
(one row per city: country, city, lat, lon, jitter radius in degrees).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from importlib import resources

from cartnet.network.entities import Regulator
from cartnet.network.geo import EU_CUSTOMS_UNION

REFERENCE_DATE = date(2025, 1, 6)
"""The reference date of every generated network (a Monday)."""

Anchor = tuple[str, float, float, float]
"""(city, lat, lon, jitter radius in degrees)."""

CITIES_FILE = "cities.csv"
"""The anchor-city table, a data file of this package."""


def parse_anchors(text: str) -> dict[str, tuple[Anchor, ...]]:
    """The anchor cities of a ``cities.csv`` text per country, in file order.

    A radius of 0.10° suits an inland city; coastal or border cities get a few
    hundredths so that jittered places stay on land and in the country.

    >>> parse_anchors("country,city,lat,lon,radius\\nCH,Bern,46.948,7.4474,0.03\\n")
    {'CH': (('Bern', 46.948, 7.4474, 0.03),)}
    """
    anchors: dict[str, list[Anchor]] = {}
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            country, city = row["country"], row["city"]
            anchor = (city, float(row["lat"]), float(row["lon"]), float(row["radius"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{CITIES_FILE}, line {line}: bad anchor city {row!r}") from exc
        if not country or not city:
            raise ValueError(f"{CITIES_FILE}, line {line}: a city needs a country and a name")
        anchors.setdefault(country, []).append(anchor)
    return {country: tuple(rows) for country, rows in anchors.items()}


ANCHORS: dict[str, tuple[Anchor, ...]] = parse_anchors(
    resources.files("cartnet.network.synthetic").joinpath(CITIES_FILE).read_text("utf-8")
)
"""Anchor cities per country: where sites and centers may be placed."""

EU_MEMBERS: tuple[str, ...] = tuple(sorted(EU_CUSTOMS_UNION - {"MC"}))
"""The 27 EU member states: the EU customs union without Monaco."""

EU_POPULATION = {  # millions, 2023 (Eurostat), rounded: weights for placing things in the EU
    "DE": 84.4, "FR": 68.2, "IT": 59.0, "ES": 48.1, "PL": 36.8, "RO": 19.0, "NL": 17.8,
    "BE": 11.8, "CZ": 10.8, "SE": 10.5, "PT": 10.5, "GR": 10.4, "HU": 9.6, "AT": 9.1,
    "BG": 6.4, "DK": 5.9, "FI": 5.6, "SK": 5.4, "IE": 5.3, "HR": 3.9, "LT": 2.9, "SI": 2.1,
    "LV": 1.9, "EE": 1.4, "CY": 0.9, "LU": 0.7, "MT": 0.5,
}  # fmt: skip


@dataclass(frozen=True)
class MarketSpec:
    """One market of the synthetic world and how much of the network it gets."""

    id: str
    name: str
    regulator: Regulator
    countries: tuple[str, ...]
    demand_weight: float
    """Share of all patients (kymriah-2020 shares, rounded)."""
    site_weight: float
    """Share of the manufacturing sites located in the market."""
    foreign_approval: float
    """Chance that this regulator approves a site located in another market."""


MARKETS: tuple[MarketSpec, ...] = (
    MarketSpec("US", "United States", Regulator.FDA, ("US",), 0.42, 0.38, 0.30),
    MarketSpec("EU", "European Union", Regulator.EMA, EU_MEMBERS, 0.34, 0.34, 0.35),
    MarketSpec("UK", "United Kingdom", Regulator.MHRA, ("GB",), 0.05, 0.05, 0.30),
    MarketSpec("CH", "Switzerland", Regulator.SWISSMEDIC, ("CH",), 0.02, 0.04, 0.25),
    MarketSpec("JP", "Japan", Regulator.PMDA, ("JP",), 0.06, 0.06, 0.10),
    MarketSpec("CN", "China", Regulator.NMPA, ("CN",), 0.03, 0.05, 0.05),
    MarketSpec("AU", "Australia", Regulator.TGA, ("AU",), 0.04, 0.04, 0.15),
    MarketSpec("CA", "Canada", Regulator.HEALTH_CANADA, ("CA",), 0.04, 0.04, 0.25),
)

SPONSOR = "Synthera Bio"
"""The (fictitious) company that owns the products and the owned sites."""

CONTRACT_OPERATORS = (
    "Cellforge CDMO",
    "Helixmoor Cell Services",
    "Northvale Biologics",
    "Quaycell Contract Manufacturing",
    "Meridane Advanced Therapies",
    "Brightwater Cell Works",
    "Ostrava Vector Labs",
    "Kestrel Biomanufacturing",
)
"""Fictitious contract manufacturers (CDMOs)."""

CENTER_KINDS = (
    "University Hospital",
    "Cancer Center",
    "Medical Center",
    "Children's Hospital",
    "Cancer Institute",
    "General Hospital",
)

HOLIDAYS_2025: dict[str, tuple[str, ...]] = {
    "US": ("2025-05-26", "2025-07-04", "2025-09-01", "2025-11-27", "2025-12-25", "2026-01-01"),
    "EU": ("2025-04-18", "2025-04-21", "2025-12-25", "2025-12-26", "2026-01-01"),
    "UK": ("2025-04-18", "2025-04-21", "2025-12-25", "2025-12-26", "2026-01-01"),
    "CH": ("2025-04-18", "2025-04-21", "2025-08-01", "2025-12-25", "2025-12-26", "2026-01-01"),
    "JP": ("2025-04-29", "2025-05-05", "2025-05-06", "2025-12-31", "2026-01-01", "2026-01-02"),
    "CN": ("2025-05-01", "2025-10-01", "2025-10-02", "2025-10-03", "2026-01-01"),
    "AU": ("2025-01-27", "2025-04-18", "2025-04-25", "2025-12-25", "2025-12-26", "2026-01-01"),
    "CA": ("2025-04-18", "2025-07-01", "2025-09-01", "2025-12-25", "2025-12-26", "2026-01-01"),
}
"""A few public holidays of 2025 per market, kept by sites that close on holidays."""
