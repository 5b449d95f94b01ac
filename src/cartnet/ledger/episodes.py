"""Excursion episodes: a temperature log's excursions grouped into the events QA reviews.

A logger that hovers at a limit crosses it again and again: each crossing is an
:class:`~cartnet.ledger.custody.Excursion`, but together they are one event with one
cause (a door left open, a dry shipper running low). Excursions less than a gap apart
are one episode, which raises one exception with its start, end, peak and duration;
so a log of 8,000 crossings is a handful of reviews, not 8,000.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cartnet.ledger.custody import Excursion, ExcursionSide


@dataclass(frozen=True, slots=True)
class ExcursionEpisode:
    """Consecutive excursions of one log with less than the gap between them."""

    excursions: tuple[Excursion, ...]

    def __post_init__(self) -> None:
        if not self.excursions:
            raise ValueError("an episode has at least one excursion")

    @property
    def start(self) -> datetime:
        return self.excursions[0].start

    @property
    def end(self) -> datetime:
        return self.excursions[-1].end

    @property
    def minutes(self) -> float:
        """From the first reading outside to the end of the last excursion."""
        return (self.end - self.start).total_seconds() / 60

    @property
    def minutes_outside(self) -> float:
        """How long of that the temperature was outside the limits."""
        return sum(e.minutes for e in self.excursions)

    @property
    def peak(self) -> Excursion:
        """The excursion that went farthest beyond its limit."""
        return max(self.excursions, key=lambda e: abs(e.extreme_c - e.limit_c))

    @property
    def ongoing(self) -> bool:
        """The log ended outside the limits."""
        return self.excursions[-1].ongoing

    @property
    def sides(self) -> frozenset[ExcursionSide]:
        return frozenset(e.side for e in self.excursions)


def episodes(found: Sequence[Excursion], gap_minutes: float) -> list[ExcursionEpisode]:
    """``found`` (in time order) grouped: a gap of at most ``gap_minutes`` joins two.

    The gap runs from the end of one excursion (the first reading back within the
    limits) to the start of the next.

    >>> from datetime import UTC
    >>> from cartnet.ledger.custody import FRESH, Reading, excursions
    >>> t0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
    >>> temperatures = [5.0, 9.0, 7.0, 9.5, 7.0] + [5.0] * 12 + [10.0, 5.0]
    >>> log = [Reading(t0 + timedelta(minutes=10 * i), c) for i, c in enumerate(temperatures)]
    >>> found = excursions(log, *FRESH)
    >>> [(len(e.excursions), e.minutes, e.peak.extreme_c) for e in episodes(found, 60)]
    [(2, 30.0, 9.5), (1, 10.0, 10.0)]
    """
    if gap_minutes < 0:
        raise ValueError(f"gap_minutes must be ≥ 0, got {gap_minutes}")
    gap = timedelta(minutes=gap_minutes)
    groups: list[list[Excursion]] = []
    for excursion in found:
        if groups and excursion.start - groups[-1][-1].end <= gap:
            groups[-1].append(excursion)
        else:
            groups.append([excursion])
    return [ExcursionEpisode(tuple(g)) for g in groups]
