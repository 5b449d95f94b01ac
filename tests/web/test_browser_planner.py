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
from tests.web.browser import (
    DemoServer,
    LiveServer,
    Watched,
    demo_server,
    live_server,
    watched_context,
)

from cartnet.ledger.roles import Role


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


def test_a_planner_designs_a_network_and_checks_a_network_file(web: Watched) -> None:
    page = web.page
    web.login("planner")
    web.open("/planner")
    page.get_by_label("Instance").select_option("ishipment")
    page.get_by_label("Scale").fill("100")
    page.get_by_label("Design time limit (seconds)").fill("20")
    page.get_by_role("button", name="Start the design").click()
    result = page.get_by_role("link", name="See the result")
    expect(result).to_be_visible(timeout=120_000)
    result.click()
    expect(page).to_have_url(re.compile(r"/planner/jobs/job_\w+/design$"))
    expect(page.locator("#design-status")).to_have_text(re.compile(r"^(optimal|feasible)$"))
    expect(page.get_by_role("table", name=re.compile("Sites to open"))).to_be_visible()
    web.open("/planner/network")
    page.get_by_label("Or paste its text").fill("name: x\nsites: 3\n")
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator("#c-problems")).to_contain_text("line 2")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("planner-demo")) as running:
        yield running


@pytest.fixture
def demo_web(browser: Browser, demo: DemoServer, tmp_path: Path) -> Iterator[Watched]:
    with watched_context(browser, demo.url, tmp_path) as watched:
        yield watched


def test_a_planner_optimizes_the_demo_orders_and_applies_a_move(
    demo_web: Watched, demo: DemoServer
) -> None:
    page = demo_web.page
    planner = demo.logins.login(Role.PLANNER)
    demo_web.login(planner.username, planner.password)
    demo_web.open("/planner")
    page.get_by_label("Solver time limit (seconds)").fill("20")
    page.get_by_role("button", name="Start the optimization").click()
    expect(page).to_have_url(re.compile(r"/planner/jobs/job_\w+$"))
    result = page.get_by_role("link", name="See the result")
    expect(result).to_be_visible(timeout=120_000)
    result.click()
    expect(page).to_have_url(re.compile(r"/planner/jobs/job_\w+/plan$"))
    expect(page.locator("#plan-status")).to_have_text(re.compile(r"^(optimal|feasible)$"))
    pending = page.locator("table.moves tr.move-pending")
    expect(pending.first).to_be_visible()  # the demo's bookings leave the optimizer moves
    row_id = pending.first.get_attribute("id")
    assert row_id is not None
    pending.first.locator("input[name=moves]").check()
    page.get_by_label("Your password (to sign)").fill(planner.password)
    demo_web.shot("planner-plan")
    page.get_by_role("button", name="Apply the selected moves").click()
    expect(page.locator("#outcome h2")).to_have_text("Applied: 1 of 1 move(s)")
    expect(page.locator("#outcome")).to_contain_text(f"{planner.printed_name} (")
    expect(page.locator(f"#{row_id}")).to_have_class("move-applied")
    expect(page.locator("#applications")).to_be_visible()
    demo_web.open("/planner/network")
    expect(page.locator("#s-valid")).to_contain_text("Valid: network kymriah-2020")
    expect(page.locator("#s-L1")).to_be_attached()


def test_a_coordinator_gets_no_planner_page(demo_web: Watched, demo: DemoServer) -> None:
    coordinator = demo.logins.login(Role.CENTER_COORDINATOR, "dana-farber")
    demo_web.login(coordinator.username, coordinator.password)
    for path in ("/planner", "/planner/network", "/planner/jobs/job_0/plan", "/tower"):
        answer = demo_web.page.goto(demo.url + path)
        assert answer is not None and answer.status in (403, 404), path
