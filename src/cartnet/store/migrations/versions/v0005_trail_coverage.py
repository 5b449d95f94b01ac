"""Where the audit trail began to hold every evidence column.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-10

Rows written before this migration were audited with fewer columns (custody actor and
organisation, step and signature rows, collections, slot usage ...). The one row of
``trail_coverage`` keeps the audit head's sequence at this point, so that
``cartnet audit verify`` can report those older records as *not checked* instead of as
tampered; on a new database it is 0 and every record must be fully covered.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from cartnet.store.tables import UTCDateTime

revision = "0005"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    coverage = op.create_table(
        "trail_coverage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("since_sequence", sa.BigInteger(), nullable=False),
        sa.Column("since_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_trail_coverage_single_row"),
        sa.PrimaryKeyConstraint("id", name="pk_trail_coverage"),
    )
    head = op.get_bind().execute(sa.text("SELECT sequence FROM audit_head WHERE id = 1")).scalar()
    op.bulk_insert(
        coverage,
        [{"id": 1, "since_sequence": int(head or 0), "since_at": datetime.now(UTC)}],
    )


def downgrade() -> None:
    op.drop_table("trail_coverage")
