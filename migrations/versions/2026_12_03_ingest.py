"""Bulk ingest: each stock record's raw-input hash and its leaf in a chunk's Merkle tree,
and the leaf hashes of every chunk registered with one ledger entry

Revision ID: 0019_ingest
Revises: 0018_compliance
Create Date: 2026-12-03 16:10:00
"""

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision = "0019_ingest"
down_revision = "0018_compliance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stock_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("ledger_leaf", sa.Integer(), nullable=True))
    op.create_table(
        "stock_chunks",
        sa.Column("ledger_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("leaf_hashes", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ledger_seq", name=op.f("pk_stock_chunks")),
    )


def downgrade() -> None:
    op.drop_table("stock_chunks")
    with op.batch_alter_table("stock_records", schema=None) as batch_op:
        batch_op.drop_column("ledger_leaf")
        batch_op.drop_column("raw_sha256")
