"""``cartnet db upgrade`` and ``cartnet audit verify``: messages and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from cartnet.cli.db import audit_app, db_app
from cartnet.ledger import AuditEntry
from cartnet.store import DATABASE_URL_VARIABLE, make_engine

app = typer.Typer()
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
runner = CliRunner()


@pytest.fixture(autouse=True)
def signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A signing key from the environment, so that no key file of whoever runs the tests
    decides whether seals can be checked (without one, verify is incomplete: exit 3)."""
    monkeypatch.setenv("CARTNET_SIGNING_KEY", "test-signing-key-for-the-db-cli-tests")


def _tamper(url: str, sql: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for statement in sql.split(";"):
                connection.execute(text(statement))
    finally:
        engine.dispose()


def test_db_upgrade_creates_a_database_and_reruns_cleanly(database_url: str) -> None:
    """Twice in a row: both exit 0; afterwards the empty trail verifies."""
    for _ in range(2):
        result = runner.invoke(app, ["db", "upgrade", "--db", database_url])
        assert result.exit_code == 0, result.output
        assert "up to date" in result.stdout
    result = runner.invoke(app, ["audit", "verify", "--db", database_url])
    assert result.exit_code == 0
    assert "audit trail verified: 0 entries" in result.stdout


def test_database_url_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --db, $CARTNET_DATABASE_URL names the database."""
    monkeypatch.setenv(DATABASE_URL_VARIABLE, f"sqlite+pysqlite:///{tmp_path / 'env.db'}")
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert (tmp_path / "env.db").exists()


def test_audit_verify_passes_on_a_clean_chain(migrated_url: str, written: list[AuditEntry]) -> None:
    result = runner.invoke(app, ["audit", "verify", "--db", migrated_url])
    assert result.exit_code == 0
    assert "audit trail verified: 4 entries" in result.stdout


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("UPDATE audit_entries SET reason_code = 'other' WHERE sequence = 3", ["sequence 3"]),
        ("DELETE FROM audit_entries WHERE sequence = 2", ["sequence 2", "deleted"]),
        (
            "UPDATE audit_entries SET sequence = -1 WHERE sequence = 1;"
            "UPDATE audit_entries SET sequence = 1 WHERE sequence = 2;"
            "UPDATE audit_entries SET sequence = 2 WHERE sequence = -1",
            ["sequence 1", "sequence 2"],
        ),
    ],
    ids=["edited", "deleted", "reordered"],
)
def test_audit_verify_fails_naming_the_tampered_sequence(
    migrated_url: str,
    sessions: sessionmaker[Session],
    written: list[AuditEntry],
    sql: str,
    named: list[str],
) -> None:
    """Raw SQL edits, deletions and swaps exit 1 and name each sequence concerned."""
    _tamper(migrated_url, sql)
    result = runner.invoke(app, ["audit", "verify", "--db", migrated_url])
    assert result.exit_code == 1
    assert "audit trail does not verify" in result.stderr
    for words in named:
        assert words in result.stderr
    assert "Traceback" not in result.output


def test_audit_verify_on_an_unmigrated_database_says_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["audit", "verify", "--db", f"sqlite+pysqlite:///{tmp_path / 'new.db'}"]
    )
    assert result.exit_code == 1
    assert "cartnet db upgrade" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("url", ["not a url", "mysql+pymysql://u@h/db"])
def test_a_bad_database_url_exits_1_with_a_message(url: str) -> None:
    for command in (["db", "upgrade"], ["audit", "verify"]):
        result = runner.invoke(app, [*command, "--db", url])
        assert result.exit_code == 1
        assert "error:" in result.stderr and "Traceback" not in result.output
