"""The planner's workspace in Chromium: a comparison started from the form runs in the
server's background runner, its progress bar moves to the end, and the result page gives
the EU time-to-treatment difference. Every page loads without console errors or CSP
violations (the ``web`` fixture checks)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from tests.web.browser import LiveServer, Watched, live_server, watched_context


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("planner")) as running:
        yield running


@pytest.fixture
def web(browser: Browser, server: LiveServer, tmp_path: Path) -> Iterator[Watched]:
    """A fresh browser context (no cookies) whose pages are watched for errors."""
    with watched_context(browser, server.url, tmp_path) as watched:
        yield watched


def test_a_planner_compares_the_2020_scenarios_in_the_browser(web: Watched) -> None:
    page = web.page
    web.login("planner")
    web.open("/planner")
    page.locator("#f-scenario-before-ema-2020").check()
    page.locator("#f-scenario-after-ema-2020").check()
    page.get_by_label("Replications").fill("2")
    page.get_by_label("Horizon (days)").fill("60")
    page.get_by_label("Warm-up (days)").fill("10")
    web.shot("planner-workspace")
    page.get_by_role("button", name="Start the comparison").click()
    expect(page).to_have_url(re.compile(r"/planner/jobs/job_\w+$"))
    bar = page.locator("progress#job-bar")
    expect(bar).to_be_visible()
    result = page.get_by_role("link", name="See the result")
    expect(result).to_be_visible(timeout=120_000)  # the page reloads itself when the job ends
    expect(bar).to_have_attribute("value", "4")
    web.shot("planner-job")
    result.click()
    headline = page.locator("section.headline").first
    expect(headline).to_contain_text(
        "after-ema-2020/earliest compared with before-ema-2020", timeout=30_000
    )
    expect(headline).to_contain_text(re.compile(r"EU: time to treatment [−+]?\d"))
    expect(page.locator("figure.twin img").first).to_be_visible()
    web.shot("planner-result", full_page=False)
