"""Certificates are re-issued after a recall (their revision and when); artists' identity badge

Revision ID: 0015_certificate_revision
Revises: 0014_reservations
Create Date: 2026-12-03 17:00:00
"""

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision = "0015_certificate_revision"
down_revision = "0014_reservations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("artists", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "identity_verified_at", marketplace.db.UTCDateTime(timezone=True), nullable=True
            )
        )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(
            sa.Column("reissued_at", marketplace.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_column("reissued_at")
        batch_op.drop_column("revision")
    with op.batch_alter_table("artists", schema=None) as batch_op:
        batch_op.drop_column("identity_verified_at")
