"""A live ``cartnet serve`` and Debian's Chromium driven by Playwright, for browser tests.

The server is a real subprocess on a free loopback port over a fresh SQLite file, with
one user per role made beforehand. Chromium is the system's (``/usr/bin/chromium``,
installed by ``.ci/run``); Playwright never downloads a browser. Every page a test opens
is watched for console errors and CSP violations (:class:`Watched`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Response
from tests.api.conftest import PASSWORD, make_users

from cartnet.service.context import ServiceContext
from cartnet.service.settings import ServiceSettings, new_key

CHROMIUM = os.environ.get("CARTNET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""The flags that keep Chromium off the (closed) network; it runs as root in CI."""
CLI = [sys.executable, "-c", "from cartnet.cli import main; main()"]
_PAGES = frozenset({"document", "fetch", "xhr"})
"""Requests whose 4xx answers are the application's to give (pages, htmx swaps)."""
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A running ``cartnet serve``: its address, database and keys."""

    url: str
    database_url: str
    environment: dict[str, str]
    process: subprocess.Popen[bytes]

    def api(self, username: str) -> httpx.Client:
        """An API client logged in as ``username`` (bearer token)."""
        client = httpx.Client(base_url=self.url + "/api/v1", timeout=30)
        token = client.post("/auth/tokens", json={"username": username, "password": PASSWORD})
        assert token.status_code == 201, token.text
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        return client

    def cartnet(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the ``cartnet`` command on the server's database, keys and settings."""
        return subprocess.run(
            [*CLI, *args],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=120,
        )


@contextmanager
def live_server(folder: Path) -> Iterator[LiveServer]:
    """Start ``cartnet serve`` with the test users; stop it at the end."""
    database_url = f"sqlite+pysqlite:///{folder / 'portal.db'}"
    keys = {"patient_key": new_key(), "signing_key": new_key()}
    settings = ServiceSettings(database_url=database_url, **keys)
    ctx = ServiceContext.open(settings)
    make_users(ctx)
    ctx.close()
    env = {
        **os.environ,
        "CARTNET_DATABASE_URL": database_url,
        "CARTNET_PATIENT_KEY": keys["patient_key"],
        "CARTNET_SIGNING_KEY": keys["signing_key"],
        "XDG_DATA_HOME": str(folder / "data"),
    }
    with serving(env) as (url, process):
        yield LiveServer(url, database_url, env, process)


@contextmanager
def serving(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``cartnet serve`` on a free loopback port with ``env``, once it answers; stopped after."""
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate()
            raise RuntimeError(f"cartnet serve did not start: {err.decode(errors='replace')}")
        time.sleep(0.2)
    try:
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def watched_context(browser: Browser, url: str, shots: Path) -> Iterator[Watched]:
    """A fresh browser context (no cookies) whose pages are watched; none may misbehave."""
    context = browser.new_context(base_url=url)
    watched = Watched(context.new_page(), url, shots=shots)
    yield watched
    context.close()
    assert watched.problems == [], "\n".join(watched.problems)


@dataclass
class Watched:
    """A browser page whose console errors and CSP violations are collected."""

    page: Page
    base: str
    problems: list[str] = field(default_factory=list)
    shots: Path | None = None

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda err: self.problems.append(f"page error: {err}"))
        self.page.on("response", self._response)
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog: Dialog) -> None:
        # a page of ours never opens a dialog: one means injected script ran
        self.problems.append(f"dialog {dialog.type} on {self.page.url}: {dialog.message}")
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        # Chromium logs every 4xx answer as "Failed to load resource"; a refused form
        # (422) or an order of another center (404) is expected, so answers are judged
        # by _response instead: a server error, or any asset that fails to load.
        if message.text.startswith("Failed to load resource: the server responded"):
            return
        if message.type == "error" or "Content Security Policy" in message.text:
            where = message.location.get("url", "")
            said = f"{message.text} ({where})"
            self.problems.append(f"console {message.type} on {self.page.url}: {said}")

    def _response(self, response: Response) -> None:
        kind = response.request.resource_type
        if response.status >= 500 or (response.status >= 400 and kind not in _PAGES):
            self.problems.append(f"{response.status} for {kind} {response.url}")

    def open(self, path: str) -> Page:
        self.page.goto(self.base + path)
        return self.page

    def login(self, username: str, password: str = PASSWORD) -> None:
        self.open("/login")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_load_state("networkidle")

    def logout(self) -> None:
        self.page.get_by_role("button", name="Log out").click()
        self.page.wait_for_url("**/login")

    def shot(self, name: str, *, full_page: bool = True) -> None:
        """A screenshot of the page as a test artifact (and for the README if asked)."""
        if self.shots is not None:
            self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=full_page)
        if os.environ.get("CARTNET_UPDATE_SCREENSHOTS") and self.shots is not None:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.shots / f"{name}.png", SCREENSHOTS / f"{name}.png")
