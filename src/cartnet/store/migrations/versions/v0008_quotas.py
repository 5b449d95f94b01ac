"""Quotas: slots of a site held for a center, market or trial over a period.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

Planners set them (:mod:`cartnet.service.quotas`); bookings honour them. Retired quotas
stay (``retired_at``), so the history of the rules is kept beside the audit trail.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cartnet.store.tables import UTCDateTime

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "quotas",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("holder_kind", sa.String(16), nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=True),
        sa.Column("share", sa.Float(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("release_days", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.Column("retired_by", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "holder_kind IN ('center', 'market', 'trial')", name="ck_quotas_holder_kind"
        ),
        sa.CheckConstraint(
            "(slots IS NULL AND share IS NOT NULL) OR (slots IS NOT NULL AND share IS NULL)",
            name="ck_quotas_slots_or_share",
        ),
        sa.CheckConstraint("slots IS NULL OR slots >= 0", name="ck_quotas_slots_not_negative"),
        sa.CheckConstraint(
            "share IS NULL OR (share >= 0 AND share <= 1)", name="ck_quotas_share_range"
        ),
        sa.CheckConstraint("period_end >= period_start", name="ck_quotas_period"),
        sa.CheckConstraint("release_days >= 0", name="ck_quotas_release_days_not_negative"),
        sa.PrimaryKeyConstraint("id", name="pk_quotas"),
    )
    op.create_index("ix_quotas_site", "quotas", ["site"])


def downgrade() -> None:
    op.drop_table("quotas")
