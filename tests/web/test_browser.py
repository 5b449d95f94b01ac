"""The portal in a real browser: Debian's Chromium, driven by Playwright, against a live
``cartnet serve``. Every page opened must load with no console error and no CSP violation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from tests.web.browser import LiveServer, Watched, live_server

ROLE_HOMES = {
    "coordinator": ("/center", "My center"),
    "operator": ("/site", "My site"),
    "qa": ("/qa", "Quality"),
    "logistics": ("/logistics", "Shipments"),
    "planner": ("/orders", "Orders"),
    "admin": ("/users", "Users"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("portal")) as running:
        yield running


@pytest.fixture
def web(browser: Browser, server: LiveServer, tmp_path: Path) -> Iterator[Watched]:
    """A fresh browser context (no cookies) whose pages are watched for errors."""
    context = browser.new_context(base_url=server.url)
    watched = Watched(context.new_page(), server.url, shots=tmp_path)
    yield watched
    context.close()
    assert watched.problems == [], "\n".join(watched.problems)


def test_every_role_logs_in_to_its_home_page(web: Watched) -> None:
    """Each role lands on its own page after login and can log out again."""
    for username, (home, heading) in ROLE_HOMES.items():
        web.login(username)
        expect(web.page).to_have_url(re.compile(re.escape(home) + r"$"))
        expect(web.page.get_by_role("navigation", name="Main")).to_contain_text(heading)
        web.shot(f"home-{username}")
        web.logout()


def test_a_logged_out_browser_is_sent_to_the_login_page(web: Watched) -> None:
    """Without a session every page leads to the login form, which brings the user back."""
    web.open("/orders")
    expect(web.page).to_have_url(re.compile(r"/login\?next=/orders$"))
    web.page.get_by_label("Username").fill("planner")
    web.page.get_by_label("Password").fill("correct horse battery")
    web.page.get_by_role("button", name="Log in").click()
    expect(web.page).to_have_url(re.compile(r"/orders$"))


def test_a_wrong_password_is_shown_next_to_the_form(web: Watched) -> None:
    """A failed login says so on the page and opens no session."""
    web.open("/login")
    web.page.get_by_label("Username").fill("qa")
    web.page.get_by_label("Password").fill("not the password")
    web.page.get_by_role("button", name="Log in").click()
    expect(web.page.get_by_role("alert")).to_contain_text("wrong username or password")
    web.open("/orders")
    expect(web.page).to_have_url(re.compile(r"/login"))
