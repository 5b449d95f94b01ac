"""A running API on each test database: the kymriah network, one user per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cartnet.api import create_app
from cartnet.ledger.roles import Role
from cartnet.service import accounts
from cartnet.service.context import ServiceContext
from cartnet.service.schemas import NewUser
from cartnet.service.settings import ServiceSettings, new_key

PASSWORD = "correct horse battery"
CENTER = "dana-farber"
SITE = "morris-plains"
USERS = {
    "coordinator": (Role.CENTER_COORDINATOR, CENTER, None, "Carla Coordinator"),
    "other_coordinator": (Role.CENTER_COORDINATOR, "mgh-boston", None, "Oscar Other"),
    "operator": (Role.SITE_OPERATOR, None, SITE, "Sam Operator"),
    "operator2": (Role.SITE_OPERATOR, None, SITE, "Sue Second"),
    "other_operator": (Role.SITE_OPERATOR, None, "leipzig", "Lars Leipzig"),
    "qa": (Role.QA, None, SITE, "Quinn Assurance"),
    "logistics": (Role.LOGISTICS, None, None, "Lee Logistics"),
    "planner": (Role.PLANNER, None, None, "Pat Planner"),
    "admin": (Role.ADMIN, None, None, "Ada Admin"),
}


def settings_for(url: str, **extra: Any) -> ServiceSettings:
    return ServiceSettings(database_url=url, patient_key=new_key(), signing_key=new_key(), **extra)


@dataclass
class Api:
    """A test client with a token per user name."""

    client: TestClient
    ctx: ServiceContext
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, user: str | None) -> dict[str, str]:
        return {} if user is None else {"Authorization": f"Bearer {self.tokens[user]}"}

    def get(self, user: str | None, path: str, **kw: Any) -> Any:
        return self.client.get("/api/v1" + path, headers=self.headers(user), **kw)

    def post(self, user: str | None, path: str, json: Any = None, **kw: Any) -> Any:
        headers = {**self.headers(user), **kw.pop("headers", {})}
        return self.client.post("/api/v1" + path, json=json, headers=headers, **kw)

    def sign(self, user: str) -> list[dict[str, str]]:
        return [{"username": user, "password": PASSWORD}]

    def enroll(self, user: str = "coordinator", days_ahead: int = 3) -> dict[str, Any]:
        response = self.post(
            user,
            "/orders",
            {
                "product": "tisagenlecleucel",
                "earliest_apheresis": (date.today() + timedelta(days=days_ahead)).isoformat(),
                "patient": {
                    "given_name": "Maria",
                    "family_name": "Musterfrau",
                    "date_of_birth": "1961-04-12",
                    "hospital_number": "DF-55812",
                },
            },
        )
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def book_first(self, order_id: str, user: str = "coordinator") -> dict[str, Any]:
        offers = self.get(user, f"/orders/{order_id}/offers").json()["offers"]
        first = offers[0]
        response = self.post(
            user, f"/orders/{order_id}/booking", {"site": first["site"], "start": first["start"]}
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def make_users(ctx: ServiceContext) -> None:
    for username, (role, center, site, name) in USERS.items():
        accounts.create_user(
            ctx,
            accounts.SYSTEM,
            NewUser(
                username=username,
                printed_name=name,
                password=PASSWORD,
                role=role,
                center=center,
                site=site,
            ),
        )


@pytest.fixture
def api(migrated_url: str) -> Iterator[Api]:
    ctx = ServiceContext.open(settings_for(migrated_url), migrate=False)
    make_users(ctx)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        result = Api(client, ctx)
        for username in USERS:
            response = client.post(
                "/api/v1/auth/tokens", json={"username": username, "password": PASSWORD}
            )
            assert response.status_code == 201, response.text
            result.tokens[username] = response.json()["access_token"]
        yield result
    ctx.close()
