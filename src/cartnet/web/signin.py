"""Logging in and out, and each role's landing page.

The login form is protected against login CSRF by a double-submit token (a random
cookie the form must echo), since there is no session yet to hold one. The session
cookie is ``HttpOnly`` and ``SameSite=Lax``, ``Secure`` over HTTPS or when the
settings say so; its lifetime is enforced by the server, not by the cookie.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse, Response

from cartnet.ledger.roles import Role
from cartnet.service import accounts
from cartnet.service.errors import ServiceError, TooManyRequests
from cartnet.service.sessions import csrf_matches, end_session, start_session
from cartnet.web.page import (
    CSRF_FIELD,
    SESSION_COOKIE,
    Anonymous,
    AnyUser,
    Page,
    field_errors,
    role_page,
)

router = APIRouter()
LOGIN_COOKIE = "cartnet_login"

HOME: dict[Role, str] = {
    Role.CENTER_COORDINATOR: "/center",
    Role.SITE_OPERATOR: "/site",
    Role.QA: "/qa",
    Role.LOGISTICS: "/logistics",
    Role.PLANNER: "/tower",
    Role.ADMIN: "/users",
}
"""Where each role lands after login."""


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: never an open redirect to another origin."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return None


def _secure(page: Page) -> bool:
    configured = page.ctx.settings.secure_cookies
    return page.request.url.scheme == "https" if configured is None else configured


@router.get("/login")
def login_form(page: Anonymous, next: str | None = None) -> Response:
    if page.session is not None:
        return RedirectResponse(_safe_next(next) or HOME[page.principal.role], status_code=303)
    return _login_page(page, next, {}, {}, 200)


def _login_page(
    page: Page, next: str | None, form: dict[str, str], errors: dict[str, str], status: int
) -> Response:
    token = page.request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = page.render(
        "login.html",
        status=status,
        next=_safe_next(next),
        login_csrf=token,
        form=form,
        errors=errors,
    )
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=_secure(page), path="/login"
    )
    return response


@router.post("/login")
async def log_in(page: Anonymous) -> Response:
    data = await page.request.form()
    username = str(data.get("username") or "").strip()
    password = str(data.get("password") or "")
    next_path = _safe_next(str(data.get("next") or "")) or None
    shown = {"username": username}
    if not csrf_matches(page.request.cookies.get(LOGIN_COOKIE, ""), str(data.get(CSRF_FIELD))):
        errors = {"_form": "the login form expired; enter your password again"}
        return _login_page(page, next_path, shown, errors, 403)
    if not username or not password:
        errors = {
            k: "required" for k, v in (("username", username), ("password", password)) if not v
        }
        return _login_page(page, next_path, shown, errors, 422)
    address = page.request.client.host if page.request.client is not None else "unknown"
    try:
        started = await page.call(start_session, page.ctx, username, password, address)
    except ServiceError as err:
        errors = field_errors(err)
        response = _login_page(
            page, next_path, shown, {"_form": next(iter(errors.values()))}, err.status
        )
        if isinstance(err, TooManyRequests):
            response.headers["Retry-After"] = str(err.retry_after)
        return response
    target = next_path or HOME[started.session.principal.role]
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        started.token,
        httponly=True,
        samesite="lax",
        secure=_secure(page),
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


ENROL_COOKIE = "cartnet_enrol"


@router.get("/enrol")
def enrol_form(page: Anonymous) -> Response:
    """Where a new (or reset) account's person sets their own password."""
    return _enrol_page(page, {}, 200)


def _enrol_page(page: Page, errors: dict[str, str], status: int) -> Response:
    token = page.request.cookies.get(ENROL_COOKIE) or secrets.token_urlsafe(32)
    response = page.render(
        "enrol.html",
        status=status,
        login_csrf=token,
        form={},
        errors=errors,
        min_length=page.ctx.settings.password_min_length,
    )
    response.set_cookie(
        ENROL_COOKIE, token, httponly=True, samesite="strict", secure=_secure(page), path="/enrol"
    )
    return response


@router.post("/enrol")
async def enrol(page: Anonymous) -> Response:
    data = await page.request.form()
    if not csrf_matches(page.request.cookies.get(ENROL_COOKIE, ""), str(data.get(CSRF_FIELD))):
        return _enrol_page(page, {"_form": "the form expired; enter it again"}, 403)
    token = str(data.get("token") or "").strip()
    password = str(data.get("password") or "")
    if not token or not password:
        missing = {k: "required" for k, v in (("token", token), ("password", password)) if not v}
        return _enrol_page(page, missing, 422)
    address = page.request.client.host if page.request.client is not None else "unknown"
    try:
        await page.call(accounts.enrol, page.ctx, token, password, address)
    except ServiceError as err:
        response = _enrol_page(page, {"_form": err.detail}, err.status)
        if isinstance(err, TooManyRequests):
            response.headers["Retry-After"] = str(err.retry_after)
        return response
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(ENROL_COOKIE, path="/enrol")
    return response


@router.post("/logout")
async def log_out(page: AnyUser) -> Response:
    await page.form()
    token = page.request.cookies.get(SESSION_COOKIE)
    if token:
        await page.call(end_session, page.ctx, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def home(page: AnyUser) -> Response:
    return RedirectResponse(HOME[page.principal.role], status_code=303)


Admin = Annotated[Page, Depends(role_page(Role.ADMIN))]


@router.get("/users")
async def users(page: Admin) -> Response:
    """The accounts (administrators): who has which role at which center or site."""
    found = await page.call(accounts.list_users, page.ctx, page.principal)
    return page.render("users.html", users=found)
