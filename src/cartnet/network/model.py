"""The network as a whole: the one object the rest of cartnet asks questions of.

Above all it answers *which sites may make product P for a patient of market M
with scope S on date D?*, and *how does material travel between a center and a
site?*. A network checks its own integrity (unique ids, references that resolve,
scenarios that apply) when it is built, from a file or from code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import TypeVar

from pydantic import ConfigDict, model_validator

from cartnet.network.entities import (
    Identifier,
    Market,
    Noted,
    Product,
    Scope,
    Site,
    TreatmentCenter,
)
from cartnet.network.geo import CONTINENT_OF, continent
from cartnet.network.lanes import Lane, LaneDefaults
from cartnet.network.scenario import Scenario, ScenarioError

T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a network: where (a field path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class NetworkError(Exception):
    """A network that is not whole: every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class Network(Noted):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Identifier
    description: str = ""
    reference_date: date
    """The day the network describes; the default date of questions and simulation starts."""
    currency: str = "USD"
    products: list[Product]
    markets: list[Market]
    sites: list[Site]
    treatment_centers: list[TreatmentCenter] = []
    lanes: list[Lane] = []
    lane_defaults: LaneDefaults = LaneDefaults()
    scenarios: list[Scenario] = []
    applied_scenario: Identifier | None = None

    @model_validator(mode="after")
    def _whole(self) -> Network:
        problems = list(_integrity_problems(self))
        if not problems and self.applied_scenario is None:
            problems = list(_scenario_problems(self))
        if problems:
            raise NetworkError(problems)
        return self

    # -- lookups -------------------------------------------------------------

    @cached_property
    def _sites(self) -> dict[str, Site]:
        return {s.id: s for s in self.sites}

    @cached_property
    def _centers(self) -> dict[str, TreatmentCenter]:
        return {c.id: c for c in self.treatment_centers}

    @cached_property
    def _markets(self) -> dict[str, Market]:
        return {m.id: m for m in self.markets}

    @cached_property
    def _products(self) -> dict[str, Product]:
        return {p.id: p for p in self.products}

    @cached_property
    def _lanes(self) -> dict[tuple[str, str], Lane]:
        found: dict[tuple[str, str], Lane] = {}
        for lane in self.lanes:
            if lane.both_ways:
                found.setdefault((lane.destination, lane.origin), lane)
            found[(lane.origin, lane.destination)] = lane
        return found

    def site(self, site_id: str) -> Site:
        return _lookup(self._sites, site_id, "site")

    def center(self, center_id: str) -> TreatmentCenter:
        return _lookup(self._centers, center_id, "treatment center")

    def market(self, market_id: str) -> Market:
        return _lookup(self._markets, market_id, "market")

    def product(self, product_id: str) -> Product:
        return _lookup(self._products, product_id, "product")

    def scenario(self, scenario_id: str) -> Scenario:
        return _lookup({s.id: s for s in self.scenarios}, scenario_id, "scenario")

    def place(self, place_id: str) -> tuple[str, float, float]:
        """(country, lat, lon) of a site or a treatment center."""
        where: Site | TreatmentCenter = (
            self._sites[place_id] if place_id in self._sites else self.center(place_id)
        )
        return where.country, where.lat, where.lon

    # -- questions -------------------------------------------------------------

    def with_scenario(self, scenario_id: str | None) -> Network:
        """This network, or the named scenario applied to it."""
        if scenario_id is None:
            return self
        return self.applying(self.scenario(scenario_id))

    def applying(self, scenario: Scenario, *, index: int | None = None) -> Network:
        """This network with ``scenario``'s changes applied, validated anew."""
        data = self.model_dump(mode="json", by_alias=True, exclude={"scenarios"})
        return Network.model_validate(scenario.apply_to(data, index=index))

    def eligible_sites(
        self,
        product: str,
        market: str,
        scope: Scope | str,
        on: date,
        trial: str | None = None,
    ) -> list[Site]:
        """Sites that may make ``product`` for a patient of ``market`` with ``scope`` on ``on``.

        A site qualifies when an approval of the market's regulator for this product
        and scope (and the patient's trial, for clinical patients) is in force on that
        day, the site takes the product's starting material, and it has a line.
        """
        regulator = self.market(market).regulator
        material = self.product(product).starting_material
        scope = Scope(scope)
        return [
            s
            for s in self.sites
            if s.lines > 0
            and s.accepts(material)
            and s.may_make(product, regulator, scope, on, trial)
        ]

    def lane(self, origin: str, destination: str) -> Lane:
        """The listed lane between two places, or the default one from distance and borders."""
        listed = self._lanes.get((origin, destination))
        if listed is not None:
            return listed
        return self.lane_defaults.lane(
            origin, destination, self.place(origin), self.place(destination)
        )

    def continents(self) -> list[str]:
        """Continents with at least one manufacturing site."""
        return sorted({continent(s.country) for s in self.sites})

    def centers_in(self, market: str) -> list[TreatmentCenter]:
        return [c for c in self.treatment_centers if c.market == market]

    def annual_demand(self) -> float:
        return sum(d.patients_per_year for c in self.treatment_centers for d in c.demand)


def _lookup(index: dict[str, T], key: str, kind: str) -> T:
    try:
        return index[key]
    except KeyError:
        names = sorted(index)
        known = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
        known = known or "none"
        raise KeyError(f"unknown {kind} {key!r} (known: {known})") from None


def _duplicates(ids: list[str]) -> set[str]:
    return {i for i, n in Counter(ids).items() if n > 1}


def _integrity_problems(net: Network) -> Iterator[Problem]:
    """Every reference that does not resolve and every id used twice."""
    for field in ("products", "markets", "sites", "treatment_centers", "scenarios"):
        items = getattr(net, field)
        dup = _duplicates([x.id for x in items])
        for i, x in enumerate(items):
            if x.id in dup:
                yield Problem(f"{field}[{i}].id", f"duplicate id {x.id!r}")
    site_ids = {s.id for s in net.sites}
    for i, c in enumerate(net.treatment_centers):
        if c.id in site_ids:
            yield Problem(f"treatment_centers[{i}].id", f"{c.id!r} is also a site id")

    products = {p.id for p in net.products}
    markets = {m.id: m for m in net.markets}
    country_market: dict[str, str] = {}
    for i, m in enumerate(net.markets):
        for j, country in enumerate(m.countries):
            path = f"markets[{i}].countries[{j}]"
            if country not in CONTINENT_OF:
                yield Problem(path, f"unknown ISO 3166 country code {country!r}")
            elif country in country_market:
                yield Problem(path, f"{country} is already in market {country_market[country]!r}")
            else:
                country_market[country] = m.id

    for i, s in enumerate(net.sites):
        if s.country not in CONTINENT_OF:
            yield Problem(f"sites[{i}].country", f"unknown ISO 3166 country code {s.country!r}")
        keys: dict[tuple[str, str, str, str | None], list[int]] = {}
        for j, a in enumerate(s.approvals):
            path = f"sites[{i}].approvals[{j}]"
            if a.product not in products:
                yield Problem(f"{path}.product", f"unknown product {a.product!r}")
            for k in keys.setdefault(a.key(), []):
                other = s.approvals[k]
                if a.effective < (other.end or date.max) and other.effective < (a.end or date.max):
                    yield Problem(path, f"overlaps approvals[{k}] (same product, regulator, scope)")
            keys[a.key()].append(j)

    for i, c in enumerate(net.treatment_centers):
        path = f"treatment_centers[{i}]"
        market = markets.get(c.market)
        if market is None:
            yield Problem(f"{path}.market", f"unknown market {c.market!r}")
        elif c.country not in market.countries:
            yield Problem(f"{path}.country", f"{c.country} is not a country of market {c.market!r}")
        for j, p in enumerate(c.products):
            if p not in products:
                yield Problem(f"{path}.products[{j}]", f"unknown product {p!r}")
        seen: set[tuple[str, str, str | None]] = set()
        for j, d in enumerate(c.demand):
            key = (d.product, d.scope.value, d.trial)
            if d.product not in c.products:
                yield Problem(
                    f"{path}.demand[{j}].product",
                    f"center is not qualified for {d.product!r} (add it to products)",
                )
            if key in seen:
                yield Problem(f"{path}.demand[{j}]", "duplicate demand for this product and scope")
            seen.add(key)

    places = site_ids | {c.id for c in net.treatment_centers}
    pairs: set[tuple[str, str]] = set()
    for i, lane in enumerate(net.lanes):
        for end in ("origin", "destination"):
            ref = getattr(lane, end)
            if ref not in places:
                yield Problem(f"lanes[{i}].{end}", f"unknown site or treatment center {ref!r}")
        these = {(lane.origin, lane.destination)}
        if lane.both_ways:
            these.add((lane.destination, lane.origin))
        if lane.origin == lane.destination:
            yield Problem(f"lanes[{i}]", "origin and destination are the same place")
        if these & pairs:
            yield Problem(f"lanes[{i}]", f"duplicate lane {lane.origin} → {lane.destination}")
        pairs |= these


def _scenario_problems(net: Network) -> Iterator[Problem]:
    """A scenario must apply cleanly to the base network."""
    for i, scenario in enumerate(net.scenarios):
        try:
            net.applying(scenario, index=i)
        except ScenarioError as e:
            yield Problem(e.path, e.message)
        except NetworkError as e:
            for p in e.problems:
                yield Problem(f"scenarios[{i}]", f"once applied, {p}")
