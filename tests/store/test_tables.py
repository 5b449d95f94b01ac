"""Orders and custody events: constraints and optimistic locking as a user meets them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from cartnet.store import CustodyEventRow, OrderRow


def _order(order_id: str = "ORD-1", coi: str = "&/CHG123426A1B2C3") -> OrderRow:
    return OrderRow(
        id=order_id,
        coi=coi,
        center="CTR-BERLIN",
        market="DE",
        product="tisagenlecleucel",
        scope="commercial",
        trial=None,
        state="enrolled",
        pseudonym=f"P-{order_id}",
        patient_identity="sealed elsewhere",
        country="DE",
        earliest_apheresis=date(2026, 3, 2),
    )


def test_two_writers_of_one_order_the_second_is_refused(sessions: sessionmaker[Session]) -> None:
    """Optimistic locking: the stale writer gets StaleDataError, the first write stands."""
    with sessions() as session, session.begin():
        session.add(_order())
    first, second = sessions(), sessions()
    try:
        with first.begin():
            mine = first.get_one(OrderRow, "ORD-1")
        with second.begin():
            theirs = second.get_one(OrderRow, "ORD-1")
        with first.begin():
            mine.state = "booked"
        assert mine.version == 2
        with pytest.raises(StaleDataError), second.begin():
            theirs.state = "cancelled"
    finally:
        first.close()
        second.close()
    with sessions() as session:
        assert session.get_one(OrderRow, "ORD-1").state == "booked"


def test_a_coi_is_unique(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        session.add(_order())
    with pytest.raises(IntegrityError), sessions() as session, session.begin():
        session.add(_order("ORD-2"))


def test_custody_event_needs_an_existing_order_and_keeps_its_local_time(
    sessions: sessionmaker[Session],
) -> None:
    """Foreign keys are enforced (SQLite too); the place's UTC offset is kept."""
    local = datetime(2026, 3, 9, 8, 30, tzinfo=timezone(timedelta(hours=1)))

    def event(order_id: str) -> CustodyEventRow:
        return CustodyEventRow(
            order_id=order_id,
            step="collection",
            actor_id="u-001",
            actor_name="Ana Lopez",
            role="center_coordinator",
            organisation="Charité",
            place="Berlin",
            at=local,
            utc_offset_minutes=60,
            temperature_c=4.5,
            scanned="&/CHG123426A1B2C3",
            accepted=True,
            refusal_reason=None,
        )

    with pytest.raises(IntegrityError), sessions() as session, session.begin():
        session.add(event("ORD-404"))
    with sessions() as session, session.begin():
        session.add(_order())
        session.flush()
        session.add(event("ORD-1"))
    with sessions() as session:
        stored = session.query(CustodyEventRow).one()
        assert stored.at == local and stored.at.tzinfo is UTC
        shown = stored.at.astimezone(timezone(timedelta(minutes=stored.utc_offset_minutes)))
        assert shown.isoformat() == "2026-03-09T08:30:00+01:00"
