"""Booking policies: which site an order is booked at.

A policy sees the order and one ``SiteOption`` per eligible site (expected
wait, lanes, delivery, cost) and picks one. Optimizing policies (the scheduling
package) plug in through the same interface, and may also re-plan the waiting
backlog every few days through ``replan``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple


class OrderRequest(NamedTuple):
    """What a policy knows of an order when it books it (no patient identity)."""

    order_id: int
    center: str
    market: str
    product: str
    scope: str
    trial: str | None
    enrolled: float


class SiteOption(NamedTuple):
    """One eligible site for an order, with what booking there is expected to mean.

    A named tuple because the twin makes one per eligible site for every order.
    """

    site: str
    expected_wait_days: float
    inbound_days: float
    outbound_days: float
    expected_delivery: float
    """Expected delivery time at the center, in simulation days."""
    distance_km: float
    cost: float
    cross_border: bool
    free_places: int = 0
    """Places free at the site now: orders booked there are called at once."""
    interval_days: float = 0.0
    """Expected days between two places freeing up at the site (cycle / lines)."""


@dataclass(frozen=True, slots=True)
class WaitingOrder:
    """An order still waiting for its slot, which a re-planning policy may move."""

    request: OrderRequest
    site: str
    options: Sequence[SiteOption]


class BookingPolicy(ABC):
    """Choose a site for each new order; optionally re-plan the waiting backlog."""

    name: ClassVar[str]
    description: ClassVar[str]
    replan_every_days: float | None = None

    @abstractmethod
    def choose(
        self, order: OrderRequest, options: Sequence[SiteOption], now: float
    ) -> SiteOption: ...

    def replan(self, now: float, waiting: Sequence[WaitingOrder]) -> Mapping[int, str]:
        """New sites for waiting orders (order id → site id); none by default."""
        return {}


class NearestEligible(BookingPolicy):
    """The eligible site closest to the center, as a portal showing one site would book."""

    name = "nearest"
    description = "nearest eligible site by great-circle distance"

    def choose(self, order: OrderRequest, options: Sequence[SiteOption], now: float) -> SiteOption:
        return min(options, key=lambda o: (o.distance_km, o.site))


class EarliestDelivery(BookingPolicy):
    """The eligible site with the earliest expected delivery, queues included."""

    name = "earliest"
    description = "earliest expected delivery across all eligible sites"

    def choose(self, order: OrderRequest, options: Sequence[SiteOption], now: float) -> SiteOption:
        return min(options, key=lambda o: (o.expected_delivery, o.cost, o.site))


PolicyFactory = Callable[[], BookingPolicy]
"""How a run is given its policy: a class (or any picklable callable) that makes one, so
a replication in another process or on Dask makes its own. The twin knows only its own
policies by name; the scheduling package passes its optimizing ones as factories."""

POLICIES: dict[str, PolicyFactory] = {
    NearestEligible.name: NearestEligible,
    EarliestDelivery.name: EarliestDelivery,
}
"""The twin's own policies by name."""


def make_policy(policy: str | PolicyFactory) -> BookingPolicy:
    """A fresh policy from a factory, or from the name of one of the twin's own."""
    if not isinstance(policy, str):
        return policy()
    try:
        return POLICIES[policy]()
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise KeyError(
            f"unknown policy {policy!r} (the twin's own: {known}; pass other policies as "
            "factories, e.g. cartnet.schedule.policies.policy_factory(name))"
        ) from None


def policy_name(policy: str | PolicyFactory) -> str:
    """What a run's results call its policy."""
    return policy if isinstance(policy, str) else str(getattr(policy, "name", policy))
