"""The quota page in Chromium: a planner follows the workspace's link, adds a quota for
a trial from the form and sees it listed with what it holds, then retires it. Every
page loads without console errors or CSP violations (the ``web`` fixture checks)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from tests.web.browser import LiveServer, Watched, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("quotas")) as running:
        yield running


@pytest.fixture
def web(browser: Browser, server: LiveServer, tmp_path: Path) -> Iterator[Watched]:
    context = browser.new_context(base_url=server.url)
    watched = Watched(context.new_page(), server.url, shots=tmp_path)
    yield watched
    context.close()
    assert watched.problems == [], "\n".join(watched.problems)


def test_a_planner_adds_and_retires_a_trial_quota(web: Watched) -> None:
    page = web.page
    web.login("planner")
    web.open("/planner")
    page.get_by_role("link", name="Quotas of manufacturing slots").click()
    expect(page.get_by_role("heading", name="Quotas of manufacturing slots")).to_be_visible()
    first = date.today() + timedelta(days=10)
    page.get_by_label("Manufacturing site").select_option("morris-plains")
    page.get_by_label("Held for a").select_option("trial")
    page.get_by_label("Holder (center, market or trial id)").fill("ELARA")
    page.get_by_label("Slots", exact=True).fill("2")
    page.get_by_label("First day").fill(first.isoformat())
    page.get_by_label("Last day (included)").fill((first + timedelta(days=13)).isoformat())
    page.get_by_label("Release unused slots this many days ahead").fill("7")
    page.get_by_label("Reason", exact=True).select_option("capacity_change")
    page.get_by_role("button", name="Add the quota").click()
    row = page.locator("table.quotas tbody tr").first
    expect(row).to_contain_text("trial ELARA")
    expect(row).to_contain_text("7 days ahead")
    expect(row.locator("td.num").first).to_have_text("2")
    web.shot("planner-quotas")
    row.get_by_label("Reason").select_option("other")
    row.get_by_label("In words").fill("the trial closed enrolment")
    row.get_by_role("button", name="Retire the quota of ELARA at Morris Plains (Novartis)").click()
    expect(page.locator("table.quotas tbody")).to_contain_text("No quotas")
