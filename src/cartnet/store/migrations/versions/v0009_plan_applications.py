"""Signed applications of an optimization plan to real orders.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

A planner applies selected moves of a backlog optimization as reschedules; the
decision is one record, ``plan_applications``, that the planner's e-signature binds
(record type ``plan_application``), so ``cartnet audit verify`` can check the
signature against it as it checks a step's.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cartnet.store.tables import UTCDateTime

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "plan_applications",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("applied_at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("moves", sa.Text(), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_plan_applications_job_id_jobs", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_plan_applications"),
    )
    op.create_index("ix_plan_applications_job_id", "plan_applications", ["job_id"])


def downgrade() -> None:
    op.drop_table("plan_applications")
