"""Maps open offline: country outlines shipped, plotly.js inlined, no tile server or CDN."""

from __future__ import annotations

import re
from pathlib import Path

from cartnet.network import Network
from cartnet.report.maps import Flow, render_network_map
from cartnet.report.world import country_rings


def test_country_outlines_are_packaged() -> None:
    rings = country_rings()
    assert len(rings) > 250
    assert all(-180 <= lon <= 180 and -90 <= lat <= 90 for ring in rings for lon, lat in ring)


def test_html_map_is_self_contained(example: Network, tmp_path: Path) -> None:
    out = render_network_map(example, tmp_path / "m.html", flows=[Flow(-71, 42, 4.5, 52, 3)])
    html = out.read_text()
    assert "Newark" in html and "Leiden" in html
    assert not re.search(r"<script[^>]+src=\"https?://", html)
    assert "plotly.js" in html.lower() and len(html) > 1_000_000  # the library is inlined


def test_png_map_has_pixels(example: Network, tmp_path: Path) -> None:
    out = render_network_map(example, tmp_path / "m.png")
    from matplotlib.image import imread

    image = imread(out)
    assert image.shape[0] > 500 and image.shape[1] > 1000
    assert image.std() > 0.05  # not a blank canvas
