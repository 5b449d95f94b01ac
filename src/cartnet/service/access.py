"""Who is asking, and which orders they may see: tenancy applied where data is read.

A :class:`Principal` is an authenticated user acting in their one role. Every query
for orders goes through :func:`visible_orders`, which adds the tenant filter of the
role: a center coordinator sees the orders of their center, a site operator and QA
those at their site, logistics and planners all orders (never patient identity), an
administrator none. A row outside the filter is "not found", not "forbidden", so
identifiers of other tenants cannot be probed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session

from cartnet.ledger.roles import Actor, Role
from cartnet.service.errors import Forbidden, NotFound
from cartnet.store.tables import OrderRow


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user: account, printed name, role and tenant (center or site)."""

    user_id: str
    username: str
    name: str
    role: Role
    center: str | None = None
    site: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id, self.name, self.role)

    def require(self, roles: Iterable[Role], what: str) -> None:
        """Refuse (403) unless the role is one of ``roles``."""
        allowed = frozenset(roles)
        if self.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"role {self.role.value!r} may not {what}; roles that may: {names}")


ORDER_READERS = frozenset(
    {Role.CENTER_COORDINATOR, Role.SITE_OPERATOR, Role.QA, Role.LOGISTICS, Role.PLANNER}
)


def visible_orders(principal: Principal, query: Select[OrderRow] | None = None) -> Select[OrderRow]:
    """``query`` (default: all orders) narrowed to what ``principal`` may see."""
    q = select(OrderRow) if query is None else query
    role = principal.role
    if role is Role.CENTER_COORDINATOR:
        return q.where(OrderRow.center == principal.center)
    if role in (Role.SITE_OPERATOR, Role.QA):
        return q.where(OrderRow.site == principal.site)
    if role in (Role.LOGISTICS, Role.PLANNER):
        return q
    return q.where(false())


def load_order(
    session: Session, principal: Principal, order_id: str, *, for_update: bool = False
) -> OrderRow:
    """The order, if ``principal`` may see it; else :class:`NotFound`.

    ``for_update`` locks the row until the transaction ends, so two steps on one order
    queue instead of both reading the same state.
    """
    principal.require(ORDER_READERS, "read orders")
    query = visible_orders(principal, select(OrderRow).where(OrderRow.id == order_id))
    if for_update:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFound(f"no order {order_id!r} visible to you", field="order_id")
    return row
