"""Listed lanes win; every other pair gets the documented default."""

from __future__ import annotations

import pytest

from cartnet.network import LaneDefaults, Network
from cartnet.network.lanes import Lane


def test_listed_lane_serves_both_directions(example: Network) -> None:
    out = example.lane("paris-centre", "leiden")
    back = example.lane("leiden", "paris-centre")
    assert out.listed and back is out
    assert out.cost == 2500
    assert out.mean_days == pytest.approx((0.5 + 1 + 2) / 3)


def test_cost_back_prices_the_return_of_a_both_ways_lane(example: Network) -> None:
    """Out at ``cost``, back at ``cost_back``; transit and customs the same both ways."""
    data = example.model_dump()
    data["lanes"][0]["cost_back"] = 1800.0
    net = Network.model_validate(data)
    out = net.lane("paris-centre", "leiden")
    back = net.lane("leiden", "paris-centre")
    assert (out.cost, back.cost) == (2500, 1800)
    assert (back.origin, back.destination) == ("leiden", "paris-centre")
    assert back.transit == out.transit and back.customs_days == out.customs_days
    with pytest.raises(ValueError, match="cost_back prices the return of a both_ways lane"):
        Lane.model_validate(
            {"origin": "a", "destination": "b", "transit": {"dist": "fixed", "days": 1},
             "both_ways": False, "cost_back": 5}
        )  # fmt: skip


def test_default_lane_within_the_customs_union_is_ground_and_free_of_customs(
    example: Network,
) -> None:
    """Berlin to Leiden is ~606 km inside the EU: one day by road, no customs."""
    lane = example.lane("berlin-mitte", "leiden")
    assert not lane.listed
    assert lane.distance_km == pytest.approx(606, rel=0.01)
    assert lane.transit.mean == pytest.approx(1.0 * (0.75 + 1 + 1.5) / 3)
    assert lane.customs_days == 0
    d = LaneDefaults()
    assert lane.cost == pytest.approx(d.cost_fixed + d.cost_per_km * lane.distance_km, abs=0.1)


def test_default_transatlantic_lane_flies_and_clears_customs(example: Network) -> None:
    """Boston to Leiden crosses a customs border: air transit plus a customs day and fee."""
    lane = example.lane("boston-general", "leiden")
    d = LaneDefaults()
    km = lane.distance_km
    assert km is not None and km > 5000
    assert lane.transit.mean == pytest.approx((1 + km / 10_000) * (0.75 + 1 + 1.5) / 3, rel=1e-3)
    assert lane.customs_days == d.customs_days == 1
    assert lane.cost == pytest.approx(d.cost_fixed + d.cost_per_km * km + d.customs_cost, abs=0.1)


def test_network_file_can_change_the_defaults(example: Network) -> None:
    data = example.model_dump(mode="json", by_alias=True)
    data["lane_defaults"] = {"customs_days": 3, "assumption": "slow customs"}
    net = Network.model_validate(data)
    assert net.lane("boston-general", "leiden").customs_days == 3
