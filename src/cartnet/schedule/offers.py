"""Slot-chain offers: every feasible way to treat one patient, across the whole network.

For an order (center, product, market, scope, earliest apheresis date) each
eligible site is searched for its earliest feasible chain: apheresis at the
center on a day it is open and has capacity, the inbound lane, a free
manufacturing slot on a day the site's approval is in force (and its quotas
allow), expected QC release, the way back (with import testing and QP
certification when the batch is made outside the patient's market) and infusion
on the center's next open day. Chains are ranked by expected time to
treatment, then lane cost. Every site that cannot offer a chain says why.

Expected days are whole days: a stage that takes 1.6 days on average is planned
as 2, as a coordinator would plan it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

import numpy as np

from cartnet.network.entities import Scope, Site, StartingMaterial
from cartnet.network.model import Network
from cartnet.schedule.capacity import CapacityCalendar, Party, Quota


def dated_fields(record: object) -> dict[str, object]:
    """A dataclass's fields for JSON, dates as ISO 8601 strings."""
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in vars(record).items()}


class Reason(StrEnum):
    NO_APPROVAL = "no-approval"
    NO_LINES = "no-lines"
    MATERIAL = "starting-material"
    STABILITY = "stability-window"
    CAPACITY = "capacity-full"
    QUOTA = "quota-held"
    APHERESIS = "apheresis-full"
    TOO_EARLY = "too-early"


@dataclass(frozen=True)
class OfferRequest:
    """One patient's order as a coordinator enters it (no patient identity)."""

    center: str
    product: str
    earliest_apheresis: date
    scope: Scope = Scope.COMMERCIAL
    trial: str | None = None
    enrolled: date | None = None
    """Day of enrolment, for time to treatment; default: the earliest apheresis day."""
    material: StartingMaterial | None = None
    """Default: the product's starting material."""


@dataclass(frozen=True)
class SlotChain:
    site: str
    site_name: str
    apheresis: date
    start: date
    release: date
    delivery: date
    infusion: date
    vein_to_vein_days: int
    time_to_treatment_days: int
    lane_cost: float
    inbound_days: int
    outbound_days: int
    from_quota: bool

    def as_dict(self) -> dict[str, object]:
        return dated_fields(self)


@dataclass(frozen=True)
class Exclusion:
    site: str
    site_name: str
    reason: Reason
    message: str

    def as_dict(self) -> dict[str, object]:
        return {
            "site": self.site,
            "site_name": self.site_name,
            "reason": self.reason.value,
            "message": self.message,
        }


@dataclass(frozen=True)
class Offers:
    request: OfferRequest
    market: str
    chains: list[SlotChain]
    excluded: list[Exclusion] = field(default_factory=list)


@dataclass
class OfferPlanner:
    """Searches slot chains on a capacity calendar; caches what does not change per order."""

    network: Network
    calendar: CapacityCalendar
    apheresis_days: int = 1
    infusion_days: int = 2
    horizon_days: int = 180
    _approved: dict[tuple[str, str, str, str, str | None], np.ndarray] = field(default_factory=dict)
    _lanes: dict[tuple[str, str], tuple[int, int, float, float, float]] = field(
        default_factory=dict
    )
    _infusion: dict[str, np.ndarray] = field(default_factory=dict)

    def approved_days(
        self, site: Site, product: str, regulator: str, scope: Scope, trial: str | None
    ) -> np.ndarray:
        """Boolean per calendar day: is an approval for this product and patient in force?"""
        key = (site.id, product, regulator, scope.value, trial)
        mask = self._approved.get(key)
        if mask is None:
            cal = self.calendar
            mask = np.zeros(cal.days, dtype=bool)
            for a in site.approvals:
                if a.applies_to(product, regulator, scope, trial):
                    first = max(0, cal.day(a.effective))
                    last = cal.days if a.end is None else min(cal.days, cal.day(a.end))
                    if first < last:
                        mask[first:last] = True
            self._approved[key] = mask
        return mask

    def leg(self, center: str, site: Site) -> tuple[int, int, float, float, float]:
        """(inbound days, outbound days, cost, inbound mean days, manufacturing + QC days)."""
        key = (center, site.id)
        found = self._lanes.get(key)
        if found is None:
            lane_in = self.network.lane(center, site.id)
            route = self.network.delivery_route(site.id, center)
            found = (
                math.ceil(self.apheresis_days + lane_in.mean_days - 1e-9),
                math.ceil(route.mean_days - 1e-9),
                lane_in.cost + route.cost,
                lane_in.mean_days,
                site.manufacturing.mean + site.qc.mean,
            )
            self._lanes[key] = found
        return found

    def offers(
        self, request: OfferRequest, k: int = 5, per_site: int = 1, today: date | None = None
    ) -> Offers:
        """The ``k`` best slot chains (at most ``per_site`` per site) and every exclusion."""
        net, cal = self.network, self.calendar
        center = net.center(request.center)
        product = net.product(request.product)
        market = net.market(center.market)
        material = request.material or product.starting_material
        regulator = market.regulator.value
        party = Party(center.id, market.id, request.trial)
        first_a = cal.day(request.earliest_apheresis)
        enrolled = cal.day(request.enrolled or request.earliest_apheresis)
        now = cal.day(today) if today is not None else enrolled
        if not 0 <= first_a < cal.days:
            raise ValueError(
                f"earliest apheresis {request.earliest_apheresis} is outside the capacity "
                f"calendar ({cal.origin} to {cal.date_of(cal.days - 1)})"
            )
        chains: list[SlotChain] = []
        excluded: list[Exclusion] = []
        for site in net.sites:
            found = self._site_chains(
                site, request, party, regulator, material, product.stability_hours,
                first_a, enrolled, now, per_site,
            )  # fmt: skip
            if isinstance(found, Exclusion):
                excluded.append(found)
            else:
                chains.extend(found)
        chains.sort(key=lambda c: (c.time_to_treatment_days, c.lane_cost, c.site, c.start))
        return Offers(request, market.id, chains[:k], excluded)

    def chain(
        self, request: OfferRequest, site_id: str, start: date, today: date | None = None
    ) -> SlotChain | Exclusion:
        """The chain that starts manufacturing at ``site_id`` on ``start``, if it is free.

        The same rules as :meth:`offers`, for one chosen slot: what a booking checks
        before it takes the capacity.
        """
        net, cal = self.network, self.calendar
        site = net.site(site_id)
        center = net.center(request.center)
        product = net.product(request.product)
        market = net.market(center.market)
        material = request.material or product.starting_material
        party = Party(center.id, market.id, request.trial)
        first_a = cal.day(request.earliest_apheresis)
        enrolled = cal.day(request.enrolled or request.earliest_apheresis)
        now = cal.day(today) if today is not None else enrolled
        d = cal.day(start)
        if not 0 <= first_a < cal.days or not 0 <= d < cal.days:
            raise ValueError(
                f"dates outside the capacity calendar ({cal.origin} to {cal.date_of(cal.days - 1)})"
            )
        found = self._site_chains(
            site, request, party, market.regulator.value, material, product.stability_hours,
            first_a, enrolled, now, 1, only_start=d,
        )  # fmt: skip
        return found if isinstance(found, Exclusion) else found[0]

    def _site_chains(
        self,
        site: Site,
        request: OfferRequest,
        party: Party,
        regulator: str,
        material: StartingMaterial,
        stability_hours: float | None,
        first_a: int,
        enrolled: int,
        now: int,
        per_site: int,
        only_start: int | None = None,
    ) -> list[SlotChain] | Exclusion:
        cal = self.calendar

        def exclude(reason: Reason, message: str) -> Exclusion:
            return Exclusion(site.id, site.name, reason, message)

        scope_text = request.scope.value + (f" (trial {request.trial})" if request.trial else "")
        if site.lines == 0:
            return exclude(Reason.NO_LINES, "the site has no manufacturing lines")
        if not site.accepts(material):
            return exclude(Reason.MATERIAL, f"the site does not take {material.value} material")
        approved = self.approved_days(
            site, request.product, regulator, request.scope, request.trial
        )
        lead, back, cost, in_mean, make_days = self.leg(request.center, site)
        if material is StartingMaterial.FRESH and in_mean * 24 > (stability_hours or 0):
            return exclude(
                Reason.STABILITY,
                f"the lane takes {in_mean * 24:.0f} h, beyond the {stability_hours:g} h "
                "stability of fresh material",
            )
        first = first_a + lead
        last = min(cal.days - 1, first + self.horizon_days)
        window = approved[first : last + 1]
        if first > last or not window.any():
            return exclude(
                Reason.NO_APPROVAL,
                f"no {regulator} {scope_text} approval for {request.product} in force between "
                f"{cal.date_of(min(first, cal.days - 1))} and {cal.date_of(last)}",
            )
        if only_start is not None:
            if not first <= only_start <= last:
                return exclude(
                    Reason.TOO_EARLY if only_start < first else Reason.CAPACITY,
                    f"a start on {cal.date_of(only_start)} is outside the possible window "
                    f"{cal.date_of(first)} to {cal.date_of(last)}",
                )
            offset = only_start - first
            window = window[offset : offset + 1]
            if not window.any():
                return exclude(
                    Reason.NO_APPROVAL,
                    f"no {regulator} {scope_text} approval for {request.product} in force on "
                    f"{cal.date_of(only_start)}",
                )
            first = last = only_start
        free = cal.free_slots(site.id, first, last) > 0
        candidates = np.flatnonzero(free & window)
        if len(candidates) == 0:
            return exclude(
                Reason.CAPACITY,
                f"capacity full until at least {cal.date_of(last)}",
            )
        chains: list[SlotChain] = []
        blocked_by_apheresis = False
        holding: list[Quota] = []
        make = math.ceil(make_days - 1e-9)
        for offset in candidates.tolist():
            d = first + offset
            if not cal.slot_open_to(site.id, d, party, now):
                holding += [
                    q for q in cal.blocking_quotas(site.id, d, party, now) if q not in holding
                ]
                continue
            a = self._apheresis_day(request.center, first_a, d - lead, material)
            if a is None:
                blocked_by_apheresis = True
                continue
            release = d + make
            if not cal.qc_free(site.id, release):
                continue
            delivery = release + back
            infusion = self._open_day(request.center, delivery + self.infusion_days)
            chains.append(
                SlotChain(
                    site.id, site.name, cal.date_of(a), cal.date_of(d), cal.date_of(release),
                    cal.date_of(delivery), cal.date_of(infusion), infusion - a, infusion - enrolled,
                    round(cost, 2), lead, back,
                    cal.quota_for(site.id, d, party) is not None,
                )
            )  # fmt: skip
            if len(chains) >= per_site:
                break
        if chains:
            return chains
        if holding:
            what = "the free slot" if first == last else "the free slots"
            until = f"on {cal.date_of(last)}" if first == last else f"until {cal.date_of(last)}"
            return exclude(
                Reason.QUOTA,
                f"{what} {until} {'is' if first == last else 'are'} held by "
                + "; ".join(q.describe() for q in holding),
            )
        if blocked_by_apheresis:
            return exclude(
                Reason.APHERESIS,
                f"{request.center} has no apheresis capacity (open days) for the free slots "
                f"until {cal.date_of(last)}",
            )
        return exclude(Reason.CAPACITY, f"QC capacity full until at least {cal.date_of(last)}")

    def _apheresis_day(
        self, center: str, first_a: int, latest: int, material: StartingMaterial
    ) -> int | None:
        """The latest day with apheresis capacity that still meets the slot.

        Fresh material is collected exactly ``lead`` days before the start;
        cryopreserved material may be collected earlier and wait.
        """
        cal = self.calendar
        lowest = latest if material is StartingMaterial.FRESH else first_a
        for a in range(latest, lowest - 1, -1):
            if a < first_a:
                break
            if cal.apheresis_free(center, a):  # none on the center's closed days
                return a
        return None

    def infusion_days_from(self, center: str) -> np.ndarray:
        """Day of infusion for each day the product could first be infused (``delivery +
        infusion_days``): that day, or the center's next open day after it."""
        found = self._infusion.get(center)
        if found is None:
            cal, days = self.calendar, self.network.center_days(center)
            n = cal.days + self.horizon_days + 60  # chains may end beyond the calendar
            found = np.arange(n, dtype=np.int64)
            if not days.always_open:
                is_open = days.open_days(cal.origin, n)
                # the first open day at or after each day: a reversed running minimum
                nxt = np.where(is_open, found, n - 1)
                found = np.minimum.accumulate(nxt[::-1])[::-1]
            self._infusion[center] = found
        return found

    def _open_day(self, center: str, day: int) -> int:
        """``day``, or the center's next open day after it."""
        table = self.infusion_days_from(center)
        return int(table[min(day, len(table) - 1)])
