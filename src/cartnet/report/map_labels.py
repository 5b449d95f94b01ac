"""Where to put the site labels of a map so they neither overprint nor hide a marker.

Sites cluster (Les Ulis, Stein and Leipzig lie within a few degrees; Kobe and
Shanghai too), and a label put at the same offset for every site covers its
neighbour's marker or label. Each label tries positions around its marker, nearest
first, and takes the first whose box stays on the map and clear of every marker and
every label already placed; a label moved away from its marker gets a leader line.
Greedy, like most cartographic labellers: a dozen sites need no optimizer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Label:
    """A label's offset from its marker (in the figure's units, y up) and alignment."""

    dx: float
    dy: float
    align: str  # "left", "right" or "center": which side of the text sits at the offset
    leader: bool  # far enough from the marker to need a line to it

    def box(self, x: float, y: float, width: float, height: float) -> Box:
        left = {"left": x + self.dx, "right": x + self.dx - width}.get(
            self.align, x + self.dx - width / 2
        )
        return Box(left, y + self.dy - height / 2, left + width, y + self.dy + height / 2)


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Box, gap: float = 1.0) -> bool:
        return not (
            self.x1 + gap <= other.x0
            or other.x1 + gap <= self.x0
            or self.y1 + gap <= other.y0
            or other.y1 + gap <= self.y0
        )

    def covers(self, x: float, y: float, radius: float) -> bool:
        return self.overlaps(Box(x - radius, y - radius, x + radius, y + radius), gap=0.0)

    def inside(self, bounds: Box) -> bool:
        return (
            self.x0 >= bounds.x0
            and self.x1 <= bounds.x1
            and self.y0 >= bounds.y0
            and self.y1 <= bounds.y1
        )


def _candidates(step: float) -> list[Label]:
    found = []
    for ring, distance in enumerate((1.0, 2.6, 4.2, 6.0)):
        for degrees in (0, 180, 35, -35, 145, -145, 90, -90):
            angle = math.radians(degrees)
            dx, dy = math.cos(angle) * distance * step, math.sin(angle) * distance * step
            align = "left" if dx > 1e-9 else "right" if dx < -1e-9 else "center"
            found.append(Label(dx, dy, align, leader=ring > 0))
    return found


def place_labels(
    points: Sequence[tuple[float, float, str]],
    *,
    char_width: float,
    line_height: float,
    marker_radius: float,
    bounds: Box,
) -> list[Label]:
    """One label per point ``(x, y, text)``, all in the same units as ``bounds``.

    The most crowded points choose first; a point whose every candidate collides
    keeps the nearest one that stays on the map.
    """
    step = marker_radius + 3
    candidates = _candidates(step)
    sizes = [(len(text) * char_width + 4, line_height) for _, _, text in points]

    def crowding(i: int) -> int:
        x, y, _ = points[i]
        return sum(math.hypot(x - u, y - v) < 12 * step for u, v, _ in points)

    order = sorted(range(len(points)), key=lambda i: (-crowding(i), -points[i][1], points[i][0]))
    chosen: dict[int, Label] = {}
    boxes: list[Box] = []
    for i in order:
        x, y, _ = points[i]
        width, height = sizes[i]
        fallback = None
        for label in candidates:
            box = label.box(x, y, width, height)
            if not box.inside(bounds):
                continue
            fallback = fallback or (label, box)
            clear = not any(box.overlaps(b) for b in boxes) and not any(
                box.covers(u, v, marker_radius) for u, v, _ in points
            )
            if clear:
                chosen[i] = label
                boxes.append(box)
                break
        else:
            label, box = fallback or (candidates[0], candidates[0].box(x, y, width, height))
            chosen[i] = label
            boxes.append(box)
    return [chosen[i] for i in range(len(points))]


def label_boxes(
    points: Sequence[tuple[float, float, str]],
    labels: Sequence[Label],
    *,
    char_width: float,
    line_height: float,
) -> list[Box]:
    """The boxes the labels occupy (for checks and tests)."""
    return [
        label.box(x, y, len(text) * char_width + 4, line_height)
        for (x, y, text), label in zip(points, labels, strict=True)
    ]
