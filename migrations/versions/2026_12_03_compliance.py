"""Compliance checks: uploaded manifests classified against the registry and the catalog

Revision ID: 0018_compliance
Revises: 0017_optoutsearch
Create Date: 2026-12-03 16:00:00
"""

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision = "0018_compliance"
down_revision = "0017_optoutsearch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compliance_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("intended_uses", sa.JSON(), nullable=False),
        sa.Column("manifest_key", sa.String(length=255), nullable=False),
        sa.Column("rows_key", sa.String(length=255), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "done",
                "failed",
                name="checkstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("rows_done", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_compliance_checks_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_compliance_checks_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_checks")),
    )
    with op.batch_alter_table("compliance_checks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_compliance_checks_organization_id"), ["organization_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("compliance_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_compliance_checks_organization_id"))
    op.drop_table("compliance_checks")
