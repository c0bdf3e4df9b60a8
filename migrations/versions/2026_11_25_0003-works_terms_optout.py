"""Works, versioned licence terms, the opt-out registry; artist API tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 09:09:13.124248
"""

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "works",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("artist_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("original_filename", sa.String(length=255), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("mime", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("phash", sa.BigInteger(), nullable=False),
        sa.Column("phash_b0", sa.Integer(), nullable=False),
        sa.Column("phash_b1", sa.Integer(), nullable=False),
        sa.Column("phash_b2", sa.Integer(), nullable=False),
        sa.Column("phash_b3", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active", "review", "withdrawn", name="workstatus", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("review_reason", sa.Text(), nullable=False),
        sa.Column("embedded_consent", sa.JSON(), nullable=False),
        sa.Column("file_prohibits_training", sa.Boolean(), nullable=False),
        sa.Column("derivatives_ready", sa.Boolean(), nullable=False),
        sa.Column("derivatives_version", sa.Integer(), nullable=False),
        sa.Column("current_terms_id", sa.Integer(), nullable=True),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["artist_id"], ["artists.id"], name=op.f("fk_works_artist_id_artists")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_works")),
    )
    with op.batch_alter_table("works", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_works_artist_id"), ["artist_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_works_phash_b0"), ["phash_b0"], unique=False)
        batch_op.create_index(batch_op.f("ix_works_phash_b1"), ["phash_b1"], unique=False)
        batch_op.create_index(batch_op.f("ix_works_phash_b2"), ["phash_b2"], unique=False)
        batch_op.create_index(batch_op.f("ix_works_phash_b3"), ["phash_b3"], unique=False)
        batch_op.create_index(batch_op.f("ix_works_sha256"), ["sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_works_status"), ["status"], unique=False)

    op.create_table(
        "optout_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "sha256",
                "phash",
                "url",
                "prefix",
                "domain",
                name="rulekind",
                native_enum=False,
                length=10,
            ),
            nullable=False,
        ),
        sa.Column("value", sa.String(length=2048), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("phash", sa.BigInteger(), nullable=True),
        sa.Column("phash_b0", sa.Integer(), nullable=True),
        sa.Column("phash_b1", sa.Integer(), nullable=True),
        sa.Column("phash_b2", sa.Integer(), nullable=True),
        sa.Column("phash_b3", sa.Integer(), nullable=True),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("image_key", sa.String(length=255), nullable=True),
        sa.Column("work_id", sa.Integer(), nullable=True),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ledger_seq", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_optout_rules_owner_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["work_id"], ["works.id"], name=op.f("fk_optout_rules_work_id_works")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_optout_rules")),
    )
    with op.batch_alter_table("optout_rules", schema=None) as batch_op:
        batch_op.create_index("ix_optout_rules_kind_host", ["kind", "host"], unique=False)
        batch_op.create_index("ix_optout_rules_kind_value", ["kind", "value"], unique=False)
        batch_op.create_index(batch_op.f("ix_optout_rules_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_optout_rules_phash_b0"), ["phash_b0"], unique=False)
        batch_op.create_index(batch_op.f("ix_optout_rules_phash_b1"), ["phash_b1"], unique=False)
        batch_op.create_index(batch_op.f("ix_optout_rules_phash_b2"), ["phash_b2"], unique=False)
        batch_op.create_index(batch_op.f("ix_optout_rules_phash_b3"), ["phash_b3"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_optout_rules_removed_at"), ["removed_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_optout_rules_work_id"), ["work_id"], unique=False)

    op.create_table(
        "work_terms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "donate", "license", "not_available", name="termskind", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("price_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("generative_training", sa.Boolean(), nullable=False),
        sa.Column("non_generative_training", sa.Boolean(), nullable=False),
        sa.Column("commercial_use", sa.Boolean(), nullable=False),
        sa.Column("fine_tuning", sa.Boolean(), nullable=False),
        sa.Column("style_imitation", sa.Boolean(), nullable=False),
        sa.Column("attribution_required", sa.Boolean(), nullable=False),
        sa.Column("overrides_file_signal", sa.Boolean(), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("ledger_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'license' AND price_minor IS NOT NULL AND price_minor > 0) "
            "OR (kind <> 'license' AND price_minor IS NULL)",
            name=op.f("ck_work_terms_price_matches_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_work_terms_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["work_id"], ["works.id"], name=op.f("fk_work_terms_work_id_works")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_terms")),
        sa.UniqueConstraint("work_id", "version", name=op.f("uq_work_terms_work_id_version")),
    )
    with op.batch_alter_table("work_terms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_work_terms_work_id"), ["work_id"], unique=False)

    # works <-> work_terms reference each other: the works side is added once both exist.
    with op.batch_alter_table("works", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_works_current_terms_id_work_terms", "work_terms", ["current_terms_id"], ["id"]
        )

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.alter_column("organization_id", existing_type=sa.INTEGER(), nullable=True)

    with op.batch_alter_table("artists", schema=None) as batch_op:
        batch_op.add_column(sa.Column("default_terms", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("works", schema=None) as batch_op:
        batch_op.drop_constraint("fk_works_current_terms_id_work_terms", type_="foreignkey")

    with op.batch_alter_table("artists", schema=None) as batch_op:
        batch_op.drop_column("default_terms")

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.alter_column("organization_id", existing_type=sa.INTEGER(), nullable=False)

    with op.batch_alter_table("work_terms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_terms_work_id"))

    op.drop_table("work_terms")
    with op.batch_alter_table("optout_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_optout_rules_work_id"))
        batch_op.drop_index(batch_op.f("ix_optout_rules_removed_at"))
        batch_op.drop_index(batch_op.f("ix_optout_rules_phash_b3"))
        batch_op.drop_index(batch_op.f("ix_optout_rules_phash_b2"))
        batch_op.drop_index(batch_op.f("ix_optout_rules_phash_b1"))
        batch_op.drop_index(batch_op.f("ix_optout_rules_phash_b0"))
        batch_op.drop_index(batch_op.f("ix_optout_rules_owner_id"))
        batch_op.drop_index("ix_optout_rules_kind_value")
        batch_op.drop_index("ix_optout_rules_kind_host")

    op.drop_table("optout_rules")
    with op.batch_alter_table("works", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_works_status"))
        batch_op.drop_index(batch_op.f("ix_works_sha256"))
        batch_op.drop_index(batch_op.f("ix_works_phash_b3"))
        batch_op.drop_index(batch_op.f("ix_works_phash_b2"))
        batch_op.drop_index(batch_op.f("ix_works_phash_b1"))
        batch_op.drop_index(batch_op.f("ix_works_phash_b0"))
        batch_op.drop_index(batch_op.f("ix_works_artist_id"))

    op.drop_table("works")
