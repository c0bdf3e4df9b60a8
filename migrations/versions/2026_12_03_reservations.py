"""Reservations: TDMRep, ai.txt and robots.txt files on record per domain, and their rules

Revision ID: 0014_reservations
Revises: 0013_governance
Create Date: 2026-12-03 16:30:00
"""

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision = "0014_reservations"
down_revision = "0013_governance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reservation_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "tdmrep", "ai.txt", "robots", name="reservationkind", native_enum=False, length=10
            ),
            nullable=False,
        ),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "upload",
                "cli",
                "admin",
                "fetch",
                name="reservationsource",
                native_enum=False,
                length=10,
            ),
            nullable=False,
        ),
        sa.Column("source_url", sa.String(length=2048), nullable=True),
        sa.Column("loaded_by_id", sa.Integer(), nullable=True),
        sa.Column("loaded_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("replaced_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["loaded_by_id"], ["users.id"], name=op.f("fk_reservation_files_loaded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservation_files")),
    )
    with op.batch_alter_table("reservation_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reservation_files_domain"), ["domain"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_reservation_files_loaded_by_id"), ["loaded_by_id"], unique=False
        )
        batch_op.create_index(
            "uq_reservation_files_current",
            ["domain", "kind"],
            unique=True,
            sqlite_where=sa.text("replaced_at IS NULL"),
            postgresql_where=sa.text("replaced_at IS NULL"),
        )
    op.create_table(
        "reservation_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=255), nullable=True),
        sa.Column("reserve", sa.Boolean(), nullable=False),
        sa.Column("pattern", sa.String(length=2048), nullable=False),
        sa.Column("policy_url", sa.String(length=2048), nullable=True),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["reservation_files.id"],
            name=op.f("fk_reservation_rules_file_id_reservation_files"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservation_rules")),
    )
    with op.batch_alter_table("reservation_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reservation_rules_file_id"), ["file_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reservation_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reservation_rules_file_id"))
    op.drop_table("reservation_rules")
    with op.batch_alter_table("reservation_files", schema=None) as batch_op:
        batch_op.drop_index("uq_reservation_files_current")
        batch_op.drop_index(batch_op.f("ix_reservation_files_loaded_by_id"))
        batch_op.drop_index(batch_op.f("ix_reservation_files_domain"))
    op.drop_table("reservation_files")
