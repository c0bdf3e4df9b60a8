"""Opt-out registry generation: a counter and the generation that last changed each rule

Revision ID: 0010_optout_speed
Revises: 0009_payouts
Create Date: 2026-12-03 13:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_optout_speed"
down_revision = "0009_payouts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    state = op.create_table(
        "optout_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_optout_state")),
    )
    op.bulk_insert(state, [{"id": 1, "generation": 0}])
    with op.batch_alter_table("optout_rules", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("changed_generation", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.create_index(
            batch_op.f("ix_optout_rules_changed_generation"), ["changed_generation"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("optout_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_optout_rules_changed_generation"))
        batch_op.drop_column("changed_generation")
    op.drop_table("optout_state")
