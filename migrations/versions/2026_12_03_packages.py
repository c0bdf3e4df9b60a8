"""Delivery: packages and their files

Revision ID: 0008_packages
Revises: 0007_certificates
Create Date: 2026-12-03 06:30:00
"""

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision = "0008_packages"
down_revision = "0007_certificates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "packages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "building",
                "ready",
                "failed",
                name="packagestatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("items_total", sa.Integer(), nullable=False),
        sa.Column("items_done", sa.Integer(), nullable=False),
        sa.Column("items_missing", sa.Integer(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=False),
        sa.Column("missing_refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_packages_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_packages")),
        sa.UniqueConstraint("order_id", name=op.f("uq_packages_order_id")),
    )
    op.create_table(
        "package_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("storage_key", sa.String(length=512), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "shard",
                "metadata",
                "croissant",
                "card",
                "attribution",
                "licence",
                "missing",
                "certificate",
                "ai_act",
                name="filekind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_package_files_package_id_packages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_package_files")),
        sa.UniqueConstraint("package_id", "path", name=op.f("uq_package_files_package_id_path")),
    )
    with op.batch_alter_table("package_files") as batch:
        batch.create_index(batch.f("ix_package_files_package_id"), ["package_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("package_files") as batch:
        batch.drop_index(batch.f("ix_package_files_package_id"))
    op.drop_table("package_files")
    op.drop_table("packages")
