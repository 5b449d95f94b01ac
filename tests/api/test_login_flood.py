"""Finding 1 of issue 13: a login flood must not stall the service.

A real ``cartnet serve`` (one uvicorn process, production argon2 parameters) is flooded
with wrong logins by 64 concurrent clients for 10 s, each from ever new addresses
(``X-Forwarded-For``, which uvicorn trusts from loopback), so the per-address throttle
cannot stop them and only the hashing slots stand between the flood and the server.
Meanwhile ``/healthz`` and an authenticated write (enrolling an order) must still answer
within 200 ms at the 99th percentile, and the server's memory must stay bounded. This is
the behaviour the issue demands, not a benchmark: before the fix, 48 clients made
``/healthz`` take 7.6 s.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from tests.api.conftest import PASSWORD

from cartnet.ledger.roles import Role
from cartnet.service import accounts
from cartnet.service.context import ServiceContext
from cartnet.service.schemas import NewUser
from cartnet.service.settings import ServiceSettings, new_key

START = "import sys; from cartnet.cli import main; sys.argv[0] = 'cartnet'; main()"
CLIENTS = 64
SECONDS = 10.0
BOUND = 0.200
"""p99 latency of /healthz and of an authenticated write during the flood (seconds)."""
MEMORY_GROWTH = 200 * 2**20
"""Bytes the server may grow during the flood (the hashing slots hold 19 MiB each)."""

FLOOD = r"""
import asyncio, json, random, sys, time
import httpx

async def main(base, seconds, clients):
    end = time.monotonic() + seconds
    counts = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        async def one(i):
            n = 0
            while time.monotonic() < end:
                n += 1
                address = f"10.{i}.{n // 256 % 256}.{n % 256}"
                body = {"username": random.choice(["coordinator", f"nobody{i}"]),
                        "password": "a wrong guess " + str(n)}
                try:
                    r = await client.post("/api/v1/auth/tokens", json=body,
                                          headers={"X-Forwarded-For": address})
                    key = str(r.status_code)
                except httpx.HTTPError as e:
                    key = type(e).__name__
                counts[key] = counts.get(key, 0) + 1
        await asyncio.gather(*(one(i) for i in range(clients)))
    print(json.dumps(counts))

asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@pytest.fixture
def server(migrated_url: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    settings = ServiceSettings(
        database_url=migrated_url, patient_key=new_key(), signing_key=new_key()
    )
    ctx = ServiceContext.open(settings, migrate=False)
    accounts.create_user(
        ctx,
        accounts.SYSTEM,
        NewUser(
            username="coordinator",
            printed_name="Carla Coordinator",
            password=PASSWORD,
            role=Role.CENTER_COORDINATOR,
            center="dana-farber",
        ),
    )
    ctx.close()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTNET_")}
    env |= {
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "CARTNET_PATIENT_KEY": settings.patient_key,
        "CARTNET_SIGNING_KEY": settings.signing_key,
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    args = ["serve", "--db", migrated_url, "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(
        [sys.executable, "-c", START, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(10)


def test_a_login_flood_leaves_health_and_writes_fast_and_memory_bounded(
    server: tuple[str, int],
) -> None:
    base, pid = server
    client = httpx.Client(base_url=base, timeout=10)
    login = client.post(
        "/api/v1/auth/tokens", json={"username": "coordinator", "password": PASSWORD}
    )
    assert login.status_code == 201, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    patient = {
        "given_name": "Maria",
        "family_name": "Musterfrau",
        "date_of_birth": "1961-04-12",
        "hospital_number": "DF-55812",
    }
    body = {
        "product": "tisagenlecleucel",
        "earliest_apheresis": (date.today() + timedelta(days=5)).isoformat(),
        "patient": patient,
    }
    assert client.post("/api/v1/orders", json=body, headers=headers).status_code == 201
    quiet: list[float] = []
    for _ in range(10):
        started = time.perf_counter()
        assert client.post("/api/v1/orders", json=body, headers=headers).status_code == 201
        quiet.append(time.perf_counter() - started)
    assert client.get("/healthz").status_code == 200
    baseline = _rss(pid)

    flood = subprocess.Popen(
        [sys.executable, "-c", FLOOD, base, str(SECONDS), str(CLIENTS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    peak = baseline
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss(pid))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(2.0)  # let the flood start (a new Python process) and reach full strength
    health: list[float] = []
    writes: list[float] = []
    try:
        end = time.monotonic() + SECONDS - 3.0
        while time.monotonic() < end:
            started = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            health.append(time.perf_counter() - started)
            started = time.perf_counter()
            made = client.post("/api/v1/orders", json=body, headers=headers)
            writes.append(time.perf_counter() - started)
            assert made.status_code == 201, made.text
            time.sleep(0.02)
        out, err = flood.communicate(timeout=60)
    finally:
        stop.set()
        watcher.join()
        if flood.poll() is None:
            flood.kill()
    counts = json.loads(out or "{}")
    assert sum(counts.values()) > CLIENTS * 2, (counts, err.decode())
    assert counts.get("429", 0) > 0, counts  # the slots refused what they could not take
    assert counts.get("401", 0) > 0, counts  # and checked what they could
    said = (
        f"p99 /healthz {_p99(health) * 1000:.0f} ms, write {_p99(writes) * 1000:.0f} ms over "
        f"{len(health)} rounds (write without flood: max {max(quiet) * 1000:.0f} ms); "
        f"flood answers {counts}; RSS {baseline >> 20} -> {peak >> 20} MiB"
    )
    print(said)
    assert _p99(health) < BOUND, said
    assert _p99(writes) < BOUND, said
    assert peak - baseline < MEMORY_GROWTH, said
    assert client.get("/healthz").status_code == 200
