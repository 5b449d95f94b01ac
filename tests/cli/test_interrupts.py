"""Ctrl-C and SIGTERM stop a run at once, with no worker left and no file half-written.

These start ``cartnet`` in a subprocess, as a user's shell would, let its worker
processes start, signal the parent only, and look at what is left.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartnet.cli import app

SRC = Path(__file__).resolve().parents[2] / "src"
LONG_RUN = ["kymriah-2020", "-n", "400", "--workers", "2", "--report", "run.html"]
runner = CliRunner()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie has stopped computing


def _start(args: list[str], cwd: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from cartnet.cli import main; main()", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while len(_children(process.pid)) < 2:  # both workers started, so the run is under way
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the workers never started"
        time.sleep(0.1)
    time.sleep(1.0)
    return process, _children(process.pid)


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.mark.parametrize(
    ("command", "sig", "code"),
    [
        ("simulate", signal.SIGINT, 130),
        ("simulate", signal.SIGTERM, 143),
        ("compare", signal.SIGINT, 130),
        ("compare", signal.SIGTERM, 143),
    ],
)
def test_a_signal_stops_the_run_and_its_workers(
    tmp_path: Path, command: str, sig: signal.Signals, code: int
) -> None:
    """The parent ends in seconds (not after the queued replications), no worker
    survives it, no traceback is printed and no report file is left behind."""
    extra = ["-p", "earliest", "-p", "nearest"] if command == "compare" else []
    process, workers = _start([command, *LONG_RUN, *extra], tmp_path)
    process.send_signal(sig)
    try:
        _, stderr = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure this test guards
        process.kill()
        pytest.fail(f"{command} still running 15 s after {sig.name}")
    assert process.returncode == code, stderr.decode()
    assert "Traceback" not in stderr.decode()
    time.sleep(0.5)
    assert [w for w in workers if _alive(w)] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (f"tcp://127.0.0.1:{_closed_port()}", "cannot reach the Dask scheduler at tcp://127.0.0.1"),
        ("tcp://HOST:8786", "Dask scheduler at tcp://HOST:8786"),
        ("bogus", "'bogus' is not a Dask scheduler address"),
        ("tcp://10.0.0.5:99999", "port 99999 is outside 1-65535"),
    ],
)
def test_an_unreachable_scheduler_fails_with_a_clear_message(
    example_path: Path, address: str, message: str
) -> None:
    """Checked before any work: the option, the address and why, in one line; exit 1."""
    pytest.importorskip("distributed")
    result = runner.invoke(app, ["simulate", str(example_path), "-n", "2", "--scheduler", address])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: --scheduler: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
