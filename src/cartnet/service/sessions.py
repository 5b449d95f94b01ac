"""Portal sessions: a browser logged in as one user, ended by logout or by time.

A session is kept in the database, not in a signed cookie, so that logout, an idle
timeout or an administrator disabling the account ends it for certain, on every
server process. The cookie carries 32 random bytes; the row keeps their SHA-256 and
the session's CSRF token, which every state-changing form of the portal must echo.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from cartnet.service.access import Principal
from cartnet.service.accounts import check_credentials, principal_of
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Unauthorized
from cartnet.service.security import new_token, token_hash
from cartnet.store.tables import UserRow, WebSessionRow

SEEN_EVERY = timedelta(seconds=60)
"""How stale ``seen_at`` may get before a request writes it again (one write a minute,
not one per page view); the idle timeout is measured against it."""


@dataclass(frozen=True, slots=True)
class PortalSession:
    """A live session: who, and the token its forms must carry against CSRF."""

    principal: Principal
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StartedSession:
    token: str
    """The cookie's value; shown once, the database keeps its hash."""
    session: PortalSession


def start_session(ctx: ServiceContext, username: str, password: str) -> StartedSession:
    """Log in: check the password (outside any transaction), then open a session."""
    principal = check_credentials(ctx, username, password)
    token = new_token()
    csrf = secrets.token_urlsafe(32)
    now = ctx.now()
    with ctx.transaction() as session:
        session.add(
            WebSessionRow(
                token_hash=token_hash(token),
                user_id=principal.user_id,
                csrf_token=csrf,
                started_at=now,
                seen_at=now,
                ended_at=None,
            )
        )
    lifetime = ctx.settings.session_lifetime
    return StartedSession(token, PortalSession(principal, csrf, now + lifetime))


def resume_session(ctx: ServiceContext, token: str) -> PortalSession:
    """The session a cookie stands for; :class:`Unauthorized` when it has ended."""
    now = ctx.now()
    key = token_hash(token)
    with ctx.reading() as session:
        found = session.execute(
            select(WebSessionRow, UserRow)
            .join(UserRow, UserRow.id == WebSessionRow.user_id)
            .where(WebSessionRow.token_hash == key)
        ).one_or_none()
    if found is None:
        raise Unauthorized("you are not logged in")
    row, user = found
    settings = ctx.settings
    if row.ended_at is not None:
        raise Unauthorized("you logged out; log in again")
    if now >= row.started_at + settings.session_lifetime:
        raise Unauthorized(f"sessions last {settings.session_hours:g} hours; log in again")
    if now >= row.seen_at + settings.session_idle:
        raise Unauthorized(
            f"the session ended after {settings.session_idle_minutes:g} minutes without use; "
            "log in again"
        )
    if not user.active:
        raise Unauthorized(f"the account {user.username!r} is disabled")
    if now - row.seen_at >= SEEN_EVERY:
        with ctx.transaction() as session:
            session.execute(
                update(WebSessionRow)
                .where(WebSessionRow.token_hash == key, WebSessionRow.ended_at.is_(None))
                .values(seen_at=now)
            )
    return PortalSession(
        principal_of(user), row.csrf_token, row.started_at + settings.session_lifetime
    )


def end_session(ctx: ServiceContext, token: str) -> None:
    """Log out: the session ends in the database, whatever copies of the cookie exist."""
    with ctx.transaction() as session:
        session.execute(
            update(WebSessionRow)
            .where(WebSessionRow.token_hash == token_hash(token), WebSessionRow.ended_at.is_(None))
            .values(ended_at=ctx.now())
        )


def csrf_matches(expected: str, given: str | None) -> bool:
    """Compare a form's CSRF token in constant time."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
