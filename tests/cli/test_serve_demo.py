"""``cartnet serve --demo``: a running demo server with printed logins that work, and the
refusals that keep the demo away from real data."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartnet.cli import app

runner = CliRunner()
START = "import sys; from cartnet.cli import main; sys.argv[0] = 'cartnet'; main()"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def _login(base: str, username: str, password: str) -> int:
    request = urllib.request.Request(
        base + "/api/v1/auth/tokens",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_serve_demo_starts_prints_working_logins_and_a_verified_database(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTNET_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    # A real database named in the environment must not receive demo orders.
    env["CARTNET_DATABASE_URL"] = f"sqlite+pysqlite:///{tmp_path / 'real.db'}"
    out, errors = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("w") as stdout, errors.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-c", START, "serve", "--demo", "--port", str(port)],
            stdout=stdout,
            stderr=stderr,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # a loaded CI machine fills the demo slowly
        while _get(base + "/healthz") != 200:
            assert server.poll() is None, errors.read_text()
            assert time.monotonic() < deadline, "the demo server did not answer /healthz"
            time.sleep(0.25)
        printed = out.read_text()
        assert f"portal:   {base}/" in printed and f"API docs: {base}/docs" in printed
        rows = re.findall(
            r"^(\S+)\s+(\S+)\s+(\S+)\s+((?:[a-z0-9]{4}-){3}[a-z0-9]{4})\s", printed, re.M
        )
        roles = {role for role, *_ in rows}
        assert roles == {
            "admin",
            "center_coordinator",
            "site_operator",
            "qa",
            "logistics",
            "planner",
        }
        for _, _, username, password in rows:
            assert _login(base, username, password) == 201, username
        assert _login(base, rows[0][2], "not-the-password") == 401
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert not (tmp_path / "real.db").exists()
    database = re.search(r"^database: (\S+)$", printed, re.M)
    assert database is not None and "cartnet-demo-" in database.group(1)
    verified = runner.invoke(
        app,
        ["audit", "verify", "--db", database.group(1)],
        env={"XDG_DATA_HOME": env["XDG_DATA_HOME"]},
    )
    assert verified.exit_code == 0, verified.output


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in ("CARTNET_PATIENT_KEY", "CARTNET_SIGNING_KEY", "CARTNET_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_serve_demo_refuses_a_database_that_holds_data(
    environment: Path, migrated_url: str
) -> None:
    made = runner.invoke(
        app,
        ["users", "create", "ada", "--role", "admin", "--name", "Ada Admin"],
        env={
            "CARTNET_NEW_PASSWORD": "long enough passphrase",
            "CARTNET_DATABASE_URL": migrated_url,
        },
    )
    assert made.exit_code == 0, made.output
    refused = runner.invoke(app, ["serve", "--demo", "--db", migrated_url])
    assert refused.exit_code == 1
    assert "already holds data (1 users, 1 audit entries)" in refused.output
    assert "--demo needs a new or empty database" in refused.output


def test_serve_demo_refuses_another_network(environment: Path) -> None:
    refused = runner.invoke(app, ["serve", "--demo", "--network", "two-sites.yaml"])
    assert refused.exit_code == 1
    assert "--demo runs on the kymriah-2020 network" in refused.output
