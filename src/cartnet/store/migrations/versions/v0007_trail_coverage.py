"""Where the audit trail began to hold every evidence column.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10

Rows written before this migration were audited with fewer columns (custody actor and
organisation, step and signature rows, collections, slot usage ...). The one row of
``trail_coverage`` keeps the audit head's sequence at this point, so that
``cartnet audit verify`` can report those older records as *not checked* instead of as
tampered; on a new database it is 0 and every record must be fully covered. Audit
entity ids grow to 200 characters (a slot usage's is ``kind/resource/day``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from cartnet.store.tables import UTCDateTime

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Entity ids of slot usage (kind/resource/day) can outgrow 64 characters.
    with op.batch_alter_table("audit_entries") as batch:
        batch.alter_column(
            "entity_id", existing_type=sa.String(64), type_=sa.String(200), existing_nullable=False
        )
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
    with op.batch_alter_table("audit_entries") as batch:
        batch.alter_column(
            "entity_id", existing_type=sa.String(200), type_=sa.String(64), existing_nullable=False
        )
