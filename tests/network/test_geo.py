"""Great-circle distance, continents and customs borders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartnet.network.geo import continent, crosses_customs_border, great_circle_km

lat = st.floats(-90, 90)
lon = st.floats(-180, 180)


@given(lat, lon, lat, lon)
def test_distance_is_symmetric_and_bounded(a: float, b: float, c: float, d: float) -> None:
    """No two places are further apart than half the Earth's circumference."""
    km = great_circle_km(a, b, c, d)
    assert km == pytest.approx(great_circle_km(c, d, a, b), abs=1e-6)
    assert 0 <= km <= 20_016


def test_known_distances() -> None:
    """Morris Plains to Les Ulis is transatlantic; Leipzig to Stein is a day's drive."""
    assert great_circle_km(40.84, -74.48, 48.68, 2.17) == pytest.approx(5_870, rel=0.01)
    assert great_circle_km(51.34, 12.37, 47.54, 7.95) == pytest.approx(530, rel=0.02)


def test_continents_of_the_seven_kymriah_countries() -> None:
    assert {continent(c) for c in ["US", "DE", "FR", "CH", "CN", "JP", "AU"]} == {
        "North America",
        "Europe",
        "Asia",
        "Oceania",
    }


@pytest.mark.parametrize(
    ("a", "b", "customs"),
    [
        ("DE", "DE", False),
        ("DE", "FR", False),
        ("DE", "CH", True),
        ("GB", "FR", True),
        ("US", "JP", True),
    ],
)
def test_customs_border(a: str, b: str, customs: bool) -> None:
    """Within the EU customs union there are no formalities; Switzerland and the UK are outside."""
    assert crosses_customs_border(a, b) is customs
