"""Signed steps awaiting co-signature in the co-signers' own sessions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cartnet.store.tables import UTCDateTime

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "cosignature_requests",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("step_at", UTCDateTime(), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("meaning", sa.String(32), nullable=False),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(8), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("signatures", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name="fk_cosignature_requests_order_id_orders",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["users.id"],
            name="fk_cosignature_requests_requested_by_users",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_cosignature_requests"),
        sa.UniqueConstraint("step_id", name="uq_cosignature_requests_step_id"),
    )
    op.create_index("ix_cosignature_requests_order_id", "cosignature_requests", ["order_id"])
    op.create_index(
        "ix_cosignature_requests_requested_by", "cosignature_requests", ["requested_by"]
    )
    op.create_index("ix_cosignature_requests_state", "cosignature_requests", ["state"])


def downgrade() -> None:
    op.drop_table("cosignature_requests")
