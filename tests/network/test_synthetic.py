"""Synthetic networks: large, realistic in kind, reproducible from a seed, and valid."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from cartnet.network import Network, Scope, load_network
from cartnet.network.entities import Regulator, Site, StartingMaterial, TreatmentCenter
from cartnet.network.synthetic import generate_network, write_network_yaml

NOTE = "synthetic (generated, seed {})"


@pytest.fixture(scope="module")
def big() -> Network:
    """The network of the scheduling issue: 100 sites, 2,000 centers, seed 0."""
    return generate_network(100, 2000)


def capacity(net: Network, site_ids: set[str] | None = None) -> float:
    """Patients a year the sites can make with every line busy (failed batches re-made)."""
    oos = sum(p.oos_probability for p in net.products) / len(net.products)
    return sum(
        s.lines
        * 365
        * (1 - (s.oos_probability if s.oos_probability is not None else oos))
        / s.manufacturing.mean
        for s in net.sites
        if site_ids is None or s.id in site_ids
    )


def noted(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object of a dumped network that can carry a source or an assumption."""
    yield "network", data
    yield "lane_defaults", data["lane_defaults"]
    for field in ("products", "markets", "lanes", "scenarios"):
        for x in data[field]:
            yield field, x
    for s in data["sites"]:
        yield f"site {s['id']}", s
        yield f"site {s['id']} operator", s["operator"]
        for a in s["approvals"]:
            yield f"site {s['id']} approval", a
    for c in data["treatment_centers"]:
        yield f"center {c['id']}", c
        for d in c["demand"]:
            yield f"center {c['id']} demand", d


def test_same_seed_gives_the_same_network_and_another_seed_another() -> None:
    """Generation is deterministic for a seed (no set order or clock leaks in), seeds differ."""
    a = generate_network(10, 200, seed=7, products=2)
    b = generate_network(10, 200, seed=7, products=2)
    assert a == b
    assert a.model_dump(mode="json") == b.model_dump(mode="json")
    c = generate_network(10, 200, seed=8, products=2)
    assert c != a
    assert [s.lat for s in c.sites] != [s.lat for s in a.sites]


def test_the_scale_network_has_the_requested_counts_and_ids(big: Network) -> None:
    """100 × 2,000 builds and validates, with ``site-001`` / ``center-0001`` ids, 8 markets."""
    assert big.name == "synthetic-100x2000-seed0"
    assert [s.id for s in big.sites] == [f"site-{i:03d}" for i in range(1, 101)]
    assert [c.id for c in big.treatment_centers] == [f"center-{i:04d}" for i in range(1, 2001)]
    assert [p.id for p in big.products] == ["product-01"]
    assert {m.regulator for m in big.markets} == set(Regulator)
    assert {c.market for c in big.treatment_centers} == {m.id for m in big.markets}
    assert all(2 <= s.lines <= 30 for s in big.sites)
    assert all(7 <= s.manufacturing.mean <= 9 for s in big.sites)
    assert all(1 <= c.apheresis_per_day <= 3 for c in big.treatment_centers)
    assert {s.operator.kind.value for s in big.sites} == {"owned", "contract"}
    closing = sum(1 for s in big.sites if s.calendar.closed_weekdays)
    assert closing > 70  # most sites close at weekends
    assert big.lanes and [s.id for s in big.scenarios] == ["add-capacity", "grow-30"]
    assert Network.model_validate(big.model_dump(mode="json", by_alias=True)) == big


def test_most_sites_and_demand_are_in_the_us_and_the_eu(big: Network) -> None:
    """Markets are the real ones (EU: the 27 member states) and weighted like Kymriah's."""
    eu = big.market("EU")
    assert len(eu.countries) == 27 and "GB" not in eu.countries and "CH" not in eu.countries
    assert big.market("UK").countries == ["GB"]
    us_eu = {"US", "EU"}
    demand = sum(
        d.patients_per_year for c in big.treatment_centers if c.market in us_eu for d in c.demand
    )
    assert demand > 0.7 * big.annual_demand()
    home = [m.id for s in big.sites for m in big.markets if s.country in m.countries]
    assert len(home) == 100
    assert sum(1 for m in home if m in us_eu) >= 70


def test_every_market_has_two_eligible_commercial_sites(big: Network) -> None:
    """On the reference date, for every product: ``eligible_sites`` returns at least two."""
    small = generate_network(5, 20, seed=3, products=3)
    for net in (big, small):
        for product in net.products:
            for market in net.markets:
                sites = net.eligible_sites(
                    product.id, market.id, Scope.COMMERCIAL, net.reference_date
                )
                assert len(sites) >= 2, (net.name, product.id, market.id)


def test_fresh_products_are_made_where_fresh_material_is_taken() -> None:
    """Every second product uses fresh apheresis and only sites that take it are eligible."""
    net = generate_network(20, 100, seed=4, products=2)
    fresh = net.product("product-02")
    assert fresh.starting_material is StartingMaterial.FRESH and fresh.stability_hours
    for market in net.markets:
        sites = net.eligible_sites(fresh.id, market.id, "commercial", net.reference_date)
        assert all(s.accepts(StartingMaterial.FRESH) for s in sites)


def test_clinical_demand_has_a_site_approved_for_its_trial(big: Network) -> None:
    """Each trial's patients can be made on the reference date, under their own trial id."""
    clinical = [
        (c, d) for c in big.treatment_centers for d in c.demand if d.scope is Scope.CLINICAL
    ]
    assert len({d.trial for _, d in clinical}) > 10
    for c, d in clinical:
        assert big.eligible_sites(d.product, c.market, d.scope, big.reference_date, d.trial)
        other = "SYN-999"
        assert not big.eligible_sites(d.product, c.market, d.scope, big.reference_date, other)
    share = sum(d.patients_per_year for _, d in clinical) / big.annual_demand()
    assert share == pytest.approx(0.08, abs=0.005)


def test_some_approvals_take_effect_after_the_reference_date(big: Network) -> None:
    """Pending approvals exist, so eligibility changes over a simulated year."""
    ref = big.reference_date
    later = [a for s in big.sites for a in s.approvals if a.effective > ref]
    assert 0 < len(later) < 0.15 * sum(len(s.approvals) for s in big.sites)
    a = min(later, key=lambda a: a.effective)
    market = next(m for m in big.markets if m.regulator is a.regulator)
    before = big.eligible_sites(a.product, market.id, a.scope, ref, a.trial)
    after = big.eligible_sites(a.product, market.id, a.scope, a.effective, a.trial)
    assert len(after) > len(before)
    eve = a.effective - timedelta(days=1)
    assert big.eligible_sites(a.product, market.id, a.scope, eve, a.trial) == before


def test_default_demand_loads_the_network_to_about_75_percent(big: Network) -> None:
    """Without ``patients_per_year`` demand is 75 % of capacity at ~8.6 line-days a patient."""
    assert big.annual_demand() / capacity(big) == pytest.approx(0.75, abs=0.005)


def test_no_market_needs_more_than_90_percent_of_its_eligible_sites(big: Network) -> None:
    """Demand is spread so each market could be served with its eligible sites at ≤ 90 %."""
    for market in big.markets:
        eligible = {
            s.id
            for s in big.eligible_sites("product-01", market.id, "commercial", big.reference_date)
        }
        demand = sum(
            d.patients_per_year
            for c in big.centers_in(market.id)
            for d in c.demand
            if d.scope is Scope.COMMERCIAL
        )
        assert demand <= 0.9 * capacity(big, eligible), market.id


@pytest.mark.parametrize("patients", [0.0, 1234.5, 30_000.0])
def test_total_demand_is_the_requested_figure(patients: float) -> None:
    """``patients_per_year`` is the network's annual demand, to rounding (0.05 a year)."""
    net = generate_network(10, 200, seed=2, patients_per_year=patients)
    assert net.annual_demand() == pytest.approx(patients, abs=0.05)


def test_written_yaml_reloads_equal(tmp_path: Path) -> None:
    """``write_network_yaml`` gives a network file that ``load_network`` reads back equal."""
    net = generate_network(10, 200, seed=5, products=2)
    path = tmp_path / "synthetic.yaml"
    write_network_yaml(net, path)
    assert load_network(path) == net
    text = path.read_text(encoding="utf-8")
    assert text.startswith("name: synthetic-10x200-seed5\n")


def test_every_object_carries_the_synthetic_assumption(big: Network) -> None:
    """Products, markets, sites, operators, approvals, centers, demand, lanes, scenarios ..."""
    data = big.model_dump(mode="json", by_alias=True)
    for where, obj in noted(data):
        assert obj["assumption"] == NOTE.format(0), where


def test_places_lie_inside_their_country(big: Network) -> None:
    """Sites and centers fall inside their country's outline (Natural Earth 1:110m).

    Malta is too small to be in the 1:110m outlines and is skipped.
    """
    alpha3 = {
        "US": "USA", "GB": "GBR", "CH": "CHE", "JP": "JPN", "CN": "CHN", "AU": "AUS",
        "CA": "CAN", "AT": "AUT", "BE": "BEL", "BG": "BGR", "HR": "HRV", "CY": "CYP",
        "CZ": "CZE", "DK": "DNK", "EE": "EST", "FI": "FIN", "FR": "FRA", "DE": "DEU",
        "GR": "GRC", "HU": "HUN", "IE": "IRL", "IT": "ITA", "LV": "LVA", "LT": "LTU",
        "LU": "LUX", "NL": "NLD", "PL": "POL", "PT": "PRT", "RO": "ROU", "SK": "SVK",
        "SI": "SVN", "ES": "ESP", "SE": "SWE",
    }  # fmt: skip
    raw = json.loads(
        resources.files("cartnet.data").joinpath("world_countries.json").read_text("utf-8")
    )
    rings: dict[str, list[list[list[float]]]] = {}
    for country in raw["countries"]:
        rings.setdefault(country["iso_a3"], []).extend(country["rings"])

    def inside(ring: list[list[float]], lon: float, lat: float) -> bool:
        hit = False
        for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
            if (y1 > lat) != (y2 > lat) and lon < (x2 - x1) * (lat - y1) / (y2 - y1) + x1:
                hit = not hit
        return hit

    places: list[Site | TreatmentCenter] = [*big.sites, *big.treatment_centers]
    for p in places:
        if p.country == "MT":
            continue
        assert any(inside(r, p.lon, p.lat) for r in rings[alpha3[p.country]]), (p.id, p.city)


def test_a_small_instance_works_with_its_scenarios() -> None:
    """5 sites and 20 centers: valid, and both scenarios apply (more lines, 30 % growth)."""
    net = generate_network(5, 20, seed=1)
    assert len(net.sites) == 5 and len(net.treatment_centers) == 20
    assert net.annual_demand() == pytest.approx(0.75 * capacity(net), rel=0.01)
    more = net.with_scenario("add-capacity")
    assert sum(s.lines for s in more.sites) > sum(s.lines for s in net.sites)
    grown = net.with_scenario("grow-30")
    commercial = [
        d for c in grown.treatment_centers for d in c.demand if d.scope is Scope.COMMERCIAL
    ]
    rates = {d.growth_per_year for d in commercial}
    assert rates == {0.3}


def test_impossible_sizes_are_refused() -> None:
    """Two sites are the least that gives every market two eligible sites; one center at least."""
    with pytest.raises(ValueError, match="at least 2 sites"):
        generate_network(1, 10)
    with pytest.raises(ValueError, match="at least 1 treatment center"):
        generate_network(5, 0)
    with pytest.raises(ValueError, match="patients_per_year"):
        generate_network(5, 10, patients_per_year=-1)
    assert len(generate_network(2, 1).sites) == 2
