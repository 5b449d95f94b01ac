"""``cartnet db`` and ``cartnet audit``: migrate the database and verify its audit trail.

``--db`` takes a database URL; without it ``$CARTNET_DATABASE_URL`` or the SQLite file
in the user data directory is used (:func:`cartnet.store.database_url`).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cartnet.cli.common import err, fail, out
from cartnet.service.settings import existing_key
from cartnet.service.verification import CHECKS, verify_database
from cartnet.store import (
    DATABASE_URL_VARIABLE,
    AuditRepository,
    ChainHeadMissingError,
    DatabaseError,
    data_dir,
    database_url,
    make_engine,
    make_session_factory,
    upgrade,
)
from cartnet.store.verification import Outcome, checkpoint_check, parse_checkpoint

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


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory ones)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def _source(db: str | None) -> str:
    if db:
        return "--db"
    if os.environ.get(DATABASE_URL_VARIABLE):
        return "$" + DATABASE_URL_VARIABLE
    return "the default database"


def valid_database_url(db: str | None) -> str:
    """The database URL, refused (naming where it came from) unless SQLite or PostgreSQL."""
    if db is not None and not db.strip():
        fail("--db: give a database URL, or leave --db out to use the default")
    url = database_url(db)
    try:
        backend: str | None = make_url(url).get_backend_name()
    except ArgumentError:
        backend = None
    if backend not in ("sqlite", "postgresql"):
        fail(
            f"{_source(db)}: {redacted(url)!r} is not a SQLite or PostgreSQL URL; use "
            "sqlite+pysqlite:///path/to/cartnet.db or postgresql+psycopg://user@host/dbname"
        )
    return url


def existing_database(db: str | None) -> str:
    """The database URL, refused when it names a SQLite file that does not exist.

    Opening a SQLite path makes the file; a mistyped ``--db`` would then be migrated
    into a new empty database and the command would report on nothing. Only
    ``cartnet serve`` and ``cartnet db upgrade`` create a database, and say so.
    """
    url = valid_database_url(db)
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        fail(
            f"{_source(db)}: no database at {path} (check the path; `cartnet db upgrade` or "
            "`cartnet serve` creates a new one)"
        )
    return url


def announce_new(url: str, existed: bool) -> None:
    """Say so when a command made a new SQLite database file."""
    path = sqlite_file(url)
    if path is not None and not existed and path.is_file():
        err.print(f"created a new database at {path}", highlight=False, soft_wrap=True)


def database_exists(url: str) -> bool:
    path = sqlite_file(url)
    return path is None or path.is_file()


@db_app.command("upgrade")
def db_upgrade(db: str | None = DB_OPTION) -> None:
    """Create the tables, or migrate them to the latest schema (safe to run again)."""
    url = valid_database_url(db)
    existed = database_exists(url)
    try:
        upgrade(url)
    except DatabaseError as e:
        fail(str(e))
    except SQLAlchemyError as e:
        fail(f"cannot migrate {redacted(url)}: {e.__class__.__name__}: {e.args[0]}")
    announce_new(url, existed)
    out.print(f"database at {redacted(url)} is up to date", highlight=False, soft_wrap=True)


VERIFY_HELP = """Check the database against its audit trail.

Recomputes the hash chain against its head; compares every evidence column of every
GxP record with what its audit entries say; re-checks every e-signature's binding to its
step and, with the signing key, its seal.

Exit status: 0 verified (everything checked, nothing found); 1 problems found (each
is listed); 3 incomplete: nothing found, but something could not be checked (no signing
key, another signing key than the database's, records older than the trail's full
coverage), listed as notices. Only 0 means verified.

The hash chain is not keyed: give --checkpoint with heads printed earlier by
`cartnet audit head` and kept outside the database to prove the trail up to them
was not rewritten."""


CHECKPOINT_OPTION = typer.Option(
    None,
    "--checkpoint",
    help="SEQUENCE:HASH printed earlier by `cartnet audit head` and kept outside the "
    "database; the trail must still hold it (repeatable).",
)


@audit_app.command("verify", help=VERIFY_HELP)
def audit_verify(
    db: str | None = DB_OPTION, checkpoint: list[str] | None = CHECKPOINT_OPTION
) -> None:
    try:
        kept = [parse_checkpoint(text) for text in checkpoint or []]
    except ValueError as e:
        fail(f"--checkpoint: {e}")
    url = existing_database(db)
    try:
        engine = make_engine(url)
    except DatabaseError as e:
        fail(str(e))
    signing_key = existing_key("signing_key", data_dir())
    try:
        with make_session_factory(engine)() as session, session.begin():
            report = verify_database(
                session,
                None if signing_key is None else signing_key.encode(),
                [*CHECKS, *(checkpoint_check(head) for head in kept)],
            )
    except ChainHeadMissingError as e:
        fail(str(e))
    except SQLAlchemyError as e:
        fail(
            f"cannot read the audit trail of {redacted(url)}: {e.__class__.__name__}; "
            "is the database migrated (`cartnet db upgrade`)?"
        )
    finally:
        engine.dispose()
    for notice in report.notices:
        err.print(f"not checked: {notice}", highlight=False, markup=False, soft_wrap=True)
    if report.outcome is Outcome.PROBLEMS:
        err.print(
            f"[bold red]audit trail does not verify:[/] {len(report.problems)} problem(s) "
            f"in {report.entries} entries",
            highlight=False,
        )
        for problem in report.problems:
            err.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(int(Outcome.PROBLEMS))
    if report.outcome is Outcome.INCOMPLETE:
        err.print(
            f"[bold yellow]verification incomplete:[/] no problem found in {report.entries} "
            f"entries, but {len(report.notices)} thing(s) could not be checked (above)",
            highlight=False,
        )
        raise typer.Exit(int(Outcome.INCOMPLETE))
    out.print(
        f"audit trail verified: {report.entries} entries; every record agrees with its trail",
        highlight=False,
    )


@audit_app.command("head")
def audit_head(db: str | None = DB_OPTION) -> None:
    """Print the trail's head as SEQUENCE:HASH, to keep outside the database (a ticket, a
    signed mail, write-once storage) and give to `verify --checkpoint` later."""
    url = existing_database(db)
    try:
        engine = make_engine(url)
    except DatabaseError as e:
        fail(str(e))
    try:
        with make_session_factory(engine)() as session:
            head = AuditRepository().head(session)
    except ChainHeadMissingError as e:
        fail(str(e))
    except SQLAlchemyError as e:
        fail(f"cannot read the audit head of {redacted(url)}: {e.__class__.__name__}")
    finally:
        engine.dispose()
    out.print(f"{head.sequence}:{head.hash}", highlight=False)
