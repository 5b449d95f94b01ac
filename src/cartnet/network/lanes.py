"""Courier lanes between treatment centers and manufacturing sites.

A network file lists the lanes it knows (transit-time distribution, customs days,
cost per shipment). Every other pair gets a documented default from the
great-circle distance and from whether the shipment crosses a customs border:

* up to ``ground_max_km``: a ground courier, ``ground_days`` in transit;
* beyond: air, ``air_base_days + distance / air_km_per_day`` days;
* transit is triangular from ``fast_factor`` to ``slow_factor`` times that, mode at it;
* a customs border adds ``customs_days`` and ``customs_cost``;
* cost = ``cost_fixed + cost_per_km × distance`` (+ customs cost).

All of these are assumptions a planner should replace with lane data.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from cartnet.network.distributions import Duration, Triangular
from cartnet.network.entities import Identifier, Noted
from cartnet.network.geo import crosses_customs_border, great_circle_km

NonNegative = Annotated[float, Field(ge=0)]


class Lane(Noted):
    """One direction of travel (both when ``both_ways``) between a center and a site."""

    origin: Identifier
    destination: Identifier
    transit: Duration
    customs_days: NonNegative = 0.0
    cost: NonNegative = 0.0
    both_ways: bool = True
    cost_back: NonNegative | None = None
    """Cost per shipment destination → origin of a ``both_ways`` lane (default: ``cost``)."""
    listed: bool = Field(default=True, exclude=True)
    """False for lanes made from the defaults (never read from a file)."""
    distance_km: NonNegative | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _back_needs_both_ways(self) -> Lane:
        if self.cost_back is not None and not self.both_ways:
            raise ValueError(
                "cost_back prices the return of a both_ways lane; a one-way lane has none "
                "(list the return direction as its own lane)"
            )
        return self

    def reverse(self) -> Lane:
        """The destination → origin direction of a ``both_ways`` lane, at its own cost."""
        cost = self.cost if self.cost_back is None else self.cost_back
        return self.model_copy(
            update={
                "origin": self.destination,
                "destination": self.origin,
                "cost": cost,
                "cost_back": None,
                "both_ways": False,
            }
        )

    @property
    def mean_days(self) -> float:
        """Expected door-to-door days, customs included."""
        return self.transit.mean + self.customs_days


class LaneDefaults(Noted):
    ground_max_km: NonNegative = 800.0
    ground_days: Annotated[float, Field(gt=0)] = 1.0
    air_base_days: NonNegative = 1.0
    air_km_per_day: Annotated[float, Field(gt=0)] = 10_000.0
    fast_factor: Annotated[float, Field(gt=0, le=1)] = 0.75
    slow_factor: Annotated[float, Field(ge=1)] = 1.5
    customs_days: NonNegative = 1.0
    cost_fixed: NonNegative = 1_500.0
    cost_per_km: NonNegative = 0.4
    customs_cost: NonNegative = 500.0

    def transit_days(self, distance_km: float) -> float:
        """Most likely transit days for a distance.

        >>> LaneDefaults().transit_days(500), round(LaneDefaults().transit_days(5837), 4)
        (1.0, 1.5837)
        """
        if distance_km <= self.ground_max_km:
            return self.ground_days
        return self.air_base_days + distance_km / self.air_km_per_day

    def lane(
        self,
        origin: str,
        destination: str,
        origin_place: tuple[str, float, float],
        destination_place: tuple[str, float, float],
    ) -> Lane:
        """The default lane between two places given as (country, lat, lon)."""
        (c1, lat1, lon1), (c2, lat2, lon2) = origin_place, destination_place
        km = great_circle_km(lat1, lon1, lat2, lon2)
        days = self.transit_days(km)
        customs = crosses_customs_border(c1, c2)
        return Lane(
            origin=origin,
            destination=destination,
            transit=Triangular(
                low=days * self.fast_factor, mode=days, high=days * self.slow_factor
            ),
            customs_days=self.customs_days if customs else 0.0,
            cost=round(
                self.cost_fixed + self.cost_per_km * km + (self.customs_cost if customs else 0.0),
                2,
            ),
            listed=False,
            distance_km=round(km, 1),
            assumption="default lane from great-circle distance and customs border",
        )
