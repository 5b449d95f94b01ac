"""Portal sessions: a browser logged in as one user, ended by logout or by time.

A session is kept in the database, not in a signed cookie, so that logout, an idle
timeout or an administrator disabling the account ends it for certain, on every
server process. The cookie carries 32 random bytes; the row keeps their HMAC under a
key not in the database (a row inserted by hand opens nothing) and the session's CSRF
token, which every state-changing form of the portal must echo.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from cartnet.ledger.entry import AuditAction
from cartnet.ledger.reasons import ReasonCode
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext, audit_value
from cartnet.service.credentials import token_key
from cartnet.service.errors import Unauthorized
from cartnet.service.logins import (
    UNKNOWN_ADDRESS,
    check_credentials,
    principal_of,
    usable_account,
)
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


def start_session(
    ctx: ServiceContext, username: str, password: str, address: str = UNKNOWN_ADDRESS
) -> StartedSession:
    """Log in: check the password (outside any transaction), then open a session."""
    principal = check_credentials(ctx, username, password, address)
    token = new_token()
    csrf = secrets.token_urlsafe(32)
    now = ctx.now()
    row = WebSessionRow(
        token_hash=token_hash(token, token_key(ctx)),
        user_id=principal.user_id,
        csrf_token=csrf,
        started_at=now,
        seen_at=now,
        ended_at=None,
    )
    with ctx.transaction() as session:
        ctx.add_record(
            session,
            principal,
            row,
            "web_session",
            lambda r: str(r.token_hash),
            ["user_id", "started_at"],
            also=[("address", None, address)],
        )
    lifetime = ctx.settings.session_lifetime
    return StartedSession(token, PortalSession(principal, csrf, now + lifetime))


def resume_session(ctx: ServiceContext, token: str) -> PortalSession:
    """The session a cookie stands for; :class:`Unauthorized` when it has ended."""
    now = ctx.now()
    key = token_hash(token, token_key(ctx))
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
    principal = usable_account(ctx, user)
    if now - row.seen_at >= SEEN_EVERY:
        with ctx.transaction() as session:
            session.execute(
                update(WebSessionRow)
                .where(WebSessionRow.token_hash == key, WebSessionRow.ended_at.is_(None))
                .values(seen_at=now)
            )
    return PortalSession(principal, row.csrf_token, row.started_at + settings.session_lifetime)


def end_session(ctx: ServiceContext, token: str) -> None:
    """Log out: the session ends in the database, whatever copies of the cookie exist."""
    with ctx.transaction() as session:
        row = session.get(WebSessionRow, token_hash(token, token_key(ctx)), with_for_update=True)
        if row is None or row.ended_at is not None:
            return
        row.ended_at = ctx.now()
        user = session.get(UserRow, row.user_id)
        if user is not None:
            ctx.record(
                session,
                principal_of(user),
                AuditAction.UPDATE,
                "web_session",
                row.token_hash,
                [("ended_at", None, audit_value(row.ended_at))],
                reason_code=ReasonCode.OTHER,
                reason_text="logged out",
            )


def csrf_matches(expected: str, given: str | None) -> bool:
    """Compare a form's CSRF token in constant time."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
