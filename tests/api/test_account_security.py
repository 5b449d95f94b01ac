"""Accounts under attack (issue 13, findings 1, 2, 6, 7): forged credentials in the
database, failed-login throttling and lockout, the hashing slots, enrolment, separation
of duties and the account lifecycle."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.api.conftest import PASSWORD, Api, make_users, settings_for
from typer.testing import CliRunner

from cartnet.api import create_app
from cartnet.cli import app as cli
from cartnet.ledger.roles import Role
from cartnet.service import accounts
from cartnet.service.context import ServiceContext
from cartnet.service.credentials import credential_problems
from cartnet.service.schemas import NewUser
from cartnet.service.security import hash_password
from cartnet.service.throttle import guard_of
from cartnet.store.tables import AuditEntryRow, TokenRow, UserRow

ATTACKER = "attacker knows this one"


def now() -> str:
    return datetime.now(UTC).isoformat()


def to_qc(api: Api) -> tuple[str, str]:
    """An order in QC at morris-plains, waiting for QA's release."""
    order = api.enroll()
    oid, coi = order["id"], order["coi"]
    api.book_first(oid)

    def custody(user: str, step: str, signed: bool = True) -> None:
        body = {
            "step": step,
            "scanned": "&/" + coi,
            "organisation": "x",
            "place": "bench 1",
            "at": now(),
            "temperature_c": -180.0,
        }
        if signed:
            body["signatures"] = api.sign(user)
        response = api.post(user, f"/orders/{oid}/custody-events", body)
        assert response.status_code == 201, response.text

    custody("coordinator", "collection")
    shipment = api.post(
        "logistics",
        f"/orders/{oid}/shipments",
        {"direction": "to_site", "courier": "Cryoport", "tracking": "CP-1"},
    )
    assert shipment.status_code == 201, shipment.text
    custody("logistics", "handover_to_courier")
    custody("logistics", "courier_transfer", signed=False)
    custody("operator", "receipt_at_site")
    custody("operator", "start_manufacturing")
    done = api.post(
        "operator",
        f"/orders/{oid}/events",
        {"event": "complete_manufacturing", "signatures": api.sign("operator")},
    )
    assert done.status_code == 200, done.text
    qc = api.post(
        "qa",
        f"/orders/{oid}/qc-results",
        {
            "test": "sterility",
            "result": "no growth",
            "specification": "no growth",
            "passed": True,
            "tested_at": now(),
        },
    )
    assert qc.status_code == 201, qc.text
    return oid, coi


def release(api: Api, oid: str, coi: str, token: str, password: str) -> Any:
    return api.client.post(
        f"/api/v1/orders/{oid}/release",
        json={
            "scanned": "&/" + coi,
            "place": "QA office",
            "at": now(),
            "signatures": [{"username": "qa", "password": password}],
        },
        headers={"Authorization": f"Bearer {token}"},
    )


def verify(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """``cartnet audit verify`` on the service's database, with its signing key."""
    monkeypatch.setenv("CARTNET_SIGNING_KEY", ctx.settings.signing_key)
    url = ctx.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(cli, ["audit", "verify", "--db", url])
    return result.exit_code, result.output


def state(api: Api, oid: str) -> str:
    return str(api.get("coordinator", f"/orders/{oid}").json()["state"])


def test_a_hand_inserted_token_and_a_swapped_hash_sign_nothing_and_are_named(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack of finding 2: with write access to the database and no keys, insert a
    bearer token, swap QA's password hash, sign a release through the API, restore the
    hash. The API refuses the token and the swapped hash; verify names both."""
    oid, coi = to_qc(api)
    code, said = verify(api.ctx, monkeypatch)
    assert code == 0, said
    forged = "a token the attacker made up"
    with api.ctx.sessions() as session, session.begin():
        qa = session.scalars(select(UserRow).where(UserRow.username == "qa")).one()
        original = qa.password_hash
        moment = datetime.now(UTC)
        for guess in (hashlib.sha256(forged.encode()).hexdigest(), "0" * 64):
            session.add(
                TokenRow(
                    token_hash=guess,
                    user_id=qa.id,
                    issued_at=moment,
                    expires_at=moment + timedelta(hours=1),
                    revoked_at=None,
                )
            )
        qa.password_hash = hash_password(ATTACKER)

    refused = release(api, oid, coi, forged, ATTACKER)
    assert refused.status_code == 401, refused.text
    assert "unknown bearer token" in refused.json()["detail"]
    # The swapped hash opens nothing either: no login, no signature in QA's own session.
    login = api.client.post("/api/v1/auth/tokens", json={"username": "qa", "password": ATTACKER})
    assert login.status_code == 401 and "changed outside cartnet" in login.json()["detail"]
    signed = release(api, oid, coi, api.tokens["qa"], ATTACKER)  # QA's real token, meanwhile
    assert signed.status_code == 401 and "changed outside cartnet" in signed.json()["detail"]
    assert state(api, oid) == "in_qc"
    code, said = verify(api.ctx, monkeypatch)
    assert code == 1
    assert "user qa" in said and "password hash is not the one the audit trail" in said
    assert "credential seal does not match" in said
    assert said.count("has no audit trail (inserted outside cartnet)") == 2, said

    with api.ctx.sessions() as session, session.begin():
        qa = session.scalars(select(UserRow).where(UserRow.username == "qa")).one()
        qa.password_hash = original
    code, said = verify(api.ctx, monkeypatch)
    assert code == 1
    assert "password hash is not the one" not in said  # restored: the row agrees again...
    assert said.count("tried against credentials changed outside cartnet") == 1, said  # ...but
    assert "has no audit trail (inserted outside cartnet)" in said  # the traces remain
    released = release(api, oid, coi, api.tokens["qa"], PASSWORD)
    assert released.status_code == 200, released.text


def test_a_role_or_active_flag_changed_by_hand_is_refused_at_once(api: Api) -> None:
    with api.ctx.sessions() as session, session.begin():
        planner = session.scalars(select(UserRow).where(UserRow.username == "planner")).one()
        planner.role = "qa"
        planner.site = "morris-plains"
    me = api.get("planner", "/me")
    assert me.status_code == 401 and "changed outside cartnet" in me.json()["detail"]
    problems = credential_problems_of(api.ctx)
    assert any("planner" in p and "role is 'qa'" in p for p in problems), problems


def credential_problems_of(ctx: ServiceContext) -> list[str]:
    with ctx.sessions() as session:
        return credential_problems(session, ctx.settings.signing_key)


class Clock:
    def __init__(self) -> None:
        self.moment = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def throttled(migrated_url: str) -> Iterator[tuple[TestClient, ServiceContext, Clock]]:
    settings = settings_for(
        migrated_url,
        login_backoff_after=3,
        login_backoff_seconds=10,
        login_lockout_after=5,
        hashing_slots=1,
    )
    ctx = ServiceContext.open(settings, migrate=False)
    make_users(ctx)
    clock = Clock()
    ctx.clock = clock
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield client, ctx, clock
    ctx.close()


def log_in(client: TestClient, username: str, password: str) -> Any:
    return client.post("/api/v1/auth/tokens", json={"username": username, "password": password})


def test_failed_logins_back_off_then_lock_and_an_administrator_lifts_it(
    throttled: tuple[TestClient, ServiceContext, Clock],
) -> None:
    client, ctx, clock = throttled
    for _ in range(3):
        assert log_in(client, "QA", "wrong wrong wrong").status_code == 401
    waiting = log_in(client, "qa", PASSWORD)  # even the right password waits
    assert waiting.status_code == 429 and waiting.headers["retry-after"] == "10", waiting.text
    clock.moment += timedelta(seconds=11)
    assert log_in(client, "qa", "wrong wrong wrong").status_code == 401
    assert log_in(client, "qa", PASSWORD).headers.get("retry-after") == "20"
    clock.moment += timedelta(seconds=21)
    assert log_in(client, "qa", "wrong wrong wrong").status_code == 401
    clock.moment += timedelta(minutes=1)
    locked = log_in(client, "qa", PASSWORD)
    assert locked.status_code == 429 and "locked after 5 failed logins" in locked.json()["detail"]
    assert 800 < int(locked.headers["retry-after"]) <= 840
    assert log_in(client, "nobody", "wrong wrong wrong").status_code == 401

    admin = log_in(client, "admin", PASSWORD).json()["access_token"]
    headers = {"Authorization": f"Bearer {admin}"}
    users = {u["username"]: u for u in client.get("/api/v1/users", headers=headers).json()}
    assert users["qa"]["failed_logins"] == 5 and users["qa"]["locked_until"] is not None
    lifted = client.delete(f"/api/v1/users/{users['qa']['id']}/lockout", headers=headers)
    assert lifted.status_code == 200 and lifted.json()["locked_until"] is None
    assert log_in(client, "qa", PASSWORD).status_code == 201

    with ctx.sessions() as session:
        entries = session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.sequence)).all()
    failures = [e for e in entries if (e.reason_text or "").startswith("failed wrong password")]
    assert len(failures) == 5 and all(e.entity_id == users["qa"]["id"] for e in failures)
    assert [e.changes[0][2] for e in entries if e.entity_type == "login_failure"] == ["nobody"]
    assert any(e.reason_text == "lockout lifted by an administrator" for e in entries)
    assert credential_problems_of(ctx) == []


def test_a_login_past_the_hashing_slots_gets_429_at_once(
    throttled: tuple[TestClient, ServiceContext, Clock],
) -> None:
    client, ctx, _ = throttled
    taken, done = threading.Event(), threading.Event()

    def hashing() -> None:  # another request holds the only slot
        with guard_of(ctx).slots.slot():
            taken.set()
            done.wait(10)

    other = threading.Thread(target=hashing)
    other.start()
    assert taken.wait(10)
    try:
        busy = log_in(client, "qa", PASSWORD)
    finally:
        done.set()
        other.join()
    assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
    assert busy.headers["content-type"].startswith("application/problem+json")
    assert log_in(client, "qa", PASSWORD).status_code == 201


def test_a_wrong_signature_password_is_audited_and_counts_toward_the_lockout(api: Api) -> None:
    order = api.enroll()
    api.book_first(order["id"])
    response = api.post(
        "coordinator",
        f"/orders/{order['id']}/custody-events",
        {
            "step": "collection",
            "scanned": "&/" + order["coi"],
            "organisation": "x",
            "place": "bench 1",
            "at": now(),
            "signatures": [{"username": "coordinator", "password": "not my password"}],
        },
    )
    assert response.status_code == 401, response.text
    with api.ctx.sessions() as session:
        user = session.scalars(select(UserRow).where(UserRow.username == "coordinator")).one()
        entry = session.scalars(
            select(AuditEntryRow)
            .where(AuditEntryRow.entity_id == user.id)
            .order_by(AuditEntryRow.sequence.desc())
        ).first()
    assert user.failed_logins == 1
    assert entry is not None and entry.reason_text == "failed signature password"
    assert state(api, order["id"]) == "booked"


def test_new_accounts_enrol_themselves_and_gxp_roles_need_a_second_administrator(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 6: the administrator never knows the password; a QA account made by one
    administrator waits for another, who gets the enrolment token; printed names are
    unique per tenant; usernames are unique whatever their case."""
    accounts.create_user(
        api.ctx,
        accounts.SYSTEM,
        NewUser(username="admin2", printed_name="Bo Admin", password=PASSWORD, role=Role.ADMIN),
    )
    api.tokens["admin2"] = log_in(api.client, "admin2", PASSWORD).json()["access_token"]
    new = {
        "username": "Qa2",
        "printed_name": "Quincy Second",
        "role": "qa",
        "site": "morris-plains",
    }
    with_password = api.post("admin", "/users", {**new, "password": PASSWORD})
    assert with_password.status_code == 422 and with_password.json()["field"] == "password"
    made = api.post("admin", "/users", new)
    assert made.status_code == 201, made.text
    assert made.json()["enrolment_token"] is None and not made.json()["user"]["active"]
    assert made.json()["user"]["pending"] == "create as qa at morris-plains"
    user_id = made.json()["user"]["id"]
    own = api.post("admin", f"/users/{user_id}/approval")
    assert own.status_code == 403 and "second administrator" in own.json()["detail"]
    approved = api.post("admin2", f"/users/{user_id}/approval")
    assert approved.status_code == 200, approved.text
    token = approved.json()["enrolment_token"]
    assert approved.json()["enrolment_url"].endswith("/enrol")
    for password, message in [
        ("quincy's long password", "name"),
        ("qa2 is my long password", "username"),
        ("tab\tin the password", "Invalid request"),
        ("short one", "at least 15 characters"),
    ]:
        weak = api.post(None, "/auth/enrolment", {"token": token, "password": password})
        assert weak.status_code == 422 and message in weak.text, weak.text
    enrolled = api.post(
        None, "/auth/enrolment", {"token": token, "password": "ochre lantern harbour"}
    )
    assert enrolled.status_code == 200 and enrolled.json()["enrolled"], enrolled.text
    again = api.post(None, "/auth/enrolment", {"token": token, "password": "ochre lantern harbour"})
    assert again.status_code == 401
    assert log_in(api.client, "QA2", "ochre lantern harbour").status_code == 201
    taken = api.post("admin", "/users", {**new, "username": "qa2"})
    assert taken.status_code == 409 and taken.json()["field"] == "username"
    twin = api.post(
        "admin", "/users", {**new, "username": "quincy", "printed_name": "quincy  SECOND"}
    )
    assert twin.status_code == 409 and twin.json()["field"] == "printed_name"
    elsewhere = {**new, "username": "quincy", "site": "les-ulis"}
    assert api.post("admin", "/users", elsewhere).status_code == 201  # another site's Quincy
    code, said = verify(api.ctx, monkeypatch)
    assert code == 0, said


def test_the_account_lifecycle_through_the_api(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 7: disable and re-enable, change role and tenant, force a reset, change
    one's own password with the old one; each audited, verify clean."""
    users = {u["username"]: u for u in api.get("admin", "/users").json()}
    operator = users["operator"]["id"]
    path = f"/users/{operator}"
    disabled = api.client.patch(
        "/api/v1" + path, json={"active": False, "reason": "on leave"}, headers=api.headers("admin")
    )
    assert disabled.status_code == 200 and not disabled.json()["active"]
    assert api.get("operator", "/me").status_code == 401  # its token ended at once
    assert log_in(api.client, "operator", PASSWORD).status_code == 401
    self_change = api.client.patch(
        f"/api/v1/users/{users['admin']['id']}",
        json={"role": "qa", "site": "morris-plains", "reason": "x"},
        headers=api.headers("admin"),
    )
    assert self_change.status_code == 403
    enabled = api.client.patch(
        "/api/v1" + path,
        json={"active": True, "role": "planner", "site": None, "reason": "back, new job"},
        headers=api.headers("admin"),
    )
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["role"] == "planner" and enabled.json()["site"] is None
    changed = api.post(
        None,
        "/auth/password",
        {"username": "operator", "old_password": PASSWORD, "new_password": "saffron tram orbit"},
    )
    assert changed.status_code == 204, changed.text
    assert log_in(api.client, "operator", PASSWORD).status_code == 401
    assert log_in(api.client, "operator", "saffron tram orbit").status_code == 201
    reset = api.post("admin", f"/users/{operator}/password-reset")
    assert reset.status_code == 200 and reset.json()["enrolment_token"], reset.text
    assert log_in(api.client, "operator", "saffron tram orbit").status_code == 401
    code, said = verify(api.ctx, monkeypatch)
    assert code == 0, said


def test_passwords_expire_when_the_policy_says_so(migrated_url: str) -> None:
    ctx = ServiceContext.open(settings_for(migrated_url, password_max_age_days=90), migrate=False)
    try:
        make_users(ctx)
        clock = Clock()
        clock.moment += timedelta(days=91)
        ctx.clock = clock
        with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
            expired = log_in(client, "qa", PASSWORD)
            assert expired.status_code == 401 and expired.json()["code"] == "password-expired"
            changed = client.post(
                "/api/v1/auth/password",
                json={
                    "username": "qa",
                    "old_password": PASSWORD,
                    "new_password": "a fresh long one",
                },
            )
            assert changed.status_code == 204, changed.text
            assert log_in(client, "qa", "a fresh long one").status_code == 201
    finally:
        ctx.close()
