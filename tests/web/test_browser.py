"""The portal in a real browser: Debian's Chromium, driven by Playwright, against a live
``cartnet serve``. Every page opened must load with no console error and no CSP violation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from tests.api.conftest import PASSWORD
from tests.web.browser import LiveServer, Watched, live_server, watched_context

ROLE_HOMES = {
    "coordinator": ("/center", "My center"),
    "operator": ("/site", "My site"),
    "qa": ("/qa", "Quality"),
    "logistics": ("/logistics", "Shipments"),
    "planner": ("/tower", "Control tower"),
    "admin": ("/users", "Users"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("portal")) as running:
        yield running


@pytest.fixture
def web(browser: Browser, server: LiveServer, tmp_path: Path) -> Iterator[Watched]:
    """A fresh browser context (no cookies) whose pages are watched for errors."""
    with watched_context(browser, server.url, tmp_path) as watched:
        yield watched


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


SCAN = "Scan the bag's chain-of-identity code"
SIGN = "Your password (to sign)"


def record_step(
    web: Watched, order_id: str, step: str, scanned: str, *, reload: bool = True
) -> None:
    """Fill a custody page as at the bench and let the scanner's Enter submit it."""
    page = web.open(f"/orders/{order_id}/custody/{step}") if reload else web.page
    page.get_by_label("Place", exact=True).fill("Bench 1 <b>")
    page.get_by_label(SIGN).fill(PASSWORD)
    page.get_by_label(SCAN).fill(scanned)
    page.get_by_label(SCAN).press("Enter")
    page.wait_for_load_state("networkidle")


def tab_to(web: Watched, element_id: str) -> None:
    """Press Tab until the element has the focus (a date field takes several stops)."""
    for _ in range(12):
        web.page.keyboard.press("Tab")
        if web.page.evaluate("document.activeElement.id") == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


def assert_every_field_is_labelled(web: Watched) -> None:
    """Every visible form control has an accessible name (from its label)."""
    controls = web.page.locator("main input:not([type=hidden]), main select, main textarea")
    assert controls.count() > 0
    for i in range(controls.count()):
        expect(controls.nth(i)).to_have_accessible_name(re.compile(r"\S"))


def test_a_therapy_vein_to_vein_in_the_browser(web: Watched, server: LiveServer) -> None:
    """Coordinator enrols and books by keyboard; the site refuses a wrong bag, then
    receives and manufactures; QA tests and releases; the center receives and infuses;
    the audit trail verifies. Another center cannot open the order."""
    page = web.page
    web.login("coordinator")
    web.shot("center-home")
    # enrol with the keyboard only: Tab between the fields, Enter to send
    web.open("/orders/new")
    assert_every_field_is_labelled(web)
    web.shot("enrol")
    page.get_by_label("Product").focus()
    keys = page.keyboard
    soon = date.today() + timedelta(days=3)
    for field, text in (
        ("earliest_apheresis", soon.strftime("%m%d%Y")),
        ("given_name", "Ana <script>alert(1)</script>"),
        ("family_name", '"><img src=x onerror=alert(1)>'),
        ("date_of_birth", "04121961"),
        ("hospital_number", "DF-1"),
    ):
        tab_to(web, f"f-{field}")
        keys.type(text)
    keys.press("Enter")
    expect(page).to_have_url(re.compile(r"/orders/ord_\w+/offers$"))
    order_id = page.url.split("/")[-2]
    expect(page.get_by_role("table").first).to_contain_text("Morris Plains")
    expect(page.locator("table.excluded tbody tr").first).to_be_visible()  # why not there
    web.shot("offers")
    page.get_by_role("button", name=re.compile("^Book")).first.focus()
    keys.press("Enter")
    expect(page).to_have_url(re.compile(rf"/orders/{order_id}$"))
    expect(page.locator("h1")).to_contain_text("booked")
    order = server.api("coordinator").get(f"/orders/{order_id}").json()
    coi = order["coi"]
    record_step(web, order_id, "collection", coi)
    record_step(web, order_id, "handover_to_courier", coi)
    expect(page.locator("h1")).to_contain_text("shipped to site")
    web.shot("order")
    # another center's coordinator gets "not found", as from the API
    web.logout()
    web.login("other_coordinator")
    web.open(f"/orders/{order_id}")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    web.logout()
    # the site: a bag of another order is refused on the spot, and kept
    other = (
        server.api("coordinator")
        .post(
            "/orders",
            json={
                "product": "tisagenlecleucel",
                "earliest_apheresis": soon.isoformat(),
                "patient": {
                    "given_name": "B",
                    "family_name": "C",
                    "date_of_birth": "1970-01-01",
                    "hospital_number": "X-2",
                },
            },
        )
        .json()
    )
    web.login("operator")
    web.shot("site-home")
    record_step(web, order_id, "receipt_at_site", other["coi"])
    expect(page.get_by_role("alert")).to_contain_text("recorded")
    expect(page.locator("#e-scanned")).to_contain_text("scan refused")
    record_step(web, order_id, "receipt_at_site", coi)
    record_step(web, order_id, "start_manufacturing", coi)
    web.open(f"/orders/{order_id}/events/complete_manufacturing")
    page.get_by_label(SIGN).fill(PASSWORD)
    page.get_by_role("button", name=re.compile("^Finish manufacturing")).click()
    expect(page).to_have_url(re.compile(rf"/orders/{order_id}$"))
    expect(page.locator("h1")).to_contain_text("in qc")
    chain = server.api("operator").get(f"/orders/{order_id}/custody-events").json()
    assert [c["accepted"] for c in chain if c["step"] == "receipt_at_site"] == [False, True]
    web.open(f"/orders/{order_id}")
    expect(page.locator("main")).to_contain_text("Bench 1 <b>")  # shown as text
    web.logout()

    # QA: a QC result, then the signed release from the one page that shows everything
    web.login("qa")
    web.shot("qa-home")
    web.open(f"/orders/{order_id}/qc")
    assert_every_field_is_labelled(web)
    page.get_by_label("Test", exact=True).fill("viability")
    page.get_by_label("Result", exact=True).fill("92 % <script>alert(2)</script>")
    page.get_by_label("Specification", exact=True).fill('≥ 80 % "><img src=x onerror=alert(3)>')
    page.get_by_label("Meets the specification?").select_option("yes")
    page.get_by_role("button", name="Record the result").click()
    expect(page.locator("table.qc")).to_contain_text("92 % <script>alert(2)</script>")
    web.open(f"/orders/{order_id}/release")
    expect(page.locator("table.qc")).to_contain_text("viability")
    web.shot("release")
    # the refused scan at the site raised an exception: release waits until QA closes it
    page.get_by_label("Reason code").select_option(index=1)
    found = "Wrong bag scanned <i>first</i>; the right bag was received."
    page.get_by_label("Reason (what QA found)").fill(found)
    page.get_by_role("button", name=re.compile("^Close exception")).click()
    expect(page.get_by_text("No open exceptions.")).to_be_visible()
    page.get_by_label("Place", exact=True).fill("QA office")
    page.get_by_label(SIGN).fill(PASSWORD)
    page.get_by_label(SCAN).fill(coi)
    page.get_by_role("button", name="Release the batch").click()
    expect(page).to_have_url(re.compile(rf"/orders/{order_id}$"))
    expect(page.locator("h1")).to_contain_text("released")
    web.logout()

    # logistics hands the bag to the courier; the center receives it and infuses
    web.login("logistics")
    web.open(f"/orders/{order_id}/custody/handover_to_courier_return")
    page.get_by_label("Organisation").fill("Cryo Couriers <AG>")
    record_step(web, order_id, "handover_to_courier_return", coi, reload=False)
    expect(page.locator("h1")).to_contain_text("shipped to center")
    web.logout()
    web.login("coordinator")
    record_step(web, order_id, "receipt_at_center", coi)
    expect(page.locator("h1")).to_contain_text("delivered")
    web.open(f"/orders/{order_id}/infusion")
    assert_every_field_is_labelled(web)
    page.get_by_label("Place", exact=True).fill("Ward 4, bed 2")
    page.get_by_label(SIGN).fill(PASSWORD)
    page.get_by_label(SCAN).fill(coi)
    page.get_by_role("button", name="Record the infusion").click()
    expect(page).to_have_url(re.compile(rf"/orders/{order_id}$"))
    expect(page.locator("h1")).to_contain_text("infused")
    web.shot("infused")
    steps = server.api("coordinator").get(f"/orders/{order_id}").json()
    assert steps["state"] == "infused"
    verified = server.cartnet("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_form_without_its_token_or_session_changes_nothing(
    web: Watched, server: LiveServer
) -> None:
    """A form stripped of its CSRF token is refused; after logout the same form cannot act."""
    page = web.page
    web.login("coordinator")
    api = server.api("coordinator")
    before = len(api.get("/orders", params={"limit": 200}).json()["items"])
    web.open("/orders/new")
    page.evaluate(
        """() => {
            document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove());
            document.body.removeAttribute('hx-headers');
        }"""
    )
    page.get_by_label("Given name").fill("Forged")
    page.get_by_label("Family name").fill("Request")
    page.get_by_label("Date of birth").fill("1970-01-01")
    page.get_by_label("Hospital number").fill("F-1")
    page.get_by_label("Earliest apheresis").fill((date.today() + timedelta(days=3)).isoformat())
    page.get_by_role("button", name=re.compile("^Enrol")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Not allowed")
    expect(page.locator("main")).to_contain_text("CSRF")
    # a form opened before logout, sent after it: the login page, not an order
    web.open("/orders/new")
    form = page.locator("form[action='/orders/new']")
    token = form.locator("input[name=csrf_token]").input_value()
    web.logout()
    answer = page.request.post(
        server.url + "/orders/new",
        form={"csrf_token": token, "given_name": "Late", "family_name": "Form"},
        max_redirects=0,
    )
    assert answer.status in (303, 401, 403), answer.status
    assert len(api.get("/orders", params={"limit": 200}).json()["items"]) == before
