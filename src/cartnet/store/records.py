"""Do the stored orders say what their audit trail says?

The hash chain proves the trail itself untouched; this check ties the operational rows
to it. Folding every audited change of an order, oldest first, gives the value each
audited field must have now; an ``orders`` row that differs was changed outside the
service (an UPDATE in the database), a row with no trail was inserted outside it, a
trail with no row lost its row.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartnet.store.tables import AuditEntryRow, OrderRow

UNCHECKED = frozenset({"patient_identity"})
"""Audited as "sealed" only: the sealed value itself is not in the trail."""
ORDER_COLUMNS = frozenset(c.key for c in OrderRow.__table__.columns)


def _text(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def order_record_problems(session: Session) -> list[str]:
    """Every orders row that disagrees with its audit trail, as a sentence naming it."""
    expected: dict[str, dict[str, Any]] = {}
    rows = session.execute(
        select(AuditEntryRow.entity_id, AuditEntryRow.sequence, AuditEntryRow.changes)
        .where(AuditEntryRow.entity_type == "order")
        .order_by(AuditEntryRow.sequence)
    )
    for order_id, _sequence, changes in rows:
        fields = expected.setdefault(order_id, {})
        for change in changes if isinstance(changes, list) else []:
            if isinstance(change, list) and len(change) == 3 and change[0] in ORDER_COLUMNS:
                fields[change[0]] = change[2]
    problems: list[str] = []
    seen: set[str] = set()
    for order in session.scalars(select(OrderRow).order_by(OrderRow.id)):
        seen.add(order.id)
        audited = expected.get(order.id)
        if audited is None:
            problems.append(f"order {order.id}: has no audit trail (inserted outside cartnet)")
            continue
        for name, value in sorted(audited.items()):
            if name in UNCHECKED:
                continue
            stored = _text(getattr(order, name))
            if stored != value:
                problems.append(
                    f"order {order.id}: {name} is {stored!r} in the orders table but "
                    f"{value!r} in the audit trail (changed outside cartnet)"
                )
    for order_id in sorted(set(expected) - seen):
        problems.append(
            f"order {order_id}: in the audit trail but not in the orders table "
            "(deleted outside cartnet)"
        )
    return problems
