"""The control tower in a real browser, on the demo's data: a live ``cartnet serve`` over a
database filled by :func:`cartnet.service.demo.fill_demo`, with ``tower_qa_read`` set so
that QA can close an exception from the tower. Every page must load with no console
error and no CSP violation (:class:`tests.web.browser.Watched`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from tests.web.browser import DemoServer, Watched, demo_server

from cartnet.ledger.roles import Role

TOWER_URLS = ("/tower", "/tower/risks", "/tower/exceptions", "/tower/capacity", "/tower/world.svg")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """``cartnet serve`` on the demo's orders, QA allowed to read the tower."""
    with demo_server(tmp_path_factory.mktemp("tower"), "tower_qa_read: true\n") as running:
        yield running


@pytest.fixture
def web(browser: Browser, demo: DemoServer, tmp_path: Path) -> Iterator[Watched]:
    context = browser.new_context(base_url=demo.url)
    watched = Watched(context.new_page(), demo.url, shots=tmp_path)
    yield watched
    context.close()
    assert watched.problems == [], "\n".join(watched.problems)


def login(web: Watched, demo: DemoServer, role: Role, tenant: str | None = None) -> None:
    account = demo.logins.login(role, tenant)
    web.login(account.username, account.password)


def test_the_planner_sees_the_network_and_every_open_exception(
    web: Watched, demo: DemoServer
) -> None:
    """The planner lands on the tower: the map, the stages, the bell; the queue names who
    must act on each of the demo's exceptions (a COI mismatch, an excursion, an OOS)."""
    page = web.page
    login(web, demo, Role.PLANNER)
    expect(page).to_have_url(re.compile(r"/tower$"))
    expect(page.get_by_role("heading", name="Control tower")).to_be_visible()
    expect(page.locator("svg.network-map circle.order").first).to_be_attached()
    expect(page.locator("#bell")).to_have_attribute("hx-trigger", "every 30s")
    expect(page.get_by_role("table", name=re.compile("Days in the present state"))).to_be_visible()
    web.shot("tower-home")
    page.get_by_role("navigation", name="Control tower").get_by_role(
        "link", name="Exceptions"
    ).click()
    expect(page).to_have_url(re.compile(r"/tower/exceptions$"))
    expect(page.locator("p.count")).to_contain_text("3 open exception(s)")
    table = page.locator("table.exceptions")
    for kind in ("coi mismatch", "temperature excursion", "oos"):
        expect(table).to_contain_text(kind)
    expect(table).to_contain_text("qa · Morris Plains")
    expect(table).to_contain_text("qa · Les Ulis")
    expect(table.get_by_role("button")).to_have_count(0)  # a planner closes nothing
    page.get_by_label("Kind").select_option("oos")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("p.count")).to_contain_text("1 open exception(s)")
    web.shot("tower-exceptions")
    web.open("/tower/capacity")
    expect(page.get_by_role("table", name=re.compile("Manufacturing starts"))).to_be_visible()
    web.shot("tower-capacity")
    web.open("/tower/risks")
    expect(page.locator("p.count")).to_contain_text("order(s) at risk")
    web.logout()
    login(web, demo, Role.LOGISTICS)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Control tower").click()
    expect(page).to_have_url(re.compile(r"/tower$"))
    web.shot("tower-logistics")


def test_qa_closes_an_exception_from_the_tower_with_a_reason(
    web: Watched, demo: DemoServer
) -> None:
    """QA (allowed by the settings) sees the whole queue and closes their site's COI
    mismatch with a reason; it leaves the queue."""
    page = web.page
    login(web, demo, Role.QA, "morris-plains")
    web.open("/tower/exceptions?kind=coi_mismatch")
    expect(page.locator("p.count")).to_contain_text("1 open exception(s)")
    form = page.locator("form.close-exception")
    expect(form).to_have_count(1)
    form.get_by_label("Reason code").select_option("other")
    form.get_by_label("Reason (what QA found)").fill("bag of another order caught at receipt")
    web.shot("tower-qa-close")
    form.get_by_role("button", name=re.compile("Close exception")).click()
    expect(page).to_have_url(re.compile(r"/tower/exceptions\?kind=coi_mismatch$"))
    expect(page.locator("p.count")).to_contain_text("0 open exception(s)")
    web.open("/tower/exceptions")
    expect(page.locator("p.count")).to_contain_text("2 open exception(s)")
    # Les Ulis' exceptions are shown to this QA, but only to read
    expect(page.locator("form.close-exception")).to_have_count(0)


def test_a_center_coordinator_is_refused_every_tower_url(web: Watched, demo: DemoServer) -> None:
    login(web, demo, Role.CENTER_COORDINATOR, "dana-farber")
    expect(web.page.get_by_role("navigation", name="Main")).not_to_contain_text("Control tower")
    for path in TOWER_URLS:
        answer = web.page.goto(demo.url + path)
        assert answer is not None and answer.status == 403, path
        expect(web.page.locator("main")).to_contain_text("may not open the control tower")
