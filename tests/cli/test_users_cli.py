"""``cartnet users``: accounts from the command line, with clean refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartnet.cli import app
from cartnet.service.settings import new_key

runner = CliRunner()


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in ("CARTNET_PATIENT_KEY", "CARTNET_SIGNING_KEY", "CARTNET_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _users(*args: str) -> object:
    return runner.invoke(app, ["users", *args])


def test_create_list_and_revoke(environment: Path, migrated_url: str) -> None:
    created = _users(
        "create",
        "carla",
        "--role",
        "center_coordinator",
        "--center",
        "dana-farber",
        "--name",
        "Carla Ruiz",
        "--password",
        "long enough passphrase",
        "--db",
        migrated_url,
    )
    assert created.exit_code == 0, created.output
    assert "created carla (center_coordinator, dana-farber)" in created.output
    listed = _users("list", "--db", migrated_url)
    assert listed.exit_code == 0
    assert re.search(r"carla\s+center_coordinator\s+dana-farber\s+Carla Ruiz", listed.output)
    revoked = _users("revoke-tokens", "carla", "--db", migrated_url)
    assert revoked.exit_code == 0 and "revoked 0 token(s) of carla" in revoked.output
    assert (environment / "data" / "cartnet" / "patient-key.txt").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "center_coordinator", "--center", "nowhere"], "unknown treatment center"),
        (["--role", "site_operator"], "needs a manufacturing site"),
        (["--role", "admin", "--site", "leipzig"], "has no site"),
        (["--role", "admin", "--password", "short"], "at least 15 characters"),
        (["--role", "wizard"], "wizard"),
    ],
)
def test_bad_accounts_are_refused_cleanly(
    environment: Path, migrated_url: str, args: list[str], message: str
) -> None:
    options = args if "--password" in args else [*args, "--password", "long enough passphrase"]
    result = _users("create", "someone", "--name", "Some One", *options, "--db", migrated_url)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_taken_username_and_foreign_keys_are_refused(
    environment: Path, migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok = [
        "create",
        "ada",
        "--role",
        "admin",
        "--name",
        "Ada",
        "--password",
        "long enough passphrase",
        "--db",
        migrated_url,
    ]
    assert _users(*ok).exit_code == 0
    again = _users(*ok)
    assert again.exit_code == 1 and "username 'ada' is taken" in again.output
    upper = _users("create", "ADA", *ok[2:])
    assert upper.exit_code == 1 and "is taken (as 'ada')" in upper.output
    monkeypatch.setenv("CARTNET_PATIENT_KEY", new_key())
    other = _users("list", "--db", migrated_url)
    assert other.exit_code == 1
    assert "patient key is not the one this database was written with" in other.output


def test_the_account_lifecycle_from_the_command_line(environment: Path, migrated_url: str) -> None:
    """Create without a password (enrolment token), enrol, disable, enable, set a role,
    reset the password, lift a lockout: each a clean command, audited and verified."""
    made = _users("create", "Quinn", "--role", "planner", "--name", "Quinn Q", "--db", migrated_url)
    assert made.exit_code == 0, made.output
    found = re.search(r"enrolment token for Quinn \(one use, until [^)]+\): (\S+)", made.output)
    assert found is not None, made.output
    listed = _users("list", "--db", migrated_url)
    assert "not enrolled" in listed.output
    weak = runner.invoke(
        app,
        ["users", "enrol", found.group(1), "--db", migrated_url],
        input="1q2w3e4r5t6y7u8i\n1q2w3e4r5t6y7u8i\n",
    )
    assert weak.exit_code == 1 and "commonly used" in weak.output, weak.output
    bad = runner.invoke(
        app,
        ["users", "enrol", found.group(1), "--db", migrated_url],
        input="quinn likes long walks\nquinn likes long walks\n",
    )
    assert bad.exit_code == 1 and "may not contain the username" in bad.output
    good = runner.invoke(
        app,
        ["users", "enrol", found.group(1), "--db", migrated_url],
        input="violet tram orbit saffron\nviolet tram orbit saffron\n",
    )
    assert good.exit_code == 0 and "quinn enrolled" in good.output.casefold(), good.output
    reuse = runner.invoke(
        app,
        ["users", "enrol", found.group(1), "--db", migrated_url],
        input="violet tram orbit saffron\nviolet tram orbit saffron\n",
    )
    assert reuse.exit_code == 1 and "unknown or expired enrolment token" in reuse.output
    for args, said in [
        (["disable", "quinn", "--reason", "left"], "quinn: planner, disabled"),
        (["enable", "QUINN", "--reason", "back"], "Quinn: planner, active"),
        (["set-role", "quinn", "--role", "logistics", "--reason", "moved"], "logistics, active"),
        (["set-role", "quinn", "--role", "qa", "--reason", "x"], "needs a manufacturing site"),
        (["unlock", "quinn"], "lockout lifted"),
        (["reset-password", "quinn", "--reason", "forgot"], "enrolment token for Quinn"),
    ]:
        result = _users(*args, "--db", migrated_url)
        assert said.casefold() in result.output.casefold(), (args, result.output)
    listed = _users("list", "--db", migrated_url)
    assert re.search(r"Quinn\s+logistics\s+Quinn Q \(not enrolled\)", listed.output), listed.output
    verified = runner.invoke(app, ["audit", "verify", "--db", migrated_url])
    assert verified.exit_code == 0, verified.output
