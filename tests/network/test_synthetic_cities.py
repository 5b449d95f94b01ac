"""The anchor-city table of the synthetic generator: a packaged data file that covers its world."""

from __future__ import annotations

import fnmatch
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from cartnet.network.synthetic import ANCHORS, MARKETS
from cartnet.network.synthetic.world import CITIES_FILE, parse_anchors

ROOT = Path(__file__).resolve().parents[2]


def test_every_market_country_has_an_anchor_city_and_no_city_is_outside_the_markets() -> None:
    """Each of the 34 countries can receive sites and centers; no row is unused."""
    countries = {c for m in MARKETS for c in m.countries}
    assert set(ANCHORS) == countries
    assert len(countries) == 34  # US, 27 EU member states, GB, CH, JP, CN, AU, CA


def test_anchor_coordinates_and_radii_are_in_range() -> None:
    """Latitudes, longitudes and jitter radii (at most a tenth of a degree) are plausible."""
    for country, anchors in ANCHORS.items():
        assert anchors, country
        for city, lat, lon, radius in anchors:
            assert city.strip() == city and city, (country, city)
            assert -90 <= lat <= 90 and -180 <= lon <= 180, (country, city)
            assert 0 < radius <= 0.1, (country, city)


def test_the_table_is_read_from_the_packaged_file() -> None:
    """ANCHORS is exactly the parsed data file, in file order (the order the draws index)."""
    text = resources.files("cartnet.network.synthetic").joinpath(CITIES_FILE).read_text("utf-8")
    assert parse_anchors(text) == ANCHORS
    assert list(ANCHORS)[:3] == ["US", "AT", "BE"]
    assert ANCHORS["US"][18] == ("Rochester, MN", 44.0121, -92.4802, 0.1)  # a quoted comma


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("country,city,lat,lon,radius\nCH,Bern,north,7.4,0.03\n", "line 2"),
        ("country,city,lat,lon,radius\nCH,Bern,46.9,7.4,0.03\nCH,Basel,47.5\n", "line 3"),
        ("country,city,lat,lon\nCH,Bern,46.9,7.4\n", "line 2"),
        ("country,city,lat,lon,radius\n,Bern,46.9,7.4,0.03\n", "needs a country"),
    ],
)
def test_a_bad_row_is_refused_naming_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_anchors(text)
    assert CITIES_FILE in str(info.value)


def test_the_table_is_declared_as_package_data() -> None:
    """A wheel ships the table: a package-data pattern of pyproject.toml matches it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["cartnet"]
    path = f"network/synthetic/{CITIES_FILE}"
    assert (ROOT / "src" / "cartnet" / path).is_file()
    assert any(fnmatch.fnmatch(path, p) for p in patterns)
