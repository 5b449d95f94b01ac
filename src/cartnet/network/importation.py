"""Importation: what a batch made outside a market needs before a patient there gets it.

A medicine made outside the EU/EEA must be certified by an EU Qualified Person
(QP), and re-tested on import, before it is released to an EU patient (Directive
2001/83/EC Art. 51; EU GMP Annex 16), unless a mutual recognition agreement (MRA)
with the country of manufacture waives it. A market's ``importation`` says how
long that step takes, where it happens (``at``: a site in the market where the
QP certifies the batch; the product then travels site → ``at`` → center) and
which countries of manufacture are waived. The step applies to every lane from a
site outside the market's countries and not waived.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from cartnet.network.distributions import Duration
from cartnet.network.noted import CountryCode, Identifier, Noted

if TYPE_CHECKING:
    from cartnet.network.lanes import Lane

NonNegative = Annotated[float, Field(ge=0)]


class Importation(Noted):
    """Import testing and QP certification of batches made outside the market."""

    duration: Duration
    """Days from the batch's arrival where it is certified to its certification."""
    at: Identifier | None = None
    """Site where the batch is certified; default: on the way, with no detour."""
    waived_for: list[CountryCode] = []
    """Countries of manufacture whose MRA with the market waives the step."""
    cost: NonNegative = 0.0

    def applies(self, made_in: str, market_countries: list[str]) -> bool:
        """True for a batch made in ``made_in`` and sent to a patient of this market.

        >>> from cartnet.network.distributions import Fixed
        >>> eu = Importation(duration=Fixed(days=3), waived_for=["CH"])
        >>> eu.applies("US", ["DE", "FR"]), eu.applies("CH", ["DE"]), eu.applies("FR", ["DE", "FR"])
        (True, False, False)
        """
        return made_in not in market_countries and made_in not in self.waived_for


@dataclass(frozen=True)
class DeliveryRoute:
    """How a released batch reaches a center: one lane, or two around an importation."""

    lanes: tuple[Lane, ...]
    importation: Importation | None = None

    @property
    def transit_mean_days(self) -> float:
        """Expected days on the road, customs included."""
        return sum(lane.mean_days for lane in self.lanes)

    @property
    def importation_mean_days(self) -> float:
        return self.importation.duration.mean if self.importation is not None else 0.0

    @property
    def mean_days(self) -> float:
        """Expected days from release at the site to delivery at the center."""
        return self.transit_mean_days + self.importation_mean_days

    @property
    def cost(self) -> float:
        step = self.importation.cost if self.importation is not None else 0.0
        return sum(lane.cost for lane in self.lanes) + step
