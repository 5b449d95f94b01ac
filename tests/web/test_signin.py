"""Logging in and out of the portal, sessions and their timeouts, CSRF, page headers."""

from __future__ import annotations

from tests.web.conftest import Portal


def test_each_role_lands_on_its_home_page(portal: Portal) -> None:
    """After login every role is sent to its own page, which names the user."""
    homes = {"coordinator": "/center", "operator": "/site", "qa": "/qa", "logistics": "/logistics",
             "planner": "/orders", "admin": "/users"}  # fmt: skip
    for user, home in homes.items():
        client = portal.as_user(user)
        response = client.get("/", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == home


def test_order_list_and_page_show_what_the_role_may_see(portal: Portal) -> None:
    """The list counts and shows the coordinator's order; the order page has its record."""
    order = portal.booked()
    client = portal.as_user("coordinator")
    listing = client.get("/orders")
    assert listing.status_code == 200
    assert order.coi_eye_readable in listing.text
    assert "<strong>1</strong> order(s) match" in listing.text
    page = client.get(f"/orders/{order.id}")
    assert page.status_code == 200, page.text
    assert order.pseudonym in page.text
    assert "Timeline: planned and actual" in page.text
    other = portal.as_user("other_coordinator")
    assert other.get(f"/orders/{order.id}").status_code == 404
    assert order.coi_eye_readable not in other.get("/orders").text
