"""Local users, their passwords and bearer tokens.

A user has one role and, for center and site roles, the tenant they work for, checked
against the network when the account is made. A token lives ``token_hours`` and can be
revoked before that (logout, or an administrator revoking all of a user's tokens).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cartnet.ledger.roles import Role
from cartnet.ledger.signatures import Reauthentication
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext, new_id
from cartnet.service.errors import Conflict, Invalid, NotFound, Unauthorized
from cartnet.service.schemas import NewUser, TokenIssued, UserView
from cartnet.service.security import hash_password, new_token, password_matches, token_hash
from cartnet.store.tables import TokenRow, UserRow

SYSTEM = Principal("system", "system", "cartnet system", Role.ADMIN)
"""The actor of changes made from the command line by whoever runs the server."""

_NEEDS_CENTER = frozenset({Role.CENTER_COORDINATOR})
_NEEDS_SITE = frozenset({Role.SITE_OPERATOR, Role.QA})


def _view(row: UserRow) -> UserView:
    return UserView(
        id=row.id,
        username=row.username,
        printed_name=row.printed_name,
        role=Role(row.role),
        center=row.center,
        site=row.site,
        active=row.active,
    )


def create_user(ctx: ServiceContext, by: Principal, new: NewUser) -> UserView:
    """Make an account; the tenant must exist in the network and fit the role."""
    if by is not SYSTEM:
        by.require({Role.ADMIN}, "create users")
    net = ctx.network
    if new.role in _NEEDS_CENTER:
        if new.center is None:
            raise Invalid(f"role {new.role.value!r} needs a center", field="center")
        if new.center not in {c.id for c in net.treatment_centers}:
            raise Invalid(f"unknown treatment center {new.center!r}", field="center")
    elif new.center is not None:
        raise Invalid(f"role {new.role.value!r} has no center", field="center")
    if new.role in _NEEDS_SITE:
        if new.site is None:
            raise Invalid(f"role {new.role.value!r} needs a manufacturing site", field="site")
        if new.site not in {s.id for s in net.sites}:
            raise Invalid(f"unknown manufacturing site {new.site!r}", field="site")
    elif new.site is not None:
        raise Invalid(f"role {new.role.value!r} has no site", field="site")
    row = UserRow(
        id=new_id("usr"),
        username=new.username,
        printed_name=new.printed_name,
        password_hash=hash_password(new.password),
        role=new.role.value,
        center=new.center,
        site=new.site,
        active=True,
        created_at=ctx.now(),
    )
    try:
        with ctx.transaction() as session:
            if session.scalar(select(UserRow.id).where(UserRow.username == new.username)):
                raise Conflict(f"username {new.username!r} is taken", field="username")
            ctx.add_record(
                session,
                by,
                row,
                "user",
                lambda r: str(r.id),
                ["username", "printed_name", "role", "center", "site"],
            )
    except IntegrityError:
        raise Conflict(f"username {new.username!r} is taken", field="username") from None
    return _view(row)


def list_users(ctx: ServiceContext, by: Principal) -> list[UserView]:
    by.require({Role.ADMIN}, "list users")
    with ctx.reading() as session:
        return [_view(r) for r in session.scalars(select(UserRow).order_by(UserRow.username))]


def check_credentials(ctx: ServiceContext, username: str, password: str) -> Principal:
    """The principal whose password this is; :class:`Unauthorized` otherwise.

    The password is checked outside any transaction: argon2 takes tens of milliseconds
    and much memory, and no lock of the database should wait for it.
    """
    with ctx.reading() as session:
        row = session.scalar(select(UserRow).where(UserRow.username == username))
        stored = None if row is None else row.password_hash
        principal = None if row is None else principal_of(row)
        active = row is not None and row.active
    if not password_matches(stored, password) or principal is None:
        raise Unauthorized("wrong username or password")
    if not active:
        raise Unauthorized(f"the account {username!r} is disabled")
    return principal


def login(ctx: ServiceContext, username: str, password: str) -> TokenIssued:
    """A new bearer token for a user whose password matches."""
    principal = check_credentials(ctx, username, password)
    token = new_token()
    now = ctx.now()
    expires = now + ctx.settings.token_lifetime
    with ctx.transaction() as session:
        session.add(
            TokenRow(
                token_hash=token_hash(token),
                user_id=principal.user_id,
                issued_at=now,
                expires_at=expires,
                revoked_at=None,
            )
        )
    return TokenIssued(access_token=token, expires_at=expires)


def principal_of(user: UserRow) -> Principal:
    return Principal(
        user.id, user.username, user.printed_name, Role(user.role), user.center, user.site
    )


def authenticate(ctx: ServiceContext, token: str) -> Principal:
    """The principal a bearer token stands for; :class:`Unauthorized` if it does not."""
    with ctx.reading() as session:
        found = session.execute(
            select(TokenRow.revoked_at, TokenRow.expires_at, UserRow)
            .join(UserRow, UserRow.id == TokenRow.user_id)
            .where(TokenRow.token_hash == token_hash(token))
        ).one_or_none()
    if found is None:
        raise Unauthorized("unknown bearer token; log in again")
    revoked_at, expires_at, user = found
    if revoked_at is not None:
        raise Unauthorized("the bearer token was revoked; log in again")
    if expires_at <= ctx.now():
        raise Unauthorized("the bearer token has expired; log in again")
    if not user.active:
        raise Unauthorized(f"the account {user.username!r} is disabled")
    return principal_of(user)


def revoke_token(ctx: ServiceContext, token: str) -> None:
    """Log out: the token stops working at once."""
    with ctx.transaction() as session:
        session.execute(
            update(TokenRow)
            .where(TokenRow.token_hash == token_hash(token), TokenRow.revoked_at.is_(None))
            .values(revoked_at=ctx.now())
        )


def revoke_user_tokens(ctx: ServiceContext, by: Principal, user_id: str) -> int:
    """Revoke every live token of a user (an administrator's action); how many."""
    if by is not SYSTEM:
        by.require({Role.ADMIN}, "revoke other users' tokens")
    with ctx.transaction() as session:
        if session.get(UserRow, user_id) is None:
            raise NotFound(f"no user {user_id!r}", field="user_id")
        done = session.execute(
            update(TokenRow)
            .where(TokenRow.user_id == user_id, TokenRow.revoked_at.is_(None))
            .values(revoked_at=ctx.now())
        )
    return int(done.rowcount)  # type: ignore[attr-defined]


class DatabasePasswordCheck:
    """Re-entry of a password at signing time, against the stored argon2 hash."""

    def __init__(self, session: Session, clock: datetime) -> None:
        self._session = session
        self._now = clock

    def reauthenticate(self, user_id: str, password: str) -> Reauthentication:
        row = self._session.get(UserRow, user_id)
        ok = row is not None and row.active and password_matches(row.password_hash, password)
        return Reauthentication(user_id, self._now, ok)


def user_by_name(session: Session, username: str) -> UserRow | None:
    return session.scalar(select(UserRow).where(UserRow.username == username))
