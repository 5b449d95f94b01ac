"""The portal over a test client: the kymriah network, one user per role, logged in.

``portal.as_user("qa")`` gives a client whose cookies hold a live session of that user;
``portal.csrf("qa")`` is the token its forms must carry. Browser tests (a real Chromium)
live in ``test_browser.py`` and start a real ``cartnet serve``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.api.conftest import PASSWORD, USERS, make_users, settings_for
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS

from cartnet.api import create_app
from cartnet.service import orders
from cartnet.service.access import Principal
from cartnet.service.accounts import check_credentials
from cartnet.service.context import ServiceContext
from cartnet.service.schemas import BookChain, NewOrder, OrderView, PatientIdentity

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Portal:
    """The application and a logged-in client per user name."""

    ctx: ServiceContext
    app: Any
    clients: dict[str, TestClient] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def as_user(self, username: str) -> TestClient:
        if username not in self.clients:
            client = TestClient(self.app, raise_server_exceptions=False)
            login = client.get("/login")
            token = CSRF.search(login.text)
            assert token is not None, login.text
            response = client.post(
                "/login",
                data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
                follow_redirects=False,
            )
            assert response.status_code == 303, response.text
            home = client.get(response.headers["location"])
            found = CSRF.search(home.text)
            assert found is not None, home.text
            self.clients[username] = client
            self.tokens[username] = found.group(1)
        return self.clients[username]

    def csrf(self, username: str) -> str:
        self.as_user(username)
        return self.tokens[username]

    def post(self, username: str, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        """A form post with the user's CSRF token; redirects are not followed."""
        client = self.as_user(username)
        body = {"csrf_token": self.csrf(username), **(data or {})}
        return client.post(path, data=body, follow_redirects=False, **kw)

    def principal(self, username: str) -> Principal:
        return check_credentials(self.ctx, username, PASSWORD)

    def enrolled(self, username: str = "coordinator", days_ahead: int = 3) -> OrderView:
        """An order enrolled through the service, as a coordinator would."""
        new = NewOrder(
            product="tisagenlecleucel",
            earliest_apheresis=date.today() + timedelta(days=days_ahead),
            patient=PatientIdentity(
                given_name="Maria",
                family_name="Musterfrau",
                date_of_birth=date(1961, 4, 12),
                hospital_number="DF-55812",
            ),
        )
        return orders.enroll(self.ctx, self.principal(username), new)

    def booked(self, username: str = "coordinator") -> OrderView:
        """An order enrolled and booked on its first offer."""
        order = self.enrolled(username)
        who = self.principal(username)
        first = orders.offers(self.ctx, who, order.id).offers[0]
        return orders.book(self.ctx, who, order.id, BookChain(site=first.site, start=first.start))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright launches Debian's Chromium, never a downloaded one."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture
def portal(migrated_url: str) -> Iterator[Portal]:
    ctx = ServiceContext.open(settings_for(migrated_url), migrate=False)
    make_users(ctx)
    app = create_app(ctx)
    result = Portal(ctx, app)
    yield result
    for client in result.clients.values():
        client.close()
    ctx.close()


__all__ = ["PASSWORD", "USERS", "Portal"]
