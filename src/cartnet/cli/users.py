"""``cartnet users``: accounts from the command line, for whoever runs the server.

The command line acts as the cartnet system (it holds the database and the keys): it
may set the first administrator's password directly, and counts as the second
administrator when approving a GxP grant. Everything it does is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer
from pydantic import ValidationError

from cartnet.cli.common import fail, out
from cartnet.cli.db import DB_OPTION
from cartnet.cli.serve import CONFIG_OPTION, NETWORK_OPTION, SCENARIO_OPTION, service
from cartnet.ledger.roles import Role
from cartnet.service import ServiceError, accounts
from cartnet.service.context import ServiceContext
from cartnet.service.schemas import AccountChange, Enrolment, NewUser

users_app = typer.Typer(name="users", help="Manage the service's accounts.", no_args_is_help=True)
T = TypeVar("T")
USERNAME = typer.Argument(..., help="Login name (any case).")
FIELD_OPTIONS = {
    "username": "USERNAME",
    "printed_name": "--name",
    "password": "--password",
    "role": "--role",
    "center": "--center",
    "site": "--site",
    "reason": "--reason",
}
"""The command-line names of the account fields, for messages."""


def _nonblank(value: str) -> str:
    if not value.strip():
        raise typer.BadParameter("give a reason: it is recorded in the audit trail")
    return value


REASON = typer.Option(
    ..., "--reason", callback=_nonblank, help="Why (recorded in the audit trail)."
)


def _field(name: str | None) -> str:
    return f"{FIELD_OPTIONS.get(name, name)}: " if name else ""


def _invalid(what: str, e: ValidationError) -> None:
    problems = [f"{_field(str(x['loc'][0]) if x['loc'] else None)}{x['msg']}" for x in e.errors()]
    fail(f"{what}: {problems[0]}", problems[1:])


def _run(ctx: ServiceContext, job: Callable[[], T]) -> T:
    try:
        return job()
    except ServiceError as e:
        fail(f"{_field(e.field)}{e.detail}")


def _print_enrolment(enrolment: Enrolment) -> None:
    user = enrolment.user
    if enrolment.enrolment_token is not None:
        assert enrolment.expires_at is not None
        out.print(
            f"enrolment token for {user.username} (one use, until "
            f"{enrolment.expires_at.isoformat(timespec='minutes')}): "
            f"{enrolment.enrolment_token}\n"
            f"give it to the person; they set their password at /enrol or with "
            f"`cartnet users enrol`",
            highlight=False,
            soft_wrap=True,
        )
    elif user.pending:
        out.print(
            f"{user.username}: {user.pending} waits for a second administrator", highlight=False
        )


@users_app.command("create")
def create(
    username: str = typer.Argument(..., help="Login name (unique whatever its case)."),
    role: Role = typer.Option(..., "--role", help="The user's role."),
    name: str = typer.Option(..., "--name", help="Printed name, as shown on signatures."),
    center: str | None = typer.Option(None, help="Treatment center (center coordinators)."),
    site: str | None = typer.Option(None, help="Manufacturing site (site operators, QA)."),
    password: str | None = typer.Option(
        None,
        envvar="CARTNET_NEW_PASSWORD",
        help="Set the password now (the first administrator, who runs this command); "
        "without it the account gets a one-time enrolment token.",
    ),
    db: str | None = DB_OPTION,
    network: str | None = NETWORK_OPTION,
    scenario: str | None = SCENARIO_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Create an account; prints its enrolment token unless --password is given."""
    try:
        new = NewUser(
            username=username,
            printed_name=name,
            password=password,
            role=role,
            center=center,
            site=site,
        )
    except ValidationError as e:
        _invalid("cannot create the user", e)
    with service(db, network, scenario, config) as ctx:
        enrolment = _run(ctx, lambda: accounts.create_user(ctx, accounts.SYSTEM, new))
    user = enrolment.user
    tenant = user.center or user.site
    out.print(
        f"created {user.username} ({user.role.value}{', ' + tenant if tenant else ''}), "
        f"id {user.id}",
        highlight=False,
    )
    _print_enrolment(enrolment)


@users_app.command("enrol")
def enrol(
    token: str = typer.Argument(..., help="The one-time enrolment token."),
    password: str = typer.Option(
        ...,
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        envvar="CARTNET_NEW_PASSWORD",
        help="The new password (asked for when not given; at least 15 characters).",
    ),
    db: str | None = DB_OPTION,
) -> None:
    """Set your own password with an enrolment token."""
    with service(db) as ctx:
        user = _run(ctx, lambda: accounts.enrol(ctx, token, password, "command line"))
    out.print(f"{user.username} enrolled: log in with the new password", highlight=False)


@users_app.command("list")
def list_users(db: str | None = DB_OPTION) -> None:
    """List the accounts, with lockouts and what waits for approval."""
    with service(db) as ctx:
        users = accounts.list_users(ctx, accounts.SYSTEM)
    for user in users:
        tenant = user.center or user.site or ""
        state = [] if user.active else ["disabled"]
        if not user.enrolled:
            state.append("not enrolled")
        if user.locked_until is not None:
            state.append(
                f"{user.failed_logins} failed logins, locked until "
                f"{user.locked_until.isoformat(timespec='seconds')}"
            )
        if user.pending:
            state.append(f"pending: {user.pending}")
        shown = f" ({'; '.join(state)})" if state else ""
        out.print(
            f"{user.username}\t{user.role.value}\t{tenant}\t{user.printed_name}{shown}",
            highlight=False,
        )


def _change(username: str, db: str | None, **change: object) -> None:
    try:
        body = AccountChange.model_validate(change)
    except ValidationError as e:
        _invalid("cannot change the account", e)
    with service(db) as ctx:
        user = _run(
            ctx,
            lambda: accounts.change_user(
                ctx, accounts.SYSTEM, accounts.find_user(ctx, username), body
            ),
        )
    out.print(
        f"{user.username}: {user.role.value}, {'active' if user.active else 'disabled'}",
        highlight=False,
    )
    if user.pending:
        out.print(f"pending: {user.pending}", highlight=False)


@users_app.command("disable")
def disable(username: str = USERNAME, reason: str = REASON, db: str | None = DB_OPTION) -> None:
    """Disable an account: its tokens and sessions end at once."""
    _change(username, db, active=False, reason=reason)


@users_app.command("enable")
def enable(username: str = USERNAME, reason: str = REASON, db: str | None = DB_OPTION) -> None:
    """Re-enable a disabled account."""
    _change(username, db, active=True, reason=reason)


@users_app.command("set-role")
def set_role(
    username: str = USERNAME,
    role: Role = typer.Option(..., "--role", help="The new role."),
    center: str | None = typer.Option(None, help="Treatment center (center coordinators)."),
    site: str | None = typer.Option(None, help="Manufacturing site (site operators, QA)."),
    reason: str = REASON,
    db: str | None = DB_OPTION,
) -> None:
    """Change an account's role and tenant (center or site)."""
    _change(username, db, role=role, center=center, site=site, reason=reason)


@users_app.command("approve")
def approve(username: str = USERNAME, db: str | None = DB_OPTION) -> None:
    """Approve a pending GxP grant, account or reset (as the second administrator)."""
    with service(db) as ctx:
        enrolment = _run(
            ctx, lambda: accounts.approve(ctx, accounts.SYSTEM, accounts.find_user(ctx, username))
        )
    out.print(f"approved for {enrolment.user.username}", highlight=False)
    _print_enrolment(enrolment)


@users_app.command("reset-password")
def reset_password(
    username: str = USERNAME, reason: str = REASON, db: str | None = DB_OPTION
) -> None:
    """Force a new password: prints a new enrolment token; tokens and sessions end."""
    with service(db) as ctx:
        enrolment = _run(
            ctx,
            lambda: accounts.reset_password(
                ctx, accounts.SYSTEM, accounts.find_user(ctx, username), reason
            ),
        )
    _print_enrolment(enrolment)


@users_app.command("unlock")
def unlock(username: str = USERNAME, db: str | None = DB_OPTION) -> None:
    """Lift a lockout after failed logins."""
    with service(db) as ctx:
        user = _run(
            ctx, lambda: accounts.unlock(ctx, accounts.SYSTEM, accounts.find_user(ctx, username))
        )
    out.print(f"{user.username}: lockout lifted", highlight=False)


@users_app.command("revoke-tokens")
def revoke_tokens(username: str = USERNAME, db: str | None = DB_OPTION) -> None:
    """Revoke every live bearer token and portal session of a user."""
    with service(db) as ctx:
        count = _run(
            ctx,
            lambda: accounts.revoke_user_tokens(
                ctx, accounts.SYSTEM, accounts.find_user(ctx, username)
            ),
        )
    out.print(f"revoked {count} token(s) of {username}", highlight=False)


@users_app.command("seal")
def seal(db: str | None = DB_OPTION) -> None:
    """Seal accounts made before credential seals (after upgrading); audited."""
    with service(db) as ctx:
        count = accounts.seal_legacy(ctx)
    out.print(f"sealed {count} account(s)", highlight=False)
