"""Logging in and out of the portal, sessions and their timeouts, CSRF, page headers."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.web.conftest import CSRF, PASSWORD, Portal

from cartnet.ledger.lifecycle import OrderEvent
from cartnet.store.tables import WebSessionRow
from cartnet.web.actions import EVENT_PAGES
from cartnet.web.assets import HTMX, STATIC_DIR, VENDORED
from cartnet.web.page import SESSION_COOKIE


def test_each_role_lands_on_its_home_page(portal: Portal) -> None:
    """After login every role is sent to its own page, which names the user."""
    homes = {"coordinator": "/center", "operator": "/site", "qa": "/qa", "logistics": "/logistics",
             "planner": "/tower", "admin": "/users"}  # fmt: skip
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


def test_a_session_ends_after_its_idle_time_and_its_lifetime(portal: Portal) -> None:
    """Idle past the setting, or older than its lifetime, the session is over."""
    client = portal.as_user("planner")
    assert client.get("/orders", follow_redirects=False).status_code == 200
    settings = portal.ctx.settings
    start = portal.ctx.now()
    for later in (
        settings.session_idle + timedelta(seconds=1),
        settings.session_lifetime + timedelta(seconds=1),
    ):
        portal.ctx.clock = lambda later=later: start + later  # type: ignore[misc]
        response = client.get("/orders", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/orders"
    portal.ctx.clock = lambda: start + timedelta(minutes=5)
    assert client.get("/orders", follow_redirects=False).status_code == 200


def test_logout_ends_the_session_in_the_database(portal: Portal) -> None:
    """A copy of the cookie taken before logout opens nothing afterwards."""
    client = portal.as_user("qa")
    stolen = client.cookies.get(SESSION_COOKIE)
    assert portal.post("qa", "/logout").status_code == 303
    replay = TestClient(portal.app)
    replay.cookies.set(SESSION_COOKIE, stolen or "")
    assert replay.get("/orders", follow_redirects=False).status_code == 303
    with portal.ctx.reading() as session:
        ended = session.scalars(select(WebSessionRow.ended_at)).all()
    assert ended and all(e is not None for e in ended)


def test_forms_without_the_csrf_token_are_refused(portal: Portal) -> None:
    """A post without the session's token, or with another, is 403 and changes nothing."""
    client = portal.as_user("planner")
    assert client.post("/logout", follow_redirects=False).status_code == 403
    forged = client.post("/logout", data={"csrf_token": "x" * 43}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/orders", follow_redirects=False).status_code == 200


def test_login_needs_its_own_form_token(portal: Portal) -> None:
    """A login posted from elsewhere (no matching form cookie) opens no session."""
    client = TestClient(portal.app)
    response = client.post(
        "/login",
        data={"username": "qa", "password": PASSWORD, "csrf_token": "made-up"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_the_session_cookie_is_http_only_and_same_site(portal: Portal) -> None:
    """The cookie is out of reach of scripts and of cross-site posts; Secure when asked."""
    client = TestClient(portal.app)
    token = CSRF.search(client.get("/login").text)
    assert token is not None
    response = client.post(
        "/login",
        data={"username": "qa", "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    cookie = next(c for c in response.headers.get_list("set-cookie") if SESSION_COOKIE in c)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    https = TestClient(portal.app, base_url="https://portal.example")
    token = CSRF.search(https.get("/login").text)
    assert token is not None
    response = https.post(
        "/login",
        data={"username": "qa", "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    cookie = next(c for c in response.headers.get_list("set-cookie") if SESSION_COOKIE in c)
    assert "Secure" in cookie


def test_login_sends_only_to_pages_of_this_site(portal: Portal) -> None:
    """``next`` may name a path here, never another origin (no open redirect)."""
    client = TestClient(portal.app)
    for target, expected in (("/orders", "/orders"), ("//evil.example/x", "/site"),
                             ("https://evil.example", "/site")):  # fmt: skip
        page = client.get("/login", params={"next": target})
        token = CSRF.search(page.text)
        assert token is not None
        response = client.post(
            "/login",
            data={
                "username": "operator",
                "password": PASSWORD,
                "csrf_token": token.group(1),
                "next": target,
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == expected
        client.cookies.clear()


def test_pages_carry_a_strict_content_security_policy(portal: Portal) -> None:
    """Pages allow scripts and styles from this origin only, and are not cached."""
    client = portal.as_user("planner")
    for path in ("/login", "/orders"):
        response = client.get(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in response.text and " style=" not in response.text


def test_api_docs_render_from_local_files(portal: Portal) -> None:
    """/docs and /redoc load their scripts and styles from this server, not a CDN."""
    client = TestClient(portal.app)
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets and all(a.startswith("/") for a in assets), assets
        for asset in assets:
            assert client.get(asset).status_code == 200, asset


def test_the_vendored_htmx_is_the_recorded_release() -> None:
    """The shipped htmx file has the version and SHA-256 recorded in web.assets."""
    for vendored in VENDORED:
        data = (STATIC_DIR / vendored.filename).read_bytes()
        assert hashlib.sha256(data).hexdigest() == vendored.sha256
    assert HTMX.version.startswith("2.0.")
    assert b"2.0.11" in (STATIC_DIR / HTMX.filename).read_bytes()


def test_every_lifecycle_step_has_a_page() -> None:
    """The order page can link every event the lifecycle allows to a page."""
    assert set(EVENT_PAGES) == set(OrderEvent)


def test_a_role_sees_links_only_to_what_it_may_do(portal: Portal) -> None:
    """On a booked order the coordinator may collect; the site operator may not."""
    order = portal.booked()
    coordinator = portal.as_user("coordinator").get(f"/orders/{order.id}").text
    assert f"/orders/{order.id}/custody/collection" in coordinator
    assert f"/orders/{order.id}/reschedule" in coordinator
    planner = portal.as_user("planner").get(f"/orders/{order.id}").text
    assert f"/orders/{order.id}/custody/collection" not in planner
    assert f"/orders/{order.id}/cancel" in planner


def test_a_throttled_login_shows_the_wait_and_sends_retry_after(portal: Portal) -> None:
    """Issue 13, finding 1: the portal's login answers 429 with Retry-After, too."""
    client = TestClient(portal.app, raise_server_exceptions=False)
    frozen = portal.ctx.now()
    portal.ctx.clock = lambda: frozen  # the 4th try comes within the 1 s back-off
    for attempt in range(4):
        form = client.get("/login")
        token = CSRF.search(form.text)
        assert token is not None
        response = client.post(
            "/login",
            data={"username": "qa", "password": "wrong wrong", "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert response.status_code == (429 if attempt == 3 else 401), response.text
    assert response.headers["retry-after"] == "1"
    assert "too many failed logins" in response.text


def test_a_new_account_sets_its_password_on_the_enrolment_page(portal: Portal) -> None:
    """Issue 13, finding 6: the person, not the administrator, chooses the password."""
    from cartnet.ledger.roles import Role
    from cartnet.service import accounts
    from cartnet.service.schemas import NewUser

    made = accounts.create_user(
        portal.ctx,
        accounts.SYSTEM,
        NewUser(username="newbie", printed_name="Nell Newbie", role=Role.PLANNER),
    )
    client = TestClient(portal.app, raise_server_exceptions=False)
    form = client.get("/enrol")
    assert form.status_code == 200 and "Set your password" in form.text
    token = CSRF.search(form.text)
    assert token is not None
    data = {"token": made.enrolment_token, "csrf_token": token.group(1)}
    weak = client.post("/enrol", data={**data, "password": "nell newbie rocks!"})
    assert weak.status_code == 422 and "name" in weak.text
    done = client.post(
        "/enrol", data={**data, "password": "amber kettle sonnet"}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert (
        accounts.check_credentials(portal.ctx, "NEWBIE", "amber kettle sonnet").username == "newbie"
    )
