"""Index catalog_items.updated_at: the similar-works index checks max(updated_at) per query

Revision ID: 0012_similar
Revises: 0011_ledger_speed
Create Date: 2026-12-03 12:45:00
"""

from alembic import op

revision = "0012_similar"
down_revision = "0011_ledger_speed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_catalog_items_updated_at"), ["updated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("catalog_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_items_updated_at"))
