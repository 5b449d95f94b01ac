"""Accounts: case-insensitive logins, unique printed names, enrolment, lockout, seals.

Existing bearer tokens and portal sessions are deleted: they were kept as plain SHA-256,
which the service no longer accepts (tokens are now keyed hashes); everyone logs in
again. Existing accounts have no credential seal yet: they cannot log in until
``cartnet users seal`` (run by whoever holds the keys) seals them, or an administrator
resets their password.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cartnet.store.tables import UTCDateTime

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def _name_key(printed_name: str, center: str | None, site: str | None) -> str:
    """As :func:`cartnet.service.credentials.name_key` computes it."""
    tenant = f"center:{center}" if center else f"site:{site}" if site else "network"
    return f"{tenant}|{' '.join(printed_name.casefold().split())}"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("login_name", sa.String(64), nullable=True))
        batch.add_column(sa.Column("name_key", sa.String(300), nullable=True))
        batch.add_column(sa.Column("password_set_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("enrolment_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("enrolment_expires", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("pending_grant", sa.String(200), nullable=True))
        batch.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("locked_until", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("seal", sa.String(64), nullable=True))
        batch.alter_column("password_hash", existing_type=sa.Text(), nullable=True)
    users = sa.table(
        "users",
        sa.column("id", sa.String),
        sa.column("username", sa.String),
        sa.column("printed_name", sa.String),
        sa.column("center", sa.String),
        sa.column("site", sa.String),
        sa.column("login_name", sa.String),
        sa.column("name_key", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(users.c.id, users.c.username, users.c.printed_name, users.c.center, users.c.site)
    ).all()
    for user_id, username, printed_name, center, site in rows:
        bind.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(
                login_name=username.casefold(),
                name_key=_name_key(printed_name, center, site),
            )
        )
    with op.batch_alter_table("users") as batch:
        batch.alter_column("login_name", existing_type=sa.String(64), nullable=False)
        batch.alter_column("name_key", existing_type=sa.String(300), nullable=False)
        batch.create_unique_constraint("uq_users_login_name", ["login_name"])
        batch.create_unique_constraint("uq_users_name_key", ["name_key"])
    op.execute(sa.text("DELETE FROM tokens"))
    op.execute(sa.text("DELETE FROM web_sessions"))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_name_key", type_="unique")
        batch.drop_constraint("uq_users_login_name", type_="unique")
        for name in (
            "seal",
            "locked_until",
            "failed_logins",
            "pending_grant",
            "enrolment_expires",
            "enrolment_hash",
            "password_set_at",
            "name_key",
            "login_name",
        ):
            batch.drop_column(name)
