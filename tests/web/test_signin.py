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
