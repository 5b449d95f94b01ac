"""Importation: QP certification and import testing on lanes into a market from outside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cartnet.network import Network, load_network, parse_network
from cartnet.network.files import NetworkFileError

STEP = {"duration": {"dist": "fixed", "days": 5}, "cost": 900}


def with_eu_importation(example_path: Path, **extra: Any) -> Network:
    data = yaml.safe_load(example_path.read_text())
    data["markets"][1]["importation"] = {**STEP, **extra}
    return parse_network(yaml.safe_dump(data, sort_keys=False), "net.yaml")


def test_only_batches_made_outside_the_market_are_imported(example_path: Path) -> None:
    """Newark (US) → Paris needs the EU step; Leiden (NL) → Paris and Newark → Boston do not."""
    net = with_eu_importation(example_path)
    imported = net.delivery_route("newark", "paris-centre")
    assert imported.importation is not None
    assert imported.mean_days == pytest.approx(net.lane("newark", "paris-centre").mean_days + 5)
    assert imported.cost == pytest.approx(net.lane("newark", "paris-centre").cost + 900)
    assert net.delivery_route("leiden", "paris-centre").importation is None
    assert net.delivery_route("newark", "boston-general").importation is None


def test_a_mutual_recognition_agreement_waives_the_step(example_path: Path) -> None:
    net = with_eu_importation(example_path, waived_for=["US"])
    route = net.delivery_route("newark", "paris-centre")
    assert route.importation is None
    assert route.mean_days == net.lane("newark", "paris-centre").mean_days


def test_certification_at_a_site_routes_the_product_through_it(example_path: Path) -> None:
    net = with_eu_importation(example_path, at="leiden")
    route = net.delivery_route("newark", "berlin-mitte")
    assert [(lane.origin, lane.destination) for lane in route.lanes] == [
        ("newark", "leiden"),
        ("leiden", "berlin-mitte"),
    ]
    expected = net.lane("newark", "leiden").mean_days + net.lane("leiden", "berlin-mitte").mean_days
    assert route.mean_days == pytest.approx(expected + 5)


def test_without_importation_routes_are_the_direct_lane(example_path: Path) -> None:
    net = load_network(example_path)
    route = net.delivery_route("newark", "paris-centre")
    assert route.importation is None and route.lanes == (net.lane("newark", "paris-centre"),)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"at": "nowhere"}, "markets[1].importation.at: unknown site 'nowhere'"),
        ({"at": "newark"}, "markets[1].importation.at: site 'newark' is in US, outside market"),
        ({"waived_for": ["FR"]}, "markets[1].importation.waived_for[0]: FR is a country of market"),
        ({"waived_for": ["XX"]}, "markets[1].importation.waived_for[0]: unknown ISO 3166"),
        ({"duration": {"dist": "fixed"}}, "markets[1].importation.duration.days: required field"),
    ],
)
def test_bad_importation_is_reported_with_its_place(
    example_path: Path, extra: dict[str, Any], expected: str
) -> None:
    with pytest.raises(NetworkFileError) as caught:
        with_eu_importation(example_path, **extra)
    problems = [str(p) for p in caught.value.problems]
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("net.yaml:") for p in problems)  # each names a line of the file


def test_reference_network_imports_us_batches_into_europe_but_not_swiss_ones(
    kymriah: Network,
) -> None:
    """EU QP certification at Leipzig for Morris Plains; Stein waived by the EU-CH MRA."""
    eu = [c.id for c in kymriah.centers_in("EU")]
    uk = [c.id for c in kymriah.centers_in("UK")]
    us = [c.id for c in kymriah.centers_in("US")]
    for center in eu:
        route = kymriah.delivery_route("morris-plains", center)
        assert route.importation is not None and route.lanes[0].destination == "leipzig"
        for site in ("stein", "leipzig", "les-ulis"):
            assert kymriah.delivery_route(site, center).importation is None
    for center in uk:
        assert kymriah.delivery_route("morris-plains", center).importation is not None
        assert kymriah.delivery_route("stein", center).importation is None
    for center in us:
        assert kymriah.delivery_route("morris-plains", center).importation is None
    step = kymriah.market("EU").importation
    assert step is not None and step.source and step.assumption
