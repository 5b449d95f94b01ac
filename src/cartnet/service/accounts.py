"""Local accounts: creation by enrolment, their lifecycle, and separation of duties.

An administrator creates an account without a password: the service returns a
one-time enrolment token (valid ``enrolment_hours``) with which the person sets their
own password, so the administrator never knows it. Granting a GxP role (one that signs
steps or reads patient identity) can need a second administrator's approval
(``role_grant_approval``); then the account, or the new role, waits, and the enrolment
token goes to the approver, so neither administrator alone can make an account and
act with it. Administrators see no orders and never patient identity
(:mod:`cartnet.service.access`). Every change is audited and re-seals the account
(:mod:`cartnet.service.credentials`).
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cartnet.ledger.entry import AuditAction
from cartnet.ledger.lifecycle import TRANSITIONS
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Role
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext, audit_value, new_id
from cartnet.service.credentials import (
    audited_values,
    name_key,
    record_account,
    record_lockout,
    reseal,
    token_key,
)
from cartnet.service.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from cartnet.service.logins import (
    SYSTEM,
    UNKNOWN_ADDRESS,
    DatabasePasswordCheck,
    authenticate,
    check_credentials,
    end_token,
    login,
    principal_of,
    revoke_token,
    user_by_name,
)
from cartnet.service.passwords import check_password
from cartnet.service.schemas import AccountChange, Enrolment, NewUser, UserView
from cartnet.service.security import hash_password, new_token, token_hash
from cartnet.service.throttle import guard_of
from cartnet.store.tables import TokenRow, UserRow, WebSessionRow

__all__ = [
    "SYSTEM",
    "DatabasePasswordCheck",
    "authenticate",
    "check_credentials",
    "login",
    "principal_of",
    "revoke_token",
    "user_by_name",
]

_NEEDS_CENTER = frozenset({Role.CENTER_COORDINATOR})
_NEEDS_SITE = frozenset({Role.SITE_OPERATOR, Role.QA})
GXP_ROLES = frozenset(
    {role for t in TRANSITIONS if t.needs_signature for role in t.roles}
    | {Role.QA, Role.CENTER_COORDINATOR}
)
"""Roles that sign steps or read patient identity: granting one may need two admins."""


def _view(row: UserRow) -> UserView:
    pending = None
    if row.pending_grant:
        grant = json.loads(row.pending_grant)
        tenant = grant.get("center") or grant.get("site")
        pending = f"{grant['kind']} as {grant['role']}{' at ' + tenant if tenant else ''}"
    return UserView(
        id=row.id,
        username=row.username,
        printed_name=row.printed_name,
        role=Role(row.role),
        center=row.center,
        site=row.site,
        active=row.active,
        enrolled=row.password_hash is not None,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
        pending=pending,
    )


def _check_tenant(ctx: ServiceContext, role: Role, center: str | None, site: str | None) -> None:
    net = ctx.network
    if role in _NEEDS_CENTER:
        if center is None:
            raise Invalid(f"role {role.value!r} needs a center", field="center")
        if center not in {c.id for c in net.treatment_centers}:
            raise Invalid(f"unknown treatment center {center!r}", field="center")
    elif center is not None:
        raise Invalid(f"role {role.value!r} has no center", field="center")
    if role in _NEEDS_SITE:
        if site is None:
            raise Invalid(f"role {role.value!r} needs a manufacturing site", field="site")
        if site not in {s.id for s in net.sites}:
            raise Invalid(f"unknown manufacturing site {site!r}", field="site")
    elif site is not None:
        raise Invalid(f"role {role.value!r} has no site", field="site")


def _admin(by: Principal, what: str) -> None:
    if by is not SYSTEM:
        by.require({Role.ADMIN}, what)


def _needs_second_admin(ctx: ServiceContext, by: Principal, role: Role) -> bool:
    return by is not SYSTEM and ctx.settings.role_grant_approval and role in GXP_ROLES


def _enrolment(ctx: ServiceContext, row: UserRow) -> str:
    """Give ``row`` a fresh one-time enrolment token (its keyed hash is stored)."""
    token = new_token()
    row.enrolment_hash = token_hash(token, token_key(ctx))
    row.enrolment_expires = ctx.now() + ctx.settings.enrolment_lifetime
    return token


def _unique(session: Session, row: UserRow) -> None:
    taken = session.scalar(
        select(UserRow.username).where(UserRow.login_name == row.login_name, UserRow.id != row.id)
    )
    if taken is not None:
        raise Conflict(f"username {row.username!r} is taken (as {taken!r})", field="username")
    same = session.scalar(
        select(UserRow.username).where(UserRow.name_key == row.name_key, UserRow.id != row.id)
    )
    if same is not None:
        raise Conflict(
            f"the printed name {row.printed_name!r} is already used by {same!r} at the same "
            "center, site or network level; printed names identify signers",
            field="printed_name",
        )


def create_user(ctx: ServiceContext, by: Principal, new: NewUser) -> Enrolment:
    """Make an account; it gets a one-time enrolment token, not a password.

    Only the command line (:data:`SYSTEM`: bootstrap and demo) may set the password
    directly. A GxP role made by an administrator waits for a second one's approval.
    """
    _admin(by, "create users")
    _check_tenant(ctx, new.role, new.center, new.site)
    if new.password is not None:
        if by is not SYSTEM:
            raise Invalid(
                "administrators do not set passwords: the person sets their own with the "
                "enrolment token",
                field="password",
            )
        check_password(
            new.password,
            username=new.username,
            printed_name=new.printed_name,
            min_length=ctx.settings.password_min_length,
        )
    password_hash = None
    if new.password is not None:
        password_hash = guard_of(ctx).slots.run(hash_password, new.password)
    now = ctx.now()
    row = UserRow(
        id=new_id("usr"),
        username=new.username,
        login_name=new.username.casefold(),
        printed_name=new.printed_name,
        name_key=name_key(new.printed_name, new.center, new.site),
        password_hash=password_hash,
        password_set_at=None if password_hash is None else now,
        role=new.role.value,
        center=new.center,
        site=new.site,
        active=True,
        failed_logins=0,
        created_at=now,
    )
    token = None
    if _needs_second_admin(ctx, by, new.role):
        row.active = False
        row.pending_grant = _grant("create", by, new.role, new.center, new.site)
    elif password_hash is None:
        token = _enrolment(ctx, row)
    try:
        with ctx.transaction() as session:
            _unique(session, row)
            session.add(row)
            session.flush()
            record_account(ctx, session, by, row, None, "account created")
    except IntegrityError:
        raise Conflict(f"username {new.username!r} is taken", field="username") from None
    return Enrolment(user=_view(row), enrolment_token=token, expires_at=row.enrolment_expires)


def _grant(kind: str, by: Principal, role: Role, center: str | None, site: str | None) -> str:
    return json.dumps(
        {"kind": kind, "role": role.value, "center": center, "site": site, "by": by.user_id},
        sort_keys=True,
    )


def enrol(
    ctx: ServiceContext, token: str, password: str, address: str = UNKNOWN_ADDRESS
) -> UserView:
    """Set one's own password with a one-time enrolment token (after creation or reset)."""
    guard = guard_of(ctx)
    now = ctx.now()
    guard.addresses.check(address, now)
    key = token_hash(token, token_key(ctx))
    with ctx.reading() as session:
        row = session.scalar(select(UserRow).where(UserRow.enrolment_hash == key))
        found = (
            None if row is None else (row.id, row.username, row.printed_name, row.enrolment_expires)
        )
    if found is None or found[3] is None or found[3] <= now:
        guard.addresses.failed(address, now)
        raise Unauthorized("unknown or expired enrolment token; ask an administrator for a new one")
    user_id, username, printed_name, _ = found
    check_password(
        password,
        username=username,
        printed_name=printed_name,
        min_length=ctx.settings.password_min_length,
    )
    hashed = guard.slots.run(hash_password, password)
    with ctx.transaction() as session:
        row = session.get(UserRow, user_id, with_for_update=True)
        if row is None or row.enrolment_hash != key:
            raise Unauthorized("the enrolment token was used or replaced meanwhile")
        before = audited_values(row)
        row.password_hash = hashed
        row.password_set_at = ctx.now()
        row.enrolment_hash = None
        row.enrolment_expires = None
        record_account(ctx, session, principal_of(row), row, before, f"enrolled from {address}")
        return _view(row)


def change_password(
    ctx: ServiceContext, username: str, old: str, new: str, address: str = UNKNOWN_ADDRESS
) -> None:
    """Change one's own password, proving the old one (also when it has expired)."""
    principal = check_credentials(ctx, username, old, address, allow_expired=True)
    if new == old:
        raise Invalid("the new password is the old one", field="new_password")
    check_password(
        new,
        username=principal.username,
        printed_name=principal.name,
        min_length=ctx.settings.password_min_length,
        field="new_password",
    )
    hashed = guard_of(ctx).slots.run(hash_password, new)
    with ctx.transaction() as session:
        row = _row(session, principal.user_id)
        before = audited_values(row)
        row.password_hash = hashed
        row.password_set_at = ctx.now()
        record_account(ctx, session, principal, row, before, "password changed by its owner")


def list_users(ctx: ServiceContext, by: Principal) -> list[UserView]:
    _admin(by, "list users")
    with ctx.reading() as session:
        return [_view(r) for r in session.scalars(select(UserRow).order_by(UserRow.login_name))]


def _row(session: Session, user_id: str) -> UserRow:
    row = session.get(UserRow, user_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no user {user_id!r}", field="user_id")
    return row


def find_user(ctx: ServiceContext, username: str) -> str:
    """The id of the account with ``username`` (any case); :class:`NotFound` otherwise."""
    with ctx.reading() as session:
        row = user_by_name(session, username)
        if row is None:
            raise NotFound(f"no user {username!r}", field="username")
        return row.id


def change_user(
    ctx: ServiceContext, by: Principal, user_id: str, change: AccountChange
) -> UserView:
    """Disable or re-enable an account, change its role, tenant or printed name."""
    _admin(by, "change accounts")
    if user_id == by.user_id:
        raise Forbidden("administrators do not change their own account; ask another one")
    with ctx.transaction() as session:
        row = _row(session, user_id)
        before = audited_values(row)
        given = change.model_fields_set
        if change.printed_name is not None:
            row.printed_name = change.printed_name
        if given & {"role", "center", "site"}:
            role = change.role or Role(row.role)
            center = change.center if "center" in given else row.center
            site = change.site if "site" in given else row.site
            _check_tenant(ctx, role, center, site)
            if _needs_second_admin(ctx, by, role):
                row.pending_grant = _grant("grant", by, role, center, site)
            else:
                row.role, row.center, row.site = role.value, center, site
        row.name_key = name_key(row.printed_name, row.center, row.site)
        _unique(session, row)
        if change.active is not None:
            if (
                change.active
                and row.pending_grant
                and json.loads(row.pending_grant)["kind"] == "create"
            ):
                raise Conflict("the account waits for a second administrator's approval")
            row.active = change.active
        record_account(ctx, session, by, row, before, change.reason)
        if not row.active or before["role"] != row.role:
            end_credentials(ctx, session, by, row.id, change.reason)
        return _view(row)


def approve(ctx: ServiceContext, by: Principal, user_id: str) -> Enrolment:
    """A second administrator approves a pending GxP grant (or account, or reset)."""
    _admin(by, "approve role grants")
    with ctx.transaction() as session:
        row = _row(session, user_id)
        if row.pending_grant is None:
            raise Conflict(f"nothing of {row.username!r} waits for approval")
        grant = json.loads(row.pending_grant)
        if by is not SYSTEM and grant["by"] == by.user_id:
            raise Forbidden("a second administrator must approve what you asked for")
        if user_id == by.user_id:
            raise Forbidden("administrators do not approve grants to themselves")
        before = audited_values(row)
        row.role, row.center, row.site = grant["role"], grant["center"], grant["site"]
        row.name_key = name_key(row.printed_name, row.center, row.site)
        _unique(session, row)
        row.pending_grant = None
        token = None
        if grant["kind"] in ("create", "reset"):
            row.active = True
            token = _enrolment(ctx, row)
        record_account(ctx, session, by, row, before, f"{grant['kind']} approved")
        return Enrolment(user=_view(row), enrolment_token=token, expires_at=row.enrolment_expires)


def reset_password(ctx: ServiceContext, by: Principal, user_id: str, reason: str) -> Enrolment:
    """Force a new password: the old one stops working, tokens and sessions end, and the
    person enrols again with a new one-time token (given to a second administrator for
    GxP accounts when approval is required)."""
    _admin(by, "reset passwords")
    if user_id == by.user_id:
        raise Forbidden("change your own password with the old one instead")
    with ctx.transaction() as session:
        row = _row(session, user_id)
        before = audited_values(row)
        row.password_hash = None
        row.password_set_at = None
        row.enrolment_hash = row.enrolment_expires = None
        token = None
        role = Role(row.role)
        if _needs_second_admin(ctx, by, role):
            row.pending_grant = _grant("reset", by, role, row.center, row.site)
        else:
            token = _enrolment(ctx, row)
        record_account(ctx, session, by, row, before, reason)
        end_credentials(ctx, session, by, row.id, reason)
        return Enrolment(user=_view(row), enrolment_token=token, expires_at=row.enrolment_expires)


def unlock(ctx: ServiceContext, by: Principal, user_id: str) -> UserView:
    """Lift a lockout (and the failure count) before it ends by itself."""
    _admin(by, "lift lockouts")
    with ctx.transaction() as session:
        row = _row(session, user_id)
        before = (row.failed_logins, row.locked_until)
        row.failed_logins = 0
        row.locked_until = None
        record_lockout(ctx, session, by, row, before, "lockout lifted by an administrator")
        return _view(row)


def seal_legacy(ctx: ServiceContext) -> int:
    """Seal and audit accounts made before credentials were sealed (command line only)."""
    with ctx.transaction() as session:
        rows = list(session.scalars(select(UserRow).where(UserRow.seal.is_(None))))
        for row in rows:
            reseal(ctx, row)
            values = audited_values(row)
            ctx.record(
                session,
                SYSTEM,
                AuditAction.UPDATE,
                "user",
                row.id,
                [(k, None, v) for k, v in values.items() if v is not None]
                or [("seal", None, "set")],
                reason_code=ReasonCode.OTHER,
                reason_text="credentials recorded when sealing an account made before seals",
            )
    return len(rows)


def end_credentials(
    ctx: ServiceContext, session: Session, by: Principal, user_id: str, why: str
) -> int:
    """End every live token and portal session of a user, audited; how many."""
    now = ctx.now()
    count = 0
    for token in session.scalars(
        select(TokenRow).where(TokenRow.user_id == user_id, TokenRow.revoked_at.is_(None))
    ):
        end_token(ctx, session, by, token, why)
        count += 1
    for web in session.scalars(
        select(WebSessionRow).where(
            WebSessionRow.user_id == user_id, WebSessionRow.ended_at.is_(None)
        )
    ):
        web.ended_at = now
        ctx.record(
            session,
            by,
            AuditAction.UPDATE,
            "web_session",
            web.token_hash,
            [("ended_at", None, audit_value(now))],
            reason_code=ReasonCode.OTHER,
            reason_text=why,
        )
        count += 1
    return count


def revoke_user_tokens(ctx: ServiceContext, by: Principal, user_id: str) -> int:
    """Revoke every live token and session of a user (an administrator's action)."""
    _admin(by, "revoke other users' tokens")
    with ctx.transaction() as session:
        _row(session, user_id)
        return end_credentials(ctx, session, by, user_id, "revoked by an administrator")
