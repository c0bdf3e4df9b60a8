"""Job outbox; a per-user session version that ends logins on password change or suspension

Revision ID: 0005_prod
Revises: 0005_museum
Create Date: 2026-12-02 17:40:00
"""

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision = "0005_prod"
down_revision = "0005_museum"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("func", sa.String(length=200), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(length=120), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_outbox")),
    )
    op.create_index(op.f("ix_job_outbox_created_at"), "job_outbox", ["created_at"], unique=False)
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="1")
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("session_version")
    op.drop_index(op.f("ix_job_outbox_created_at"), table_name="job_outbox")
    op.drop_table("job_outbox")
