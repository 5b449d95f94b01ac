"""``cartnet db`` and ``cartnet audit``: migrate the database and verify its audit trail.

``--db`` takes a database URL; without it ``$CARTNET_DATABASE_URL`` or the SQLite file
in the user data directory is used (:func:`cartnet.store.database_url`).
"""

from __future__ import annotations

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cartnet.cli.common import err, fail, out
from cartnet.service.credentials import credential_problems
from cartnet.service.settings import existing_key
from cartnet.store import (
    AuditRepository,
    ChainHeadMissingError,
    DatabaseError,
    data_dir,
    database_url,
    make_engine,
    make_session_factory,
    upgrade,
)
from cartnet.store.records import record_problems

db_app = typer.Typer(
    name="db", help="Create or migrate the cartnet database.", no_args_is_help=True
)
audit_app = typer.Typer(
    name="audit", help="Check the audit trail stored in the database.", no_args_is_help=True
)

DB_OPTION = typer.Option(
    None,
    "--db",
    help="Database URL (sqlite+pysqlite:///file.db or postgresql+psycopg://user@host/db); "
    "default: $CARTNET_DATABASE_URL, else cartnet.db in the user data directory.",
)


def redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


@db_app.command("upgrade")
def db_upgrade(db: str | None = DB_OPTION) -> None:
    """Create the tables, or migrate them to the latest schema (safe to run again)."""
    url = database_url(db)
    try:
        upgrade(url)
    except DatabaseError as e:
        fail(str(e))
    except SQLAlchemyError as e:
        fail(f"cannot migrate {redacted(url)}: {e.__class__.__name__}: {e.args[0]}")
    out.print(f"database at {redacted(url)} is up to date", highlight=False, soft_wrap=True)


@audit_app.command("verify")
def audit_verify(db: str | None = DB_OPTION) -> None:
    """Recompute the hash chain; list every entry edited, deleted, moved or inserted, and
    every record whose stored row disagrees with its audit trail or signature seal."""
    url = database_url(db)
    try:
        engine = make_engine(url)
    except DatabaseError as e:
        fail(str(e))
    signing_key = existing_key("signing_key", data_dir())
    if signing_key is None:
        err.print(
            "note: no signing key (CARTNET_SIGNING_KEY or signing-key.txt in the data "
            "directory): signature seals are not checked, only what they sign",
            highlight=False,
        )
    repository = AuditRepository()
    try:
        with make_session_factory(engine)() as session, session.begin():
            problems = [str(p) for p in repository.verify(session)]
            problems += record_problems(
                session, None if signing_key is None else signing_key.encode()
            )
            problems += credential_problems(session, signing_key)
            count = repository.count(session)
    except ChainHeadMissingError as e:
        fail(str(e))
    except SQLAlchemyError as e:
        fail(
            f"cannot read the audit trail of {redacted(url)}: {e.__class__.__name__}; "
            "is the database migrated (`cartnet db upgrade`)?"
        )
    finally:
        engine.dispose()
    if problems:
        err.print(
            f"[bold red]audit trail does not verify:[/] {len(problems)} problem(s) "
            f"in {count} entries",
            highlight=False,
        )
        for problem in problems:
            err.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1)
    out.print(
        f"audit trail verified: {count} entries; every record agrees with its trail",
        highlight=False,
    )
