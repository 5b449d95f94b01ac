"""Map labels neither overprint each other nor hide a site marker."""

from __future__ import annotations

import pytest

from cartnet.network import Network, open_network
from cartnet.report.map_labels import Box, label_boxes, place_labels
from cartnet.report.maps import MAP_BOUNDS, _plotly_site_labels, site_labels

# (units per degree, character width, line height, marker radius): the PNG in points
# and the interactive map in pixels, as maps.py draws them.
SCALES = {"png": (2.7, 4.9, 12.0, 7.0), "html": (2.6, 6.4, 16.0, 8.0)}


@pytest.fixture(scope="module")
def kymriah() -> Network:
    return open_network("kymriah-2020")


@pytest.mark.parametrize("scale", SCALES.values(), ids=SCALES.keys())
def test_kymriah_labels_are_clear_of_each_other_and_of_every_marker(
    kymriah: Network, scale: tuple[float, float, float, float]
) -> None:
    """Les Ulis, Stein and Leipzig lie within a few degrees, Kobe and Shanghai too."""
    k, char_width, line_height, radius = scale
    placed = site_labels(kymriah, k, char_width, line_height, radius)
    points = [(s.lon * k, s.lat * k, text) for s, text, _ in placed]
    boxes = label_boxes(
        points, [label for *_, label in placed], char_width=char_width, line_height=line_height
    )
    for i, box in enumerate(boxes):
        assert box.inside(Box(*(v * k for v in MAP_BOUNDS))), points[i][2]
        for j, other in enumerate(boxes):
            assert i == j or not box.overlaps(other), (points[i][2], points[j][2])
        for x, y, text in points:
            assert not box.covers(x, y, radius), (points[i][2], "covers", text)


def test_a_crowd_too_dense_still_gets_a_label_each_on_the_map() -> None:
    points = [(0.0, 0.0, "Alpha"), (1.0, 0.0, "Beta"), (0.0, 1.0, "Gamma"), (1.0, 1.0, "Delta")]
    bounds = Box(-40, -40, 40, 40)
    labels = place_labels(points, char_width=6, line_height=14, marker_radius=6, bounds=bounds)
    boxes = label_boxes(points, labels, char_width=6, line_height=14)
    assert len(labels) == 4 and all(b.inside(bounds) for b in boxes)


def test_the_interactive_map_draws_a_leader_line_for_a_moved_label(kymriah: Network) -> None:
    annotations = _plotly_site_labels(kymriah)
    assert len(annotations) == len(kymriah.sites)
    assert all(a["showarrow"] == ("ax" in a) for a in annotations)
    texts = {str(a["text"]).split(" (")[0] for a in annotations}
    assert {"Stein", "Kobe", "Leipzig", "Les Ulis", "Shanghai"} <= texts
