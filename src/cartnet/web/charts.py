"""Temperature logs drawn on the server, as SVG the page can show without JavaScript.

A :class:`Chart` holds only numbers and labels we computed (coordinates, UTC times, °C);
the template ``logistics/_chart.html`` writes them into an ``<svg class="chart">`` with
classes for the reading line (``series``), the limits (``limit``, dashed), the spans
outside the limits (``excursion``) and the axes (``axis``), so the page's CSS styles it
and the Content-Security-Policy needs no inline styles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cartnet.ledger.custody import Excursion, Reading

WIDTH = 720
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 12, 40
"""Margins of the plot area: room for the °C labels on the left, times below."""
_TICKS = 5


@dataclass(frozen=True, slots=True)
class Tick:
    at: float
    text: str


@dataclass(frozen=True, slots=True)
class Span:
    """An excursion as a shaded band: its left edge and width in pixels."""

    x: float
    width: float
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    """What the SVG template draws: all in pixels of a ``WIDTH`` × ``HEIGHT`` view box."""

    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    points: str
    """The ``points`` of the readings' polyline."""
    limits: list[Tick]
    """One dashed line per limit: its y and its label."""
    spans: list[Span]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    title: str


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def temperature_chart(
    readings: Sequence[Reading],
    low: float | None,
    high: float | None,
    excursions: Sequence[Excursion] = (),
) -> Chart:
    """The readings as a line against the limits, excursions shaded, time in UTC."""
    if not readings:
        raise ValueError("a chart needs at least one reading")
    first, last = _utc(readings[0].at), _utc(readings[-1].at)
    seconds = max((last - first).total_seconds(), 60.0)
    values = [r.temperature_c for r in readings] + [x for x in (low, high) if x is not None]
    lowest, highest = min(values), max(values)
    margin = max((highest - lowest) * 0.08, 1.0)
    lowest, highest = lowest - margin, highest + margin
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM

    def x(moment: datetime) -> float:
        return round(LEFT + (_utc(moment) - first).total_seconds() / seconds * (right - LEFT), 1)

    def y(value: float) -> float:
        return round(bottom - (value - lowest) / (highest - lowest) * (bottom - TOP), 1)

    points = " ".join(f"{x(r.at)},{y(r.temperature_c)}" for r in readings)
    limits = [
        Tick(y(v), f"{name} {v:g} °C")
        for name, v in (("low", low), ("high", high))
        if v is not None
    ]
    spans = [
        Span(
            x(e.start),
            max(x(e.end) - x(e.start), 2.0),
            f"{e.side.value} {e.limit_c:g} °C from {_utc(e.start):%Y-%m-%d %H:%M} to "
            f"{_utc(e.end):%Y-%m-%d %H:%M} UTC, extreme {e.extreme_c:g} °C",
        )
        for e in excursions
    ]
    same_day = first.date() == last.date()
    x_ticks = []
    for i in range(_TICKS):
        moment = first + timedelta(seconds=seconds * i / (_TICKS - 1))
        text = f"{moment:%H:%M}" if same_day and i else f"{moment:%m-%d %H:%M}"
        x_ticks.append(Tick(x(moment), text + (" UTC" if i == _TICKS - 1 else "")))
    y_ticks = [
        Tick(y(v), f"{v:.0f}")
        for v in (lowest + (highest - lowest) * i / (_TICKS - 1) for i in range(_TICKS))
    ]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=right,
        top=TOP,
        bottom=bottom,
        points=points,
        limits=limits,
        spans=spans,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        title=(
            f"{len(readings)} readings from {first:%Y-%m-%d %H:%M} to "
            f"{last:%Y-%m-%d %H:%M} UTC, {len(spans)} excursion(s)"
        ),
    )
