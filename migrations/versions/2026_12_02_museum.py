"""Stock records can be withdrawn by their source (and reinstated)

Revision ID: 0005_museum
Revises: 0005_ledger
Create Date: 2026-12-02 17:30:00
"""

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision = "0005_museum"
down_revision = "0005_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stock_records") as batch:
        batch.add_column(
            sa.Column("withdrawn_at", marketplace.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(  # existing rows: not withdrawn
            sa.Column("withdrawn_reason", sa.String(length=200), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("stock_records") as batch:
        batch.drop_column("withdrawn_reason")
        batch.drop_column("withdrawn_at")
