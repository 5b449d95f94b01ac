"""A mistyped database path is refused, not created; serve and db upgrade create one and say so."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartnet.cli import app

runner = CliRunner()

READERS = [
    ["audit", "verify"],
    ["audit", "head"],
    ["users", "list"],
    ["users", "seal"],
    ["users", "unlock", "ada"],
    ["users", "approve", "ada"],
    ["users", "revoke-tokens", "ada"],
    ["users", "disable", "ada", "--reason", "left"],
    ["users", "reset-password", "ada", "--reason", "forgot"],
    ["users", "enrol", "some-token", "--password", "y" * 20],
    ["users", "create", "ada", "--role", "admin", "--name", "Ada", "--password", "x" * 20],
]


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in ("CARTNET_PATIENT_KEY", "CARTNET_SIGNING_KEY", "CARTNET_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CARTNET_DATABASE_URL", raising=False)
    return tmp_path


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_a_command_refuses_a_database_that_does_not_exist(
    environment: Path, command: list[str]
) -> None:
    """Exit 1, one line naming --db and the path; no file is made."""
    missing = environment / "typo" / "cartnet.db"
    result = runner.invoke(app, [*command, "--db", f"sqlite+pysqlite:///{missing}"])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: --db: no database at {missing}")
    assert "`cartnet db upgrade`" in result.stderr
    assert not missing.exists() and not missing.parent.exists()


def test_the_default_database_is_not_created_by_a_reader(environment: Path) -> None:
    result = runner.invoke(app, ["users", "list"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the default database: no database at ")
    assert not list((environment / "data").rglob("*.db"))


def test_the_environment_variable_is_named_when_it_is_wrong(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARTNET_DATABASE_URL", f"sqlite:///{environment / 'nope.db'}")
    result = runner.invoke(app, ["audit", "head"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: $CARTNET_DATABASE_URL: no database at ")


def test_db_upgrade_creates_a_database_and_says_so_once(environment: Path) -> None:
    path = environment / "new.db"
    first = runner.invoke(app, ["db", "upgrade", "--db", f"sqlite:///{path}"])
    assert first.exit_code == 0, first.output
    assert f"created a new database at {path}" in first.stderr
    again = runner.invoke(app, ["db", "upgrade", "--db", f"sqlite:///{path}"])
    assert again.exit_code == 0 and "created" not in again.stderr
    listed = runner.invoke(app, ["users", "list", "--db", f"sqlite:///{path}"])
    assert listed.exit_code == 0, listed.output


def test_serve_creates_a_database_and_says_so(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: started.append(a))
    path = environment / "served.db"
    result = runner.invoke(app, ["serve", "--db", f"sqlite:///{path}"])
    assert result.exit_code == 0, result.output
    assert f"created a new database at {path}" in result.stderr
    assert path.is_file() and started
