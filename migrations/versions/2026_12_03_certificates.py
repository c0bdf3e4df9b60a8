"""Certificates: one per order, its JSON in storage and what it seals in the ledger

Revision ID: 0007_certificates
Revises: 0006_delivered
Create Date: 2026-12-03 06:30:00
"""

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision = "0007_certificates"
down_revision = "0006_delivered"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "certificates",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("missing_count", sa.Integer(), nullable=False),
        sa.Column("items_root", sa.String(length=64), nullable=False),
        sa.Column("seal_seq", sa.BigInteger(), nullable=False),
        sa.Column("tree_size_at_purchase", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_certificates_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_certificates")),
    )


def downgrade() -> None:
    op.drop_table("certificates")
