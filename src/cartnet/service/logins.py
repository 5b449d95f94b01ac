"""Logging in, bearer tokens, and the password re-entered at signing.

Every password is checked outside any transaction or lock (argon2 takes tens of
milliseconds and 19 MiB; no database lock should wait for it), within the limits of
:mod:`cartnet.service.throttle`. Every failed check is an audit entry: on the account
(its failure counter and lockout) when the username exists, a ``login_failure``
otherwise. Issued and revoked tokens are audit entries too, so ``audit verify`` can
tell a token the service issued from one inserted by hand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartnet.ledger.entry import AuditAction
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Role
from cartnet.ledger.signatures import Reauthentication
from cartnet.service.access import Principal
from cartnet.service.context import AFTERWARDS, ServiceContext, audit_value, new_id
from cartnet.service.credentials import record_lockout, seal_intact, token_key
from cartnet.service.errors import TooManyRequests, Unauthorized
from cartnet.service.schemas import TokenIssued
from cartnet.service.security import new_token, password_matches, token_hash
from cartnet.service.throttle import backoff, guard_of, seconds_until
from cartnet.store.tables import TokenRow, UserRow

log = logging.getLogger("cartnet.logins")

SYSTEM = Principal("system", "system", "cartnet system", Role.ADMIN)
"""The actor of changes made from the command line, and of failed-login entries."""
UNKNOWN_ADDRESS = "unknown"
TAMPERED = "account record altered outside cartnet"
"""In the reason of a failed login or signature whose account no longer matches its seal;
``audit verify`` lists these, so a swap that was undone afterwards is still named."""


def principal_of(user: UserRow) -> Principal:
    return Principal(
        user.id, user.username, user.printed_name, Role(user.role), user.center, user.site
    )


def user_by_name(session: Session, username: str) -> UserRow | None:
    """The account of a username, whatever its case."""
    return session.scalar(select(UserRow).where(UserRow.login_name == username.casefold()))


@dataclass(frozen=True)
class _Account:
    """What a login needs of the row, read before the (slow) password check."""

    id: str
    username: str
    password_hash: str | None
    active: bool
    sealed: bool
    failed_logins: int
    locked_until: datetime | None
    password_set_at: datetime | None
    principal: Principal


def _account(ctx: ServiceContext, username: str) -> _Account | None:
    with ctx.reading() as session:
        row = user_by_name(session, username)
        if row is None:
            return None
        return _Account(
            row.id,
            row.username,
            row.password_hash,
            row.active,
            seal_intact(ctx, row),
            row.failed_logins,
            row.locked_until,
            row.password_set_at,
            principal_of(row),
        )


def refuse_while_locked(
    ctx: ServiceContext, failed: int, locked_until: datetime | None, now: datetime
) -> None:
    """429 while the account must wait after failed logins, without checking anything."""
    if locked_until is None or now >= locked_until:
        return
    s = ctx.settings
    if failed >= s.login_lockout_after:
        detail = (
            f"the account is locked after {failed} failed logins until "
            f"{locked_until.isoformat(timespec='seconds')}; an administrator can lift it"
        )
    else:
        detail = "too many failed logins for this account; wait before trying again"
    raise TooManyRequests(detail, retry_after=seconds_until(locked_until, now))


def check_credentials(
    ctx: ServiceContext,
    username: str,
    password: str,
    address: str = UNKNOWN_ADDRESS,
    *,
    allow_expired: bool = False,
) -> Principal:
    """The principal whose password this is; :class:`Unauthorized` otherwise,
    :class:`TooManyRequests` while the account or address must wait."""
    guard = guard_of(ctx)
    now = ctx.now()
    guard.addresses.check(address, now)
    account = _account(ctx, username)
    if account is not None:
        refuse_while_locked(ctx, account.failed_logins, account.locked_until, now)
    matches = guard.slots.run(
        password_matches, None if account is None else account.password_hash, password
    )
    if account is None or not matches:
        record_failure(
            ctx, None if account is None else account.id, username, address, "wrong password"
        )
        raise Unauthorized("wrong username or password")
    if not account.sealed:
        record_failure(ctx, account.id, username, address, f"login: {TAMPERED}")
        raise Unauthorized(
            f"the account {account.username!r} was changed outside cartnet and is refused; "
            "an administrator must check it (cartnet audit verify)"
        )
    if not account.active:
        raise Unauthorized(f"the account {account.username!r} is disabled")
    if not allow_expired and password_expired(ctx, account.password_set_at, now):
        raise Unauthorized(
            "your password has expired; set a new one (POST /api/v1/auth/password with the "
            "old one, or `cartnet users reset-password`)",
            code="password-expired",
        )
    if account.failed_logins or account.locked_until is not None:
        _clear_failures(ctx, account.id, f"logged in from {address}")
    return account.principal


def password_expired(ctx: ServiceContext, set_at: datetime | None, now: datetime) -> bool:
    days = ctx.settings.password_max_age_days
    return days is not None and set_at is not None and now - set_at > timedelta(days=days)


def record_failure(
    ctx: ServiceContext, user_id: str | None, username: str, address: str | None, why: str
) -> None:
    """Count a failed password (login or signature) and audit it, in its own transaction."""
    now = ctx.now()
    if address is not None:
        guard_of(ctx).addresses.failed(address, now)
    s = ctx.settings
    where = "" if address is None else f" from {address}"
    with ctx.transaction() as session:
        row = None if user_id is None else session.get(UserRow, user_id, with_for_update=True)
        if row is None:
            ctx.record(
                session,
                SYSTEM,
                AuditAction.CREATE,
                "login_failure",
                new_id("lgf"),
                [("username", None, username[:64]), ("address", None, address), ("why", None, why)],
            )
            return
        before = (row.failed_logins, row.locked_until)
        row.failed_logins += 1
        wait = backoff(row.failed_logins, s.login_backoff_after, s.login_lockout_after, s)
        if wait is not None:
            row.locked_until = now + wait
        record_lockout(ctx, session, SYSTEM, row, before, f"failed {why}{where}")


def _clear_failures(ctx: ServiceContext, user_id: str, why: str) -> None:
    with ctx.transaction() as session:
        row = session.get(UserRow, user_id, with_for_update=True)
        if row is not None:
            before = (row.failed_logins, row.locked_until)
            row.failed_logins = 0
            row.locked_until = None
            record_lockout(ctx, session, SYSTEM, row, before, why)


def login(
    ctx: ServiceContext, username: str, password: str, address: str = UNKNOWN_ADDRESS
) -> TokenIssued:
    """A new bearer token for a user whose password matches."""
    principal = check_credentials(ctx, username, password, address)
    token = new_token()
    now = ctx.now()
    expires = now + ctx.settings.token_lifetime
    row = TokenRow(
        token_hash=token_hash(token, token_key(ctx)),
        user_id=principal.user_id,
        issued_at=now,
        expires_at=expires,
        revoked_at=None,
    )
    with ctx.transaction() as session:
        ctx.add_record(
            session,
            principal,
            row,
            "token",
            lambda r: str(r.token_hash),
            ["user_id", "issued_at", "expires_at"],
            also=[("address", None, address)],
        )
    return TokenIssued(access_token=token, expires_at=expires)


def authenticate(ctx: ServiceContext, token: str) -> Principal:
    """The principal a bearer token stands for; :class:`Unauthorized` if it does not."""
    with ctx.reading() as session:
        found = session.execute(
            select(TokenRow.revoked_at, TokenRow.expires_at, UserRow)
            .join(UserRow, UserRow.id == TokenRow.user_id)
            .where(TokenRow.token_hash == token_hash(token, token_key(ctx)))
        ).one_or_none()
        if found is None:
            raise Unauthorized("unknown bearer token; log in again")
        revoked_at, expires_at, user = found
        if revoked_at is not None:
            raise Unauthorized("the bearer token was revoked; log in again")
        if expires_at <= ctx.now():
            raise Unauthorized("the bearer token has expired; log in again")
        return usable_account(ctx, user)


def usable_account(ctx: ServiceContext, user: UserRow) -> Principal:
    """The principal of a row a token or session points at, if it may still act."""
    if not seal_intact(ctx, user):
        raise Unauthorized(
            f"the account {user.username!r} was changed outside cartnet and is refused"
        )
    if not user.active:
        raise Unauthorized(f"the account {user.username!r} is disabled")
    return principal_of(user)


def revoke_token(ctx: ServiceContext, by: Principal, token: str) -> None:
    """Log out: the token stops working at once."""
    with ctx.transaction() as session:
        row = session.get(TokenRow, token_hash(token, token_key(ctx)), with_for_update=True)
        if row is not None and row.revoked_at is None:
            end_token(ctx, session, by, row, "logged out")


def end_token(
    ctx: ServiceContext, session: Session, by: Principal, row: TokenRow, why: str
) -> None:
    row.revoked_at = ctx.now()
    ctx.record(
        session,
        by,
        AuditAction.UPDATE,
        "token",
        row.token_hash,
        [("revoked_at", None, audit_value(row.revoked_at))],
        reason_code=ReasonCode.OTHER,
        reason_text=why,
    )


class DatabasePasswordCheck:
    """Re-entry of a password at signing time, against the stored argon2 hash.

    It runs inside the step's transaction (the step and its signatures commit together)
    but within the hashing slots and the account's lockout; a wrong password is counted
    and audited in a transaction of its own once the step's has been rolled back.
    """

    def __init__(self, ctx: ServiceContext, session: Session) -> None:
        self._ctx = ctx
        self._session = session

    def reauthenticate(self, user_id: str, password: str) -> Reauthentication:
        ctx = self._ctx
        now = ctx.now()
        row = self._session.get(UserRow, user_id)
        if row is not None:
            refuse_while_locked(ctx, row.failed_logins, row.locked_until, now)
        matches = guard_of(ctx).slots.run(
            password_matches, None if row is None else row.password_hash, password
        )
        ok = row is not None and row.active and matches and seal_intact(ctx, row)
        if not ok and row is not None:
            why = "signature password" if not matches else f"signature: {TAMPERED}"
            name = row.username
            self._session.info.setdefault(AFTERWARDS, []).append(
                lambda: _quietly(record_failure, ctx, user_id, name, None, why)
            )
        return Reauthentication(user_id, now, ok)


def _quietly(job: object, *args: object) -> None:
    """Run work that follows a transaction; log, never raise, if it fails."""
    try:
        job(*args)  # type: ignore[operator]
    except Exception:  # pragma: no cover - logged, the request's own answer stands
        log.exception("could not record a failed signature password")
