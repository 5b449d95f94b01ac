"""Large synthetic networks for scale tests and benchmarks.

``generate_network(100, 2000)`` builds a network of 100 manufacturing sites and
2,000 treatment centers in the eight regulatory markets of ``Regulator``, from a
seed, in a fraction of a second. The figures are realistic in kind rather than
real: they follow the packaged ``kymriah-2020`` network where it has a figure.

* Markets: US (FDA), EU (EMA, the 27 member states), CH (Swissmedic), UK (MHRA,
  GB), JP (PMDA), CN (NMPA), AU (TGA), CA (Health Canada).
* Places: sites and centers sit near anchor cities of their country (a built-in
  table), jittered by up to a tenth of a degree (a few hundredths for coastal or
  border cities). Most sites and most demand are in the US and the EU; EU countries
  are weighted by population.
* Sites: 2-30 lines (lognormal, median 6), owned by the sponsor or run by a contract
  operator; manufacturing lognormal with mean 7-9 d; QC release triangular around
  7/8/14 d; most close at weekends and on a few 2025 public holidays, some have a
  maintenance shutdown.
* Approvals: each site is approved commercially by its home regulator, and by a
  random subset of the others; most approvals took effect before the reference date,
  a few (``PENDING_SHARE``) take effect after it. Every market has at least two sites
  eligible for commercial supply of every product on the reference date, and no group
  of markets is short of capacity: more sites are approved until the demand could be
  served with no site above 90 % utilisation (see ``_Builder._balance``).
* Clinical trials (``SYN-101`` ...) of about 60 patients a year each run at 2-8
  centers in each of 1-3 markets, with clinical approvals at sites of at least six
  lines per trial market (home-market sites first), sometimes one more from a later
  date.
* Demand: ``patients_per_year`` in all (8 % of it clinical), or by default 75 % of
  the network's capacity, where a patient costs ``manufacturing mean / (1 −
  out-of-specification probability)`` line-days (about 8.6 for an 8-day process).
  Centers differ in size (lognormal); the largest collect apheresis on 2 or 3 chairs
  a day (more if their demand needs it).
* Products: ``product-01`` ... made from cryopreserved apheresis; every second product
  uses fresh material (72 or 96 h stability), made only at the half of the sites that
  take fresh material and approved only on the site's own continent.
* A few listed lanes (same-city couriers, long-haul lanes with two customs days) and
  two scenarios: ``add-capacity`` (more lines at a tenth of the sites) and
  ``grow-30`` (commercial demand grows 30 % a year).

The same arguments always give the same network (one ``numpy`` Generator seeded
with ``seed`` drives every draw). Every object carries the assumption
``synthetic (generated, seed N)``.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cartnet.network.entities import OperatorKind, Regulator, StartingMaterial
from cartnet.network.geo import CONTINENT_OF, EU_CUSTOMS_UNION
from cartnet.network.model import Network

REFERENCE_DATE = date(2025, 1, 6)
"""The reference date of every generated network (a Monday)."""

TARGET_UTILIZATION = 0.75
"""Default demand as a share of the network's manufacturing capacity."""

CLINICAL_SHARE = 0.08
"""Share of all patients who are clinical-trial patients (kymriah-2020: 132 of 1,660)."""

_R = 0.10  # jitter radius (degrees) around an inland anchor city
_C = 0.03  # ... around a coastal or border city

Anchor = tuple[str, float, float, float]
"""(city, lat, lon, jitter radius in degrees)."""

ANCHORS: dict[str, tuple[Anchor, ...]] = {
    "US": (
        ("New York", 40.7831, -73.9712, _C),
        ("Boston", 42.3400, -71.1000, _C),
        ("Philadelphia", 39.9526, -75.1652, _R),
        ("Baltimore", 39.3000, -76.6500, _C),
        ("Bethesda", 39.0000, -77.1000, _R),
        ("Durham", 35.9940, -78.8986, _R),
        ("Atlanta", 33.7490, -84.3880, _R),
        ("Miami", 25.7800, -80.2800, _C),
        ("Nashville", 36.1627, -86.7816, _R),
        ("Houston", 29.7604, -95.3698, _R),
        ("Dallas", 32.7767, -96.7970, _R),
        ("Chicago", 41.8500, -87.7000, _C),
        ("Cleveland", 41.4600, -81.6500, _C),
        ("Pittsburgh", 40.4406, -79.9959, _R),
        ("Columbus", 39.9612, -82.9988, _R),
        ("Indianapolis", 39.7684, -86.1581, _R),
        ("Ann Arbor", 42.2808, -83.7430, _R),
        ("Minneapolis", 44.9778, -93.2650, _R),
        ("Rochester, MN", 44.0121, -92.4802, _R),
        ("St. Louis", 38.6270, -90.2500, _R),
        ("Denver", 39.7392, -104.9903, _R),
        ("Salt Lake City", 40.7608, -111.8910, _R),
        ("Phoenix", 33.4484, -112.0740, _R),
        ("Los Angeles", 34.0522, -118.2437, _C),
        ("San Jose", 37.3382, -121.8863, _C),
        ("Sacramento", 38.5816, -121.4944, _R),
        ("Seattle", 47.6062, -122.3000, _C),
    ),
    # European Union
    "AT": (
        ("Vienna", 48.2082, 16.3738, _R),
        ("Graz", 47.0707, 15.4395, _R),
        ("Innsbruck", 47.2692, 11.4041, _C),
    ),
    "BE": (
        ("Brussels", 50.8503, 4.3517, _R),
        ("Leuven", 50.8798, 4.7005, _R),
        ("Ghent", 51.0543, 3.7174, _C),
        ("Liège", 50.6326, 5.5797, _C),
    ),
    "BG": (("Sofia", 42.6977, 23.3219, _R), ("Plovdiv", 42.1354, 24.7453, _R)),
    "HR": (("Zagreb", 45.8150, 15.9819, _C),),
    "CY": (("Nicosia", 35.1300, 33.3200, 0.02),),
    "CZ": (("Prague", 50.0755, 14.4378, _R), ("Brno", 49.1951, 16.6068, _R)),
    "DK": (("Copenhagen", 55.6900, 12.5300, _C), ("Aarhus", 56.1700, 10.1500, _C)),
    "EE": (("Tallinn", 59.4200, 24.7500, _C), ("Tartu", 58.3776, 26.7290, _C)),
    "FI": (("Helsinki", 60.2000, 24.9300, _C), ("Tampere", 61.4978, 23.7610, _R)),
    "FR": (
        ("Paris", 48.8566, 2.3522, _R),
        ("Lyon", 45.7640, 4.8357, _R),
        ("Marseille", 43.3100, 5.4200, _C),
        ("Lille", 50.6292, 3.0573, _C),
        ("Toulouse", 43.6047, 1.4442, _R),
        ("Bordeaux", 44.8378, -0.5792, _R),
        ("Nantes", 47.2184, -1.5536, _R),
        ("Strasbourg", 48.5734, 7.7000, _C),
        ("Rennes", 48.1173, -1.6778, _R),
    ),
    "DE": (
        ("Berlin", 52.5200, 13.4050, _R),
        ("Munich", 48.1351, 11.5820, _R),
        ("Hamburg", 53.5511, 9.9937, _R),
        ("Frankfurt", 50.1109, 8.6821, _R),
        ("Cologne", 50.9375, 6.9603, _R),
        ("Heidelberg", 49.3988, 8.6724, _R),
        ("Leipzig", 51.3397, 12.3731, _R),
        ("Dresden", 51.0504, 13.7373, _R),
        ("Würzburg", 49.7913, 9.9534, _R),
        ("Hannover", 52.3759, 9.7320, _R),
        ("Essen", 51.4556, 7.0116, _R),
        ("Freiburg", 47.9990, 7.8421, _C),
    ),
    "GR": (("Athens", 38.0000, 23.7500, _C), ("Thessaloniki", 40.6500, 22.9600, _C)),
    "HU": (("Budapest", 47.4979, 19.0402, _R), ("Debrecen", 47.5316, 21.6273, _R)),
    "IE": (("Dublin", 53.3400, -6.3000, _C), ("Cork", 51.8985, -8.5000, _C)),
    "IT": (
        ("Rome", 41.9028, 12.4964, _R),
        ("Milan", 45.4642, 9.1900, _R),
        ("Bologna", 44.4949, 11.3426, _R),
        ("Turin", 45.0703, 7.6869, _R),
        ("Florence", 43.7696, 11.2558, _R),
        ("Naples", 40.8700, 14.2800, _C),
        ("Padua", 45.4064, 11.8768, _R),
    ),
    "LV": (("Riga", 56.9400, 24.1500, _C),),
    "LT": (("Vilnius", 54.6872, 25.2797, _R), ("Kaunas", 54.8985, 23.9036, _R)),
    "LU": (("Luxembourg", 49.6116, 6.1319, _C),),
    "MT": (("Msida", 35.8950, 14.4850, 0.01),),
    "NL": (
        ("Amsterdam", 52.3676, 4.9041, _C),
        ("Utrecht", 52.0907, 5.1214, _R),
        ("Rotterdam", 51.9244, 4.4777, _C),
        ("Leiden", 52.1601, 4.4970, _C),
        ("Nijmegen", 51.8126, 5.8372, _C),
        ("Groningen", 53.2194, 6.5665, _C),
    ),
    "PL": (
        ("Warsaw", 52.2297, 21.0122, _R),
        ("Kraków", 50.0647, 19.9450, _R),
        ("Wrocław", 51.1079, 17.0385, _R),
        ("Poznań", 52.4064, 16.9252, _R),
        ("Gdańsk", 54.3500, 18.6000, _C),
    ),
    "PT": (
        ("Lisbon", 38.7500, -9.1500, _C),
        ("Porto", 41.1579, -8.6000, _C),
        ("Coimbra", 40.2033, -8.4103, _R),
    ),
    "RO": (("Bucharest", 44.4268, 26.1025, _R), ("Cluj-Napoca", 46.7712, 23.6236, _R)),
    "SK": (("Bratislava", 48.1600, 17.1500, _C), ("Košice", 48.7164, 21.2611, _C)),
    "SI": (("Ljubljana", 46.0569, 14.5058, _C),),
    "ES": (
        ("Madrid", 40.4168, -3.7038, _R),
        ("Barcelona", 41.4000, 2.1500, _C),
        ("Valencia", 39.4699, -0.4000, _C),
        ("Seville", 37.3891, -5.9845, _R),
        ("Salamanca", 40.9701, -5.6635, _R),
        ("Pamplona", 42.8125, -1.6458, _R),
    ),
    "SE": (
        ("Stockholm", 59.3400, 18.0200, _C),
        ("Gothenburg", 57.7200, 12.0000, _C),
        ("Uppsala", 59.8586, 17.6389, _R),
        ("Lund", 55.7047, 13.1910, _C),
    ),
    # Other markets
    "CH": (
        ("Zurich", 47.3769, 8.5417, _C),
        ("Bern", 46.9480, 7.4474, _C),
        ("Basel", 47.5400, 7.6100, 0.01),
        ("St. Gallen", 47.4245, 9.3767, _C),
        ("Lausanne", 46.5300, 6.6300, 0.01),
    ),
    "GB": (
        ("London", 51.5074, -0.1278, _R),
        ("Manchester", 53.4808, -2.2426, _R),
        ("Birmingham", 52.4862, -1.8904, _R),
        ("Leeds", 53.8008, -1.5491, _R),
        ("Oxford", 51.7520, -1.2577, _R),
        ("Cambridge", 52.2053, 0.1218, _R),
        ("Stevenage", 51.9038, -0.1966, _R),
        ("Newcastle", 54.9783, -1.6500, _C),
        ("Glasgow", 55.8642, -4.2518, _C),
    ),
    "JP": (
        ("Tokyo", 35.6900, 139.6500, _C),
        ("Osaka", 34.6937, 135.5200, _C),
        ("Kobe", 34.7000, 135.1800, _C),
        ("Nagoya", 35.1815, 136.9066, _C),
        ("Kyoto", 35.0116, 135.7681, _R),
        ("Fukuoka", 33.5800, 130.4200, _C),
        ("Sapporo", 43.0618, 141.3545, _C),
        ("Sendai", 38.2682, 140.8694, _C),
    ),
    "CN": (
        ("Shanghai", 31.2304, 121.4000, _C),
        ("Beijing", 39.9042, 116.4074, _R),
        ("Guangzhou", 23.1291, 113.2644, _R),
        ("Shenzhen", 22.6200, 114.0500, 0.01),
        ("Wuhan", 30.5928, 114.3055, _R),
        ("Chengdu", 30.5728, 104.0668, _R),
        ("Hangzhou", 30.2741, 120.1551, _C),
        ("Tianjin", 39.1300, 117.2000, _C),
        ("Suzhou", 31.2990, 120.5853, _C),
        ("Nanjing", 32.0603, 118.7969, _R),
    ),
    "AU": (
        ("Sydney", -33.8100, 150.9900, _C),
        ("Melbourne", -37.8000, 144.9500, _C),
        ("Brisbane", -27.4698, 153.0000, _C),
        ("Perth", -31.9505, 115.8605, _C),
        ("Adelaide", -34.9285, 138.6007, _C),
    ),
    "CA": (
        ("Toronto", 43.7000, -79.4200, _C),
        ("Montréal", 45.5300, -73.6200, _C),
        ("Ottawa", 45.4215, -75.6972, _C),
        ("Vancouver", 49.2500, -123.1000, _C),
        ("Calgary", 51.0447, -114.0719, _R),
        ("Edmonton", 53.5461, -113.4938, _R),
        ("Winnipeg", 49.8951, -97.1384, _R),
        ("Hamilton", 43.2400, -79.8700, _C),
        ("Halifax", 44.6600, -63.6000, _C),
    ),
}
"""Anchor cities per country: where sites and centers may be placed."""

EU_MEMBERS: tuple[str, ...] = tuple(sorted(EU_CUSTOMS_UNION - {"MC"}))
"""The 27 EU member states: the EU customs union without Monaco."""

_EU_POPULATION = {  # millions, 2023 (Eurostat), rounded: weights for placing things in the EU
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

_HOLIDAYS_2025: dict[str, tuple[str, ...]] = {
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

TRIAL_PATIENTS = 60.0
"""Clinical patients a year per synthetic trial (the number of trials follows from it)."""

TRIAL_LINES = 6
"""Lines that the sites approved for a trial in one market have at least, between them."""

BALANCE_UTILIZATION = 0.9
"""No group of markets needs its eligible sites above this utilisation (more approvals if so)..."""

BALANCE_SPREAD = 1.2
"""... or above this multiple of the network's utilisation, when that is higher."""

PENDING_SHARE = 0.06
"""Share of approvals that take effect only after the reference date."""


def generate_network(
    sites: int = 100,
    centers: int = 2000,
    *,
    seed: int = 0,
    products: int = 1,
    patients_per_year: float | None = None,
    name: str | None = None,
) -> Network:
    """A validated synthetic network of ``sites`` sites and ``centers`` treatment centers.

    ``patients_per_year`` is the total demand (commercial and clinical); by default it
    is sized for a network utilisation of about 75 %. The same arguments always give
    the same network.

    >>> net = generate_network(5, 20, seed=1)
    >>> len(net.sites), len(net.treatment_centers), len(net.markets)
    (5, 20, 8)
    >>> net.sites[0].id, net.treatment_centers[0].id, net.sites[0].assumption
    ('site-001', 'center-0001', 'synthetic (generated, seed 1)')
    """
    if sites < 2:
        raise ValueError("a synthetic network needs at least 2 sites (2 per market)")
    if centers < 1:
        raise ValueError("a synthetic network needs at least 1 treatment center")
    if products < 1:
        raise ValueError("a synthetic network needs at least 1 product")
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    if patients_per_year is not None and not (
        patients_per_year >= 0 and math.isfinite(patients_per_year)
    ):
        raise ValueError("patients_per_year must be a finite number >= 0")
    builder = _Builder(sites, centers, seed, products, patients_per_year)
    data = builder.build(name or f"synthetic-{sites}x{centers}-seed{seed}")
    return Network.model_validate(data)


def write_network_yaml(network: Network, path: Path) -> None:
    """Write ``network`` as a network file that ``load_network`` reads back equal."""
    data = _notes_last(network.model_dump(mode="json", by_alias=True, exclude_none=True))
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    Path(path).write_text(text, encoding="utf-8")


def _notes_last(data: Any) -> Any:
    """The same data with ``source`` and ``assumption`` last in every mapping (easier to read).

    >>> _notes_last({"assumption": "a", "id": "x", "items": [{"source": "s", "n": 1}]})
    {'id': 'x', 'items': [{'n': 1, 'source': 's'}], 'assumption': 'a'}
    """
    if isinstance(data, dict):
        keys = [k for k in data if k not in _NOTES] + [k for k in _NOTES if k in data]
        return {k: _notes_last(data[k]) for k in keys}
    if isinstance(data, list):
        return [_notes_last(x) for x in data]
    return data


_NOTES = ("source", "assumption")


# -- the generator -------------------------------------------------------------


def _allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder, ties to the first).

    >>> _allocate(5, [0.38, 0.34, 0.05, 0.04, 0.06, 0.05, 0.04, 0.04])
    [2, 2, 0, 0, 1, 0, 0, 0]
    """
    w = np.asarray(weights, dtype=float)
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(int)
    order = sorted(range(len(w)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - int(counts.sum())]:
        counts[i] += 1
    return [int(c) for c in counts]


def _round_to_total(values: list[float], total: float) -> list[float]:
    """Values rounded to 0.1 whose sum is ``total`` (to 0.05) when that is possible."""
    rounded = [round(v, 1) for v in values]
    if rounded:
        big = max(range(len(rounded)), key=lambda i: rounded[i])
        fixed = round(rounded[big] + total - math.fsum(rounded), 1)
        if fixed >= 0:
            rounded[big] = fixed
    return rounded


_Group = tuple[str, str, str, str | None]
"""Demand of one product, market, scope and trial."""


def _short_groups(demand: list[int], eligible: list[list[int]], capacity: list[int]) -> list[int]:
    """Demand groups that their eligible sites cannot serve together (empty when all fit).

    A max-flow (Edmonds-Karp, integer units) from a source through the groups (``demand``)
    and their ``eligible`` sites to a sink (``capacity``); when some demand is left over,
    the groups still reachable from the source in the residual graph are returned: their
    demand exceeds the capacity of all the sites they may use.

    >>> _short_groups([5, 5], [[0], [0, 1]], [6, 6])
    []
    >>> _short_groups([5, 5], [[0], [0]], [6, 6])
    [0, 1]
    """
    n_groups, n_sites = len(demand), len(capacity)
    source, sink = n_groups + n_sites, n_groups + n_sites + 1
    residual: list[dict[int, int]] = [{} for _ in range(n_groups + n_sites + 2)]

    def edge(u: int, v: int, cap: int) -> None:
        residual[u][v] = residual[u].get(v, 0) + cap
        residual[v].setdefault(u, 0)

    for i, (d, sites) in enumerate(zip(demand, eligible, strict=True)):
        edge(source, i, d)
        for j in sites:
            edge(i, n_groups + j, d)
    for j, cap in enumerate(capacity):
        edge(n_groups + j, sink, cap)
    # A greedy flow first (groups with the fewest sites first), then augmenting paths.
    for i in sorted(range(n_groups), key=lambda i: len(eligible[i])):
        for j in eligible[i]:
            push = min(residual[source][i], residual[n_groups + j][sink])
            if push > 0:
                for u, v in ((source, i), (i, n_groups + j), (n_groups + j, sink)):
                    residual[u][v] -= push
                    residual[v][u] += push
    while True:
        parent = {source: source}
        queue = deque([source])
        while queue and sink not in parent:
            u = queue.popleft()
            for v, cap in residual[u].items():
                if cap > 0 and v not in parent:
                    parent[v] = u
                    queue.append(v)
        if sink not in parent:
            break
        path = [sink]
        while path[-1] != source:
            path.append(parent[path[-1]])
        path.reverse()
        push = min(residual[u][v] for u, v in itertools.pairwise(path))
        for u, v in itertools.pairwise(path):
            residual[u][v] -= push
            residual[v][u] += push
    if all(residual[source][i] == 0 for i in range(n_groups)):
        return []
    return sorted(i for i in parent if i < n_groups)


class _Builder:
    """Draws one network as plain data; ``build`` returns the dict to validate."""

    def __init__(
        self,
        sites: int,
        centers: int,
        seed: int,
        products: int,
        patients_per_year: float | None,
    ) -> None:
        self.n_sites = sites
        self.n_centers = centers
        self.n_products = products
        self.seed = seed
        self.total = patients_per_year
        self.rng = np.random.default_rng(seed)
        self.note = f"synthetic (generated, seed {seed})"
        self.ref = REFERENCE_DATE

    # -- small draws -----------------------------------------------------------

    def _pick(self, n: int, p: Sequence[float] | None = None) -> int:
        if p is None:
            return int(self.rng.integers(n))
        w = np.asarray(p, dtype=float)
        return int(self.rng.choice(n, p=w / w.sum()))

    def _place(self, market: MarketSpec) -> tuple[str, str, float, float]:
        """(country, city, lat, lon) of a new place in ``market``."""
        if market.id == "EU":
            weights = [_EU_POPULATION[c] for c in market.countries]
            country = market.countries[self._pick(len(weights), weights)]
        else:
            country = market.countries[self._pick(len(market.countries))]
        anchors = ANCHORS[country]
        city, lat, lon, radius = anchors[self._pick(len(anchors))]
        r = radius * math.sqrt(float(self.rng.random()))
        angle = 2 * math.pi * float(self.rng.random())
        lat_j = lat + r * math.sin(angle)
        lon_j = lon + r * math.cos(angle) / math.cos(math.radians(lat))
        return country, city, round(lat_j, 4), round(lon_j, 4)

    def _day(self, low_days: int, high_days: int) -> str:
        """An ISO date ``low_days``..``high_days`` after the reference date."""
        offset = int(self.rng.integers(low_days, high_days + 1))
        return (self.ref + timedelta(days=offset)).isoformat()

    def _effective(self, pending_share: float = PENDING_SHARE) -> str:
        """Mostly 1 month to 7 years before the reference date; sometimes up to 18 months after."""
        if self.rng.random() < pending_share:
            return self._day(14, 540)
        return self._day(-7 * 365, -30)

    def _approval(
        self, product: str, regulator: Regulator, effective: str, trial: str | None = None
    ) -> dict[str, Any]:
        a: dict[str, Any] = {
            "product": product,
            "regulator": regulator.value,
            "scope": "clinical" if trial else "commercial",
            "effective": effective,
            "assumption": self.note,
        }
        if trial:
            a["trial"] = trial
        return a

    # -- the parts ---------------------------------------------------------------

    def build(self, name: str) -> dict[str, Any]:
        products = self._products()
        markets = [
            {
                "id": m.id,
                "name": m.name,
                "regulator": m.regulator.value,
                "countries": list(m.countries),
                "assumption": self.note,
            }
            for m in MARKETS
        ]
        sites = self._sites(products)
        centers = self._centers(products)
        self._commercial_cover(sites, products)
        total = self.total if self.total is not None else self._default_total(sites, products)
        trials = self._trials(sites, centers, products, total * CLINICAL_SHARE)
        self._demand(centers, products, trials, total)
        self._balance(sites, centers, products)
        lanes = self._lanes(sites, centers)
        for s in sites:
            del s["_market"]
        for c in centers:
            del c["_size"]
        return {
            "name": name,
            "description": (
                f"Synthetic network: {self.n_sites} sites, {self.n_centers} treatment centers, "
                f"{self.n_products} product(s), {round(total, 1):g} patients a year, from seed "
                f"{self.seed} (cartnet.network.synthetic). Realistic in kind, not real: for scale "
                "tests and benchmarks."
            ),
            "reference_date": self.ref.isoformat(),
            "currency": "USD",
            "assumption": self.note,
            "products": products,
            "markets": markets,
            "sites": sites,
            "treatment_centers": centers,
            "lanes": lanes,
            "lane_defaults": {"assumption": self.note},
            "scenarios": self._scenarios(sites),
        }

    def _products(self) -> list[dict[str, Any]]:
        out = []
        for i in range(self.n_products):
            p: dict[str, Any] = {
                "id": f"product-{i + 1:02d}",
                "name": f"Synthetic CAR-T {i + 1:02d}",
                "starting_material": StartingMaterial.CRYOPRESERVED.value,
                "oos_probability": round(float(self.rng.uniform(0.03, 0.08)), 3),
                "assumption": self.note,
            }
            if i % 2 == 1:  # every second product ships fresh apheresis, like some real ones
                p["starting_material"] = StartingMaterial.FRESH.value
                p["stability_hours"] = float(self.rng.choice([72.0, 96.0]))
            out.append(p)
        return out

    def _sites(self, products: list[dict[str, Any]]) -> list[dict[str, Any]]:
        counts = _allocate(self.n_sites, [m.site_weight for m in MARKETS])
        homes = [m for m, n in zip(MARKETS, counts, strict=True) for _ in range(n)]
        order = self.rng.permutation(len(homes))
        width = max(3, len(str(self.n_sites)))
        names: dict[str, int] = {}
        out = []
        for k, idx in enumerate(order):
            market = homes[int(idx)]
            country, city, lat, lon = self._place(market)
            owned = self.rng.random() < 0.55
            operator = SPONSOR if owned else CONTRACT_OPERATORS[self._pick(len(CONTRACT_OPERATORS))]
            label = f"{city} ({operator})"
            names[label] = names.get(label, 0) + 1
            if names[label] > 1:
                label = f"{city} {names[label]} ({operator})"
            lines = int(np.clip(round(float(self.rng.lognormal(math.log(6.0), 0.75))), 2, 30))
            mfg_mean = round(float(self.rng.uniform(7.0, 9.0)), 1)
            mfg_sd = round(mfg_mean * float(self.rng.uniform(0.1, 0.2)), 1)
            qc_low = float(self.rng.choice([6.5, 7.0, 7.0, 7.5]))
            qc_mode = qc_low + float(self.rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))
            qc_high = float(self.rng.choice([12.0, 13.0, 14.0, 14.0, 15.0]))
            fresh = self.rng.random() < 0.5
            site: dict[str, Any] = {
                "id": f"site-{k + 1:0{width}d}",
                "name": label,
                "operator": {
                    "name": operator,
                    "kind": (OperatorKind.OWNED if owned else OperatorKind.CONTRACT).value,
                    "assumption": self.note,
                },
                "city": city,
                "country": country,
                "lat": lat,
                "lon": lon,
                "lines": lines,
                "manufacturing": {"dist": "lognormal", "mean": mfg_mean, "sd": mfg_sd},
                "qc": {"dist": "triangular", "low": qc_low, "mode": qc_mode, "high": qc_high},
                "calendar": self._calendar(market),
                "starting_materials": (
                    [StartingMaterial.CRYOPRESERVED.value, StartingMaterial.FRESH.value]
                    if fresh
                    else [StartingMaterial.CRYOPRESERVED.value]
                ),
                "assumption": self.note,
                "approvals": self._site_approvals(market, products, fresh),
            }
            if self.rng.random() < 0.1:
                site["oos_probability"] = round(float(self.rng.uniform(0.02, 0.12)), 3)
            if self.rng.random() < 0.1:
                site["qc_capacity_per_day"] = max(1, math.ceil(lines / 4))
            site["_market"] = market.id  # dropped before validation
            out.append(site)
        return out

    def _calendar(self, market: MarketSpec) -> dict[str, Any]:
        u = float(self.rng.random())
        if u < 0.7:
            closed = ["sat", "sun"]
        elif u < 0.9:
            closed = ["sun"]
        else:
            closed = []  # a 7-day site
        calendar: dict[str, Any] = {"closed_weekdays": closed}
        if closed:
            calendar["closed_dates"] = list(_HOLIDAYS_2025[market.id])
        if self.rng.random() < 0.1:
            start = self.ref + timedelta(weeks=int(self.rng.integers(4, 48)))
            days = 6 if self.rng.random() < 0.5 else 13
            calendar["shutdowns"] = [
                {
                    "start": start.isoformat(),
                    "end": (start + timedelta(days=days)).isoformat(),
                    "reason": "annual maintenance",
                }
            ]
        return calendar

    def _site_approvals(
        self, home: MarketSpec, products: list[dict[str, Any]], fresh: bool
    ) -> list[dict[str, Any]]:
        approvals = []
        for i, product in enumerate(products):
            is_fresh = product["starting_material"] == StartingMaterial.FRESH.value
            if (i > 0 and self.rng.random() < 0.5) or (is_fresh and not fresh):
                continue  # the site does not make this product
            approvals.append(self._approval(product["id"], home.regulator, self._effective()))
            home_continent = CONTINENT_OF[home.countries[0]]
            for m in MARKETS:
                if m is home:
                    continue
                if is_fresh and CONTINENT_OF[m.countries[0]] != home_continent:
                    continue  # fresh material does not cross oceans
                if self.rng.random() < m.foreign_approval:
                    approvals.append(self._approval(product["id"], m.regulator, self._effective()))
        return approvals

    def _commercial_cover(
        self, sites: list[dict[str, Any]], products: list[dict[str, Any]]
    ) -> None:
        """Approve more sites until every market has 2 eligible commercial sites per product."""
        ref = self.ref.isoformat()
        for product in products:
            pid = product["id"]
            material = product["starting_material"]
            for m in MARKETS:
                continent = CONTINENT_OF[m.countries[0]]

                def held(s: dict[str, Any], pid: str = pid, m: MarketSpec = m) -> list[Any]:
                    return [
                        a
                        for a in s["approvals"]
                        if a["product"] == pid
                        and a["regulator"] == m.regulator.value
                        and a["scope"] == "commercial"
                    ]

                eligible = sum(
                    1
                    for s in sites
                    if material in s["starting_materials"]
                    and any(a["effective"] <= ref for a in held(s))
                )
                if eligible >= 2:
                    continue
                # Candidates, best first: a site that takes the material and has no such
                # approval (nearby ones first), then one whose approval is still pending.
                free = [s for s in sites if material in s["starting_materials"] and not held(s)]
                near = [s for s in free if CONTINENT_OF[s["country"]] == continent]
                far = [s for s in free if CONTINENT_OF[s["country"]] != continent]
                pending = [
                    s
                    for s in sites
                    if material in s["starting_materials"]
                    and held(s)
                    and all(a["effective"] > ref for a in held(s))
                ]
                others = [s for s in sites if material not in s["starting_materials"]]
                pools = [near, far, pending, others]
                for pool in pools:
                    for j in self.rng.permutation(len(pool)):
                        if eligible >= 2:
                            break
                        s = pool[int(j)]
                        if material not in s["starting_materials"]:
                            s["starting_materials"].append(material)
                        mine = held(s)
                        if mine:
                            mine[0]["effective"] = self._effective(0.0)
                        else:
                            s["approvals"].append(
                                self._approval(pid, m.regulator, self._effective(0.0))
                            )
                        eligible += 1

    def _centers(self, products: list[dict[str, Any]]) -> list[dict[str, Any]]:
        counts = _allocate(self.n_centers, [m.demand_weight for m in MARKETS])
        homes = [m for m, n in zip(MARKETS, counts, strict=True) for _ in range(n)]
        order = self.rng.permutation(len(homes))
        width = max(4, len(str(self.n_centers)))
        names: dict[str, int] = {}
        sizes = self.rng.lognormal(0.0, 0.8, len(homes))
        ranked = np.sort(sizes)
        big = (ranked[int(0.75 * len(sizes))], ranked[min(len(sizes) - 1, int(0.95 * len(sizes)))])
        out = []
        for k, idx in enumerate(order):
            market = homes[int(idx)]
            country, city, lat, lon = self._place(market)
            label = f"{city} {CENTER_KINDS[self._pick(len(CENTER_KINDS))]}"
            names[label] = names.get(label, 0) + 1
            if names[label] > 1:
                label = f"{label} {names[label]}"
            size = float(sizes[k])
            qualified = [
                p["id"] for i, p in enumerate(products) if i == 0 or self.rng.random() < 0.5
            ]
            out.append(
                {
                    "id": f"center-{k + 1:0{width}d}",
                    "name": label,
                    "market": market.id,
                    "city": city,
                    "country": country,
                    "lat": lat,
                    "lon": lon,
                    "products": qualified,
                    "apheresis_per_day": 1 + int(size > big[0]) + int(size > big[1]),
                    "assumption": self.note,
                    "demand": [],
                    "_size": size,  # dropped before validation
                }
            )
        return out

    def _trials(
        self,
        sites: list[dict[str, Any]],
        centers: list[dict[str, Any]],
        products: list[dict[str, Any]],
        patients: float,
    ) -> list[tuple[str, str, list[dict[str, Any]]]]:
        """Clinical trials: (trial id, product, participating centers); approves their sites.

        About ``TRIAL_PATIENTS`` a year per trial, at 2-8 centers in each of 1-3 markets.
        In each trial market, sites with at least ``TRIAL_LINES`` lines between them are
        approved before the reference date (sites of that market first), and sometimes one
        more site from a later date.
        """
        trials = []
        by_market: dict[str, list[dict[str, Any]]] = {m.id: [] for m in MARKETS}
        for c in centers:
            by_market[c["market"]].append(c)
        with_centers = [m for m in MARKETS if by_market[m.id]]
        weights = np.asarray([m.demand_weight for m in with_centers])
        n_trials = max(1, min(2 * self.n_sites, round(patients / TRIAL_PATIENTS)))
        width = max(3, len(str(n_trials + 100)))
        for t in range(n_trials):
            trial = f"SYN-{t + 101:0{width}d}"
            product = products[self._pick(len(products))]
            pid, material = product["id"], product["starting_material"]
            n_markets = min(len(with_centers), 1 + int(self.rng.integers(3)))
            picks = self.rng.choice(
                len(with_centers), size=n_markets, replace=False, p=weights / weights.sum()
            )
            participants: list[dict[str, Any]] = []
            for j in sorted(int(x) for x in picks):
                m = with_centers[j]
                pool = [c for c in by_market[m.id] if pid in c["products"]]
                if not pool:
                    continue
                n = min(len(pool), int(self.rng.integers(2, 9)))
                chosen = self.rng.choice(len(pool), size=n, replace=False)
                participants.extend(pool[int(i)] for i in sorted(chosen))
                able = [s for s in sites if material in s["starting_materials"]]
                home = [s for s in able if s["_market"] == m.id]
                away = [s for s in able if s["_market"] != m.id]
                ranked = [home[int(i)] for i in self.rng.permutation(len(home))]
                ranked += [away[int(i)] for i in self.rng.permutation(len(away))]
                lines = 0
                for s in ranked:
                    if lines >= TRIAL_LINES:
                        if self.rng.random() < 0.3:  # one more site, usually from a later date
                            when = self._effective(0.5)
                            s["approvals"].append(self._approval(pid, m.regulator, when, trial))
                        break
                    s["approvals"].append(
                        self._approval(pid, m.regulator, self._effective(0.0), trial)
                    )
                    lines += s["lines"]
            if participants:
                trials.append((trial, pid, participants))
        return trials

    def _capacity(self, site: dict[str, Any], products: list[dict[str, Any]]) -> float:
        """Patients a year the site can make with every line busy (failed batches re-made)."""
        oos = site.get("oos_probability", np.mean([p["oos_probability"] for p in products]))
        line_days = site["manufacturing"]["mean"] / (1 - float(oos))
        return float(site["lines"] * 365 / line_days)

    def _default_total(self, sites: list[dict[str, Any]], products: list[dict[str, Any]]) -> float:
        """Patients a year that load the network's lines to ``TARGET_UTILIZATION``."""
        return round(TARGET_UTILIZATION * sum(self._capacity(s, products) for s in sites), 1)

    def _demand(
        self,
        centers: list[dict[str, Any]],
        products: list[dict[str, Any]],
        trials: list[tuple[str, str, list[dict[str, Any]]]],
        total: float,
    ) -> None:
        clinical_total = total * CLINICAL_SHARE if trials else 0.0
        commercial_total = total - clinical_total
        present = {c["market"] for c in centers}
        weights = {m.id: m.demand_weight for m in MARKETS if m.id in present}
        market_size: dict[str, float] = {}
        for c in centers:
            market_size[c["market"]] = market_size.get(c["market"], 0.0) + c["_size"]
        product_weight = {p["id"]: (1.0 if i == 0 else 0.5) for i, p in enumerate(products)}
        rows: list[tuple[dict[str, Any], float]] = []
        for c in centers:
            share = weights[c["market"]] / sum(weights.values())
            patients = commercial_total * share * c["_size"] / market_size[c["market"]]
            mix = sum(product_weight[p] for p in c["products"])
            for p in c["products"]:
                row = {"product": p, "scope": "commercial", "assumption": self.note}
                rows.append((row, patients * product_weight[p] / mix))
                c["demand"].append(row)
        for trial, pid, participants in trials:
            per_trial = clinical_total / len(trials)
            sizes = [c["_size"] for c in participants]
            for c, size in zip(participants, sizes, strict=True):
                row = {"product": pid, "scope": "clinical", "trial": trial, "assumption": self.note}
                rows.append((row, per_trial * size / sum(sizes)))
                c["demand"].append(row)
        values = _round_to_total([v for _, v in rows], round(total, 1))
        for (row, _), value in zip(rows, values, strict=True):
            row["patients_per_year"] = value
        for c in centers:  # a very busy center collects on more chairs
            patients = sum(d["patients_per_year"] for d in c["demand"])
            c["apheresis_per_day"] = max(c["apheresis_per_day"], math.ceil(patients / 125))

    def _balance(
        self,
        sites: list[dict[str, Any]],
        centers: list[dict[str, Any]],
        products: list[dict[str, Any]],
    ) -> None:
        """Approve more sites until the demand fits with no site loaded above a level.

        The level is ``BALANCE_UTILIZATION``, or ``BALANCE_SPREAD`` times the network's
        utilisation when that is higher (a ``patients_per_year`` near or beyond capacity):
        no group of markets is much worse off than the network as a whole. A max-flow from
        demand groups (product, market, scope, trial) to the sites eligible for them on the
        reference date; while it cannot carry all the demand, the groups on the source
        side of the minimum cut are short of capacity, and one of them gets an approval at
        a site outside their reach.
        """
        ref = self.ref.isoformat()
        material = {p["id"]: p["starting_material"] for p in products}
        regulator = {m.id: m.regulator.value for m in MARKETS}
        demand: dict[_Group, int] = {}
        for c in centers:
            for d in c["demand"]:
                key = (d["product"], c["market"], d["scope"], d.get("trial"))
                demand[key] = demand.get(key, 0) + round(d["patients_per_year"] * 10)
        groups = sorted(k for k, v in demand.items() if v > 0)
        full = [self._capacity(s, products) * 10 for s in sites]
        level = max(BALANCE_UTILIZATION, BALANCE_SPREAD * sum(demand.values()) / sum(full))
        capacity = [int(level * c) for c in full]

        def matches(a: dict[str, Any], g: _Group) -> bool:
            return (
                a["product"] == g[0]
                and a["regulator"] == regulator[g[1]]
                and a["scope"] == g[2]
                and a.get("trial") == g[3]
            )

        market_of = {m.regulator.value: m.id for m in MARKETS}
        for _ in range(4 * len(sites) * max(1, len(groups))):
            in_force: dict[_Group, list[int]] = {}
            for j, s in enumerate(sites):
                for a in s["approvals"]:
                    if a["effective"] <= ref and material[a["product"]] in s["starting_materials"]:
                        key = (a["product"], market_of[a["regulator"]], a["scope"], a.get("trial"))
                        in_force.setdefault(key, []).append(j)
            eligible = [in_force.get(g, []) for g in groups]
            short = _short_groups([demand[g] for g in groups], eligible, capacity)
            if not short:
                return
            reach = {j for i in short for j in eligible[i]}
            outside = [j for j in range(len(sites)) if j not in reach]
            if not outside:
                return  # the whole network is loaded above BALANCE_UTILIZATION
            weights = [demand[groups[i]] for i in short]
            g = groups[short[self._pick(len(short), weights)]]
            continent = CONTINENT_OF[next(m for m in MARKETS if m.id == g[1]).countries[0]]
            takes = [j for j in outside if material[g[0]] in sites[j]["starting_materials"]]
            near = [j for j in takes if CONTINENT_OF[sites[j]["country"]] == continent]
            pool = near or takes or outside
            site = sites[pool[self._pick(len(pool))]]
            if material[g[0]] not in site["starting_materials"]:
                site["starting_materials"].append(material[g[0]])
            held = [a for a in site["approvals"] if matches(a, g)]
            if held:  # pending: it takes effect earlier
                held[0]["effective"] = self._effective(0.0)
            else:
                site["approvals"].append(
                    self._approval(g[0], Regulator(regulator[g[1]]), self._effective(0.0), g[3])
                )

    def _lanes(
        self, sites: list[dict[str, Any]], centers: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """A few same-city courier lanes and a few long-haul lanes with two customs days."""
        lanes: list[dict[str, Any]] = []
        n = max(1, self.n_sites // 20)
        by_city: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for c in centers:
            by_city.setdefault((c["country"], c["city"]), []).append(c)
        local = [s for s in sites if (s["country"], s["city"]) in by_city]
        for j in sorted(int(x) for x in self.rng.permutation(len(local))[:n]):
            s = local[j]
            near = by_city[(s["country"], s["city"])]
            c = near[self._pick(len(near))]
            lanes.append(
                {
                    "origin": c["id"],
                    "destination": s["id"],
                    "transit": {"dist": "triangular", "low": 0.1, "mode": 0.3, "high": 0.6},
                    "customs_days": 0.0,
                    "cost": 400.0,
                    "assumption": self.note,
                }
            )
        far_centers = [c for c in centers if c["market"] in ("JP", "CN", "AU")]
        west_sites = [s for s in sites if s["_market"] in ("US", "EU")]
        if far_centers and west_sites:
            for _ in range(n):
                c = far_centers[self._pick(len(far_centers))]
                s = west_sites[self._pick(len(west_sites))]
                if any(x["origin"] == c["id"] and x["destination"] == s["id"] for x in lanes):
                    continue
                lanes.append(
                    {
                        "origin": c["id"],
                        "destination": s["id"],
                        "transit": {"dist": "triangular", "low": 2.0, "mode": 2.5, "high": 4.0},
                        "customs_days": 2.0,
                        "cost": 8000.0,
                        "assumption": self.note,
                    }
                )
        return lanes

    def _scenarios(self, sites: list[dict[str, Any]]) -> list[dict[str, Any]]:
        k = max(1, round(self.n_sites / 10))
        chosen = sorted(int(i) for i in self.rng.choice(len(sites), size=k, replace=False))
        return [
            {
                "id": "add-capacity",
                "description": f"{k} site(s) add half their lines again (at least 2).",
                "assumption": self.note,
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
                "assumption": self.note,
                "changes": [{"op": "grow_demand", "scope": "commercial", "per_year": 0.3}],
            },
        ]
