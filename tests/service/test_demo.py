"""The demo data: every state of the lifecycle, its incidents, working logins, a trail that
verifies, all in the past, and the same orders for the same seed."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from cartnet.cli import app
from cartnet.ledger.lifecycle import OrderEvent, OrderState
from cartnet.ledger.roles import Role
from cartnet.service import Unauthorized, accounts
from cartnet.service.context import ServiceContext
from cartnet.service.demo import DemoError, DemoLogins, fill_demo, require_empty_database
from cartnet.service.settings import ServiceSettings, new_key
from cartnet.store.tables import (
    AuditEntryRow,
    CustodyEventRow,
    OrderExceptionRow,
    OrderRow,
    OrderStepRow,
    QcResultRow,
    SignatureRow,
    TemperatureLogRow,
)

SEED = 7
POSTGRES_URL = os.environ.get("CARTNET_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


def _open(url: str) -> ServiceContext:
    settings = ServiceSettings(database_url=url, patient_key=new_key(), signing_key=new_key())
    return ServiceContext.open(settings)


@pytest.fixture(scope="module")
def sqlite_demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServiceContext, DemoLogins]]:
    url = f"sqlite+pysqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    ctx = _open(url)
    logins = fill_demo(ctx, SEED)
    yield ctx, logins
    ctx.close()


@pytest.fixture(scope="module", params=BACKENDS)
def demo(
    request: pytest.FixtureRequest,
    sqlite_demo: tuple[ServiceContext, DemoLogins],
    postgres_admin: Engine | None,
) -> Iterator[tuple[ServiceContext, DemoLogins]]:
    """A filled demo database on each test backend (the SQLite one is shared)."""
    if request.param == "sqlite":
        yield sqlite_demo
        return
    assert postgres_admin is not None and POSTGRES_URL is not None
    schema = f"cartnet_test_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    ctx = _open(url.render_as_string(hide_password=False))
    try:
        yield ctx, fill_demo(ctx, SEED)
    finally:
        ctx.close()
        with postgres_admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


def _orders(ctx: ServiceContext) -> list[tuple[str, str | None, str, str | None]]:
    """What must not depend on the run: per order, in enrolment order, its tenants and state."""
    with ctx.reading() as session:
        rows = session.execute(
            select(OrderRow.center, OrderRow.site, OrderRow.state, OrderRow.trial).order_by(
                OrderRow.coi
            )
        ).all()
    return [(center, site, state, trial) for center, site, state, trial in rows]


def test_every_lifecycle_state_has_an_order(demo: tuple[ServiceContext, DemoLogins]) -> None:
    ctx, logins = demo
    with ctx.reading() as session:
        states = {
            str(state): int(count)
            for state, count in session.execute(
                select(OrderRow.state, func.count()).group_by(OrderRow.state)
            )
        }
    assert set(states) == {s.value for s in OrderState}
    assert states == logins.states
    assert 30 <= sum(states.values()) <= 60


def test_the_refused_scan_the_excursion_and_the_oos_batch_are_on_record(
    demo: tuple[ServiceContext, DemoLogins],
) -> None:
    ctx, _ = demo
    with ctx.reading() as session:
        kinds = set(session.scalars(select(OrderExceptionRow.kind)))
        refused = session.scalars(
            select(CustodyEventRow).where(CustodyEventRow.accepted.is_(False))
        ).all()
        excursions = session.scalar(select(func.sum(TemperatureLogRow.excursions)))
        oos = session.scalars(
            select(OrderRow).where(OrderRow.state == OrderState.OUT_OF_SPECIFICATION.value)
        ).all()
        failed = session.scalars(
            select(QcResultRow.order_id).where(QcResultRow.passed.is_(False))
        ).all()
        reported = session.scalars(
            select(OrderStepRow.id).where(OrderStepRow.event == OrderEvent.REPORT_OOS.value)
        ).all()
        signed = session.scalars(
            select(SignatureRow.meaning).where(SignatureRow.record_id.in_(reported))
        ).all()
        open_exceptions = session.scalar(
            select(func.count())
            .select_from(OrderExceptionRow)
            .where(OrderExceptionRow.closed_at.is_(None))
        )
        closed_exceptions = session.scalar(
            select(func.count())
            .select_from(OrderExceptionRow)
            .where(OrderExceptionRow.closed_at.is_not(None))
        )
    assert {"scan_mismatch", "temperature_excursion"} <= kinds
    assert refused and all(
        r.refusal_reason and "another therapy" in r.refusal_reason for r in refused
    )
    assert excursions and excursions >= 1
    assert oos and {o.id for o in oos} <= set(failed)
    assert reported and signed == ["review"] * len(reported)
    assert open_exceptions and closed_exceptions


def test_every_demo_login_works_in_its_role_and_tenant(
    demo: tuple[ServiceContext, DemoLogins],
) -> None:
    ctx, logins = demo
    assert {x.role for x in logins.logins} == set(Role)
    assert {x.tenant for x in logins.logins if x.role is Role.CENTER_COORDINATOR} >= {
        "dana-farber",
        "charite-berlin",
    }
    assert {x.tenant for x in logins.logins if x.role is Role.QA} == {"morris-plains", "les-ulis"}
    for login in logins.logins:
        principal = accounts.check_credentials(ctx, login.username, login.password)
        assert (principal.role, principal.center or principal.site) == (login.role, login.tenant)
        with pytest.raises(Unauthorized):
            accounts.check_credentials(ctx, login.username, login.password + "x")
    assert len({x.password for x in logins.logins}) == len(logins.logins)


def test_cartnet_audit_verify_passes_on_the_demo_database(
    demo: tuple[ServiceContext, DemoLogins],
) -> None:
    ctx, _ = demo
    url = ctx.settings.database_url
    assert url is not None
    result = CliRunner().invoke(
        app,
        ["audit", "verify", "--db", url],
        env={"CARTNET_SIGNING_KEY": ctx.settings.signing_key},
    )
    assert result.exit_code == 0, result.output
    assert "audit trail verified" in result.output


def test_the_orders_span_weeks_and_every_time_is_in_the_past(
    demo: tuple[ServiceContext, DemoLogins],
) -> None:
    ctx, _ = demo
    now = datetime.now(UTC)
    with ctx.reading() as session:
        first, last = session.execute(
            select(func.min(OrderRow.created_at), func.max(OrderRow.created_at))
        ).one()
        latest = [
            session.scalar(select(func.max(column)))
            for column in (
                AuditEntryRow.timestamp,
                OrderStepRow.at,
                CustodyEventRow.at,
                QcResultRow.recorded_at,
                SignatureRow.signed_at,
            )
        ]
    assert now - first > timedelta(weeks=4)
    assert now - last < timedelta(days=1)
    assert all(t is not None and t.astimezone(UTC) <= now for t in latest)
    assert ctx.clock().tzinfo is not None and now - ctx.clock() < timedelta(minutes=1)


def test_the_same_seed_gives_the_same_orders(
    sqlite_demo: tuple[ServiceContext, DemoLogins], tmp_path: Path
) -> None:
    first, first_logins = sqlite_demo
    again = _open(f"sqlite+pysqlite:///{tmp_path / 'again.db'}")
    try:
        logins = fill_demo(again, SEED)
        assert _orders(again) == _orders(first)
        assert logins.states == first_logins.states
        assert [x.username for x in logins.logins] == [x.username for x in first_logins.logins]
        assert all(
            a.password != b.password
            for a, b in zip(logins.logins, first_logins.logins, strict=True)
        )
    finally:
        again.close()


def test_a_database_with_data_is_refused(demo: tuple[ServiceContext, DemoLogins]) -> None:
    ctx, _ = demo
    assert ctx.settings.database_url is not None
    with pytest.raises(DemoError, match="already holds data"):
        require_empty_database(ctx.settings.database_url)
    with pytest.raises(DemoError, match="already holds data"):
        fill_demo(ctx, SEED)


def test_an_empty_migrated_database_is_accepted(tmp_path: Path) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'empty.db'}"
    require_empty_database(url)
    _open(url).close()
    require_empty_database(url)
