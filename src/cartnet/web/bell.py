"""The bell in the page header: how many things wait for the viewer's action.

Rendered into every page on the server (so it shows without JavaScript) and refreshed
by htmx every 30 seconds from ``GET /bell`` (:mod:`cartnet.web.tower`). Each role gets
its count from a service use case listed in :data:`COUNTERS`; a role without one has
no bell. Another role's count is one more entry there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cartnet.ledger.roles import Role
from cartnet.service import tower
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext


@dataclass(frozen=True, slots=True)
class Bell:
    count: int
    href: str
    """Where the viewer sees what the count is made of."""
    text: str
    """What the count counts, for screen readers and the tooltip."""


def _tower(ctx: ServiceContext, principal: Principal) -> Bell | None:
    found = tower.attention(ctx, principal)
    if found is None:
        return None
    return Bell(
        found.orders,
        "/tower#attention",
        f"{found.orders} order(s) need your action: {found.exceptions} exception(s) "
        f"to act on, {found.at_risk} order(s) at risk",
    )


COUNTERS: dict[Role, Callable[[ServiceContext, Principal], Bell | None]] = {
    Role.PLANNER: _tower,
    Role.LOGISTICS: _tower,
    Role.QA: _tower,
}
"""The bell of each role that has one (QA's only while ``tower_qa_read`` is set)."""


def bell_for(ctx: ServiceContext, principal: Principal | None) -> Bell | None:
    """The viewer's bell, or ``None`` when their role has none."""
    if principal is None:
        return None
    counter = COUNTERS.get(principal.role)
    return None if counter is None else counter(ctx, principal)
