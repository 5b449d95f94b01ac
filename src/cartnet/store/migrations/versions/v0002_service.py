"""The orchestration service: planned chains and pseudonyms on orders, the last entry's
time on the audit head, slot usage, counters, order steps, signatures, collections, QC
results, shipments, temperature logs, exceptions, users, tokens, key fingerprints and
idempotency keys.

A snapshot, like 0001. Orders gain non-null columns without defaults: no release before
this one created orders, so there are no rows to fill.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cartnet.store.tables import UTCDateTime

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_ORDER_COLUMNS = (
    ("pseudonym", sa.String(16), False),
    ("patient_identity", sa.Text(), False),
    ("country", sa.String(2), False),
    ("earliest_apheresis", sa.Date(), False),
    ("site", sa.String(64), True),
    ("apheresis_on", sa.Date(), True),
    ("start_on", sa.Date(), True),
    ("release_on", sa.Date(), True),
    ("delivery_on", sa.Date(), True),
    ("infusion_on", sa.Date(), True),
    ("din", sa.String(16), True),
)


def _big_id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def _order_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["order_id"], ["orders.id"], name=f"fk_{table}_order_id_orders", ondelete="RESTRICT"
    )


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        for name, kind, nullable in _ORDER_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=nullable))
        batch.create_unique_constraint("uq_orders_pseudonym", ["pseudonym"])
        batch.create_unique_constraint("uq_orders_din", ["din"])
        batch.create_index("ix_orders_site", ["site"])
        batch.create_index("ix_orders_center_created", ["center", "created_at", "id"])
    with op.batch_alter_table("audit_head") as batch:
        batch.add_column(sa.Column("timestamp", UTCDateTime(), nullable=True))
    op.create_table(
        "slot_usage",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('manufacturing', 'apheresis', 'qc')", name="ck_slot_usage_kind"
        ),
        sa.CheckConstraint("booked >= 0", name="ck_slot_usage_booked_not_negative"),
        sa.PrimaryKeyConstraint("kind", "resource", "day", name="pk_slot_usage"),
    )
    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )
    op.create_table(
        "order_steps",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=False),
        sa.Column("to_state", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("reason_code", sa.String(32), nullable=True),
        sa.Column("reason_text", sa.Text(), nullable=True),
        sa.Column("record_hash", sa.String(64), nullable=False),
        _order_fk("order_steps"),
        sa.PrimaryKeyConstraint("id", name="pk_order_steps"),
    )
    op.create_index("ix_order_steps_order_id", "order_steps", ["order_id"])
    op.create_table(
        "signatures",
        _big_id(),
        sa.Column("record_type", sa.String(32), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("signer_id", sa.String(64), nullable=False),
        sa.Column("printed_name", sa.String(200), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.Column("meaning", sa.String(32), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("signature_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signatures"),
    )
    op.create_index("ix_signatures_record_id", "signatures", ["record_id"])
    op.create_table(
        "collections",
        _big_id(),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("din", sa.String(16), nullable=False),
        sa.Column("collected_at", UTCDateTime(), nullable=False),
        _order_fk("collections"),
        sa.PrimaryKeyConstraint("id", name="pk_collections"),
        sa.UniqueConstraint("din", name="uq_collections_din"),
    )
    op.create_index("ix_collections_order_id", "collections", ["order_id"])
    op.create_table(
        "qc_results",
        _big_id(),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("test", sa.String(64), nullable=False),
        sa.Column("result", sa.String(200), nullable=False),
        sa.Column("specification", sa.String(200), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("tested_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        _order_fk("qc_results"),
        sa.PrimaryKeyConstraint("id", name="pk_qc_results"),
    )
    op.create_index("ix_qc_results_order_id", "qc_results", ["order_id"])
    op.create_table(
        "shipments",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("courier", sa.String(200), nullable=False),
        sa.Column("tracking", sa.String(200), nullable=False),
        sa.Column("low_c", sa.Float(), nullable=True),
        sa.Column("high_c", sa.Float(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.CheckConstraint("direction IN ('to_site', 'to_center')", name="ck_shipments_direction"),
        _order_fk("shipments"),
        sa.PrimaryKeyConstraint("id", name="pk_shipments"),
    )
    op.create_index("ix_shipments_order_id", "shipments", ["order_id"])
    op.create_table(
        "temperature_logs",
        _big_id(),
        sa.Column("shipment_id", sa.String(64), nullable=False),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("excursions", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipments.id"],
            name="fk_temperature_logs_shipment_id_shipments",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_temperature_logs"),
    )
    op.create_index("ix_temperature_logs_shipment_id", "temperature_logs", ["shipment_id"])
    op.create_table(
        "order_exceptions",
        _big_id(),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("raised_by", sa.String(64), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("closure_reason", sa.Text(), nullable=True),
        _order_fk("order_exceptions"),
        sa.PrimaryKeyConstraint("id", name="pk_order_exceptions"),
    )
    op.create_index("ix_order_exceptions_order_id", "order_exceptions", ["order_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("printed_name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("center", sa.String(64), nullable=True),
        sa.Column("site", sa.String(64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_tokens_user_id_users", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_tokens"),
    )
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])
    op.create_table(
        "key_checks",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_key_checks"),
    )
    op.create_table(
        "idempotency_keys",
        _big_id(),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_idempotency_keys"),
        sa.UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),
    )


def downgrade() -> None:
    for table in (
        "idempotency_keys", "key_checks", "tokens", "users", "order_exceptions", "temperature_logs",
        "shipments", "qc_results", "collections", "signatures", "order_steps", "counters",
        "slot_usage",
    ):  # fmt: skip
        op.drop_table(table)
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("timestamp")
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_center_created")
        batch.drop_index("ix_orders_site")
        batch.drop_constraint("uq_orders_din", type_="unique")
        batch.drop_constraint("uq_orders_pseudonym", type_="unique")
        for name, _kind, _nullable in reversed(_ORDER_COLUMNS):
            batch.drop_column(name)
