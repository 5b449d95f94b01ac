"""The network's load for the coming weeks: capacity booked per site and week.

Read from the same place bookings are taken from: the capacity calendar of the
network and the ``slot_usage`` rows (:class:`~cartnet.service.slots.SlotLedger`), so
the heat map and the map's site load show exactly what the next booking will meet.
Manufacturing starts are counted for every site; QC only at sites whose QC capacity
the network limits (``qc_capacity_per_day``); apheresis at the centers that have a
booking in the window (every center has a daily apheresis capacity, most of them idle).
A site's row also says how many of its starts quotas still hold, and for whom.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np

from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Invalid
from cartnet.service.slots import SlotKind
from cartnet.service.tower import require_tower

HEAT_WEEKS = 8
HEAT_LEVELS = (0.5, 0.75, 0.9, 1.0)
"""Upper bounds of heat levels 0-3 (share of capacity booked); level 4 is full."""


@dataclass(frozen=True, slots=True)
class Week:
    first: date
    booked: int
    capacity: int

    @property
    def share(self) -> float | None:
        """Booked over capacity; ``None`` when the resource has no capacity that week."""
        return None if self.capacity <= 0 else self.booked / self.capacity

    @property
    def level(self) -> int | None:
        """0 (quiet) to 4 (full); ``None`` for a closed week."""
        share = self.share
        if share is None:
            return None
        return next((i for i, bound in enumerate(HEAT_LEVELS) if share < bound), 4)


@dataclass(frozen=True, slots=True)
class LoadRow:
    """One resource over the weeks: a site's starts or QC, a center's apheresis."""

    kind: SlotKind
    resource: str
    name: str
    weeks: list[Week]
    held: int = 0
    """Manufacturing starts quotas still hold in the window for their holders (unused)."""
    holders: tuple[str, ...] = ()
    """Who those quotas hold them for: ``center mgh-boston``, ``market US``, ..."""

    @property
    def total(self) -> Week:
        return Week(
            self.weeks[0].first,
            sum(w.booked for w in self.weeks),
            sum(w.capacity for w in self.weeks),
        )


@dataclass(frozen=True, slots=True)
class NetworkLoad:
    first: date
    weeks: list[date]
    rows: list[LoadRow]

    def of(self, kind: SlotKind) -> list[LoadRow]:
        return [r for r in self.rows if r.kind is kind]

    def site(self, site: str) -> LoadRow | None:
        return next(
            (r for r in self.rows if r.kind is SlotKind.MANUFACTURING and r.resource == site),
            None,
        )


def _weekly(values: np.ndarray, weeks: int) -> list[int]:
    return [int(values[7 * w : 7 * w + 7].sum()) for w in range(weeks)]


def network_load(
    ctx: ServiceContext, principal: Principal, *, weeks: int = HEAT_WEEKS
) -> NetworkLoad:
    """Booked against capacity for each site and week from today, ``weeks`` weeks ahead."""
    require_tower(ctx, principal)
    if not 1 <= weeks <= 26:
        raise Invalid("weeks must be 1-26", field="weeks")
    today = ctx.today()
    days = 7 * weeks
    with ctx.reading() as session:
        cal = ctx.slots.snapshot(session, today, until=today + timedelta(days=days - 1))
    starts = [today + timedelta(days=7 * w) for w in range(weeks)]

    def row(
        kind: SlotKind, resource: str, name: str, booked: np.ndarray, cap: np.ndarray
    ) -> LoadRow:
        b, c = _weekly(booked[:days], weeks), _weekly(cap[:days], weeks)
        return LoadRow(
            kind, resource, name, [Week(s, x, y) for s, x, y in zip(starts, b, c, strict=True)]
        )

    rows: list[LoadRow] = []
    window_end = today + timedelta(days=days - 1)
    holding = [u for u in cal.still_held(0) if u.quota.start <= window_end]
    for site in ctx.network.sites:
        i = cal.site_index[site.id]
        load = row(SlotKind.MANUFACTURING, site.id, site.name, cal.booked[i], cal.slots[i])
        here = [u for u in holding if u.quota.site == site.id]
        holders = tuple(sorted({f"{u.quota.holder_kind.value} {u.quota.holder}" for u in here}))
        rows.append(replace(load, held=sum(u.unused for u in here), holders=holders))
    for site in ctx.network.sites:
        if site.qc_capacity_per_day is None:
            continue
        i = cal.site_index[site.id]
        qc = np.minimum(cal.qc[i], np.iinfo(np.int32).max).astype(np.int64)
        rows.append(row(SlotKind.QC, site.id, site.name, cal.qc_booked[i], qc))
    for center in ctx.network.treatment_centers:
        i = cal.center_index[center.id]
        if int(cal.apheresis_booked[i, :days].sum()) == 0:
            continue
        rows.append(
            row(
                SlotKind.APHERESIS,
                center.id,
                center.name,
                cal.apheresis_booked[i],
                cal.apheresis[i],
            )
        )
    return NetworkLoad(first=today, weeks=starts, rows=rows)
