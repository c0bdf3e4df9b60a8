"""Order items: what the package delivered (digest, type, size) or why it could not

Revision ID: 0006_delivered
Revises: 0005_buyers
Create Date: 2026-12-03 06:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_delivered"
down_revision = "0005_buyers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_items") as batch:
        batch.add_column(sa.Column("delivered_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("delivered_media_type", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("delivered_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("missing_reason", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("order_items") as batch:
        batch.drop_column("missing_reason")
        batch.drop_column("delivered_bytes")
        batch.drop_column("delivered_media_type")
        batch.drop_column("delivered_sha256")
