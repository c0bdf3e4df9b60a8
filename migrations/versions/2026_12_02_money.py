"""Catalog rows carry the uses their terms permit, so search can filter by them

Revision ID: 0005_money
Revises: 0005_prod
Create Date: 2026-12-02 17:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_money"
down_revision = "0005_prod"
branch_labels = None
depends_on = None

# The bits of marketplace.artists.terms.PERMITTED_USES at the time of writing (a migration must
# not change when the code does): bit i is PERMITTED_USES[i].
_USES = (
    "generative_training",
    "non_generative_training",
    "commercial_use",
    "fine_tuning",
    "style_imitation",
)
_ALL = (1 << len(_USES)) - 1


def upgrade() -> None:
    with op.batch_alter_table("catalog_items") as batch:
        batch.add_column(
            sa.Column("permitted_uses", sa.Integer(), server_default="0", nullable=False)
        )
    bits = " + ".join(
        f"(CASE WHEN t.{use} THEN {1 << i} ELSE 0 END)" for i, use in enumerate(_USES)
    )
    # Licensed works: what their current terms permit; public domain and CC0: everything.
    op.execute(
        "UPDATE catalog_items SET permitted_uses = COALESCE(("
        f"SELECT {bits} FROM works w JOIN work_terms t ON t.id = w.current_terms_id "
        "WHERE w.id = catalog_items.work_id), 0) WHERE license = 'licensed'"
    )
    op.execute(f"UPDATE catalog_items SET permitted_uses = {_ALL} WHERE license <> 'licensed'")


def downgrade() -> None:
    with op.batch_alter_table("catalog_items") as batch:
        batch.drop_column("permitted_uses")
