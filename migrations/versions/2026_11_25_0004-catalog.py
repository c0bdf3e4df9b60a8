"""Catalog: stock records, search rows with full text (FTS5 / tsvector), collections

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 09:45:55.788651
"""

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("creator", sa.Text(), nullable=False),
        sa.Column("date_text", sa.String(length=200), nullable=False),
        sa.Column("year_start", sa.Integer(), nullable=True),
        sa.Column("year_end", sa.Integer(), nullable=True),
        sa.Column("medium", sa.Text(), nullable=False),
        sa.Column("dimensions", sa.Text(), nullable=False),
        sa.Column("institution", sa.String(length=200), nullable=False),
        sa.Column("page_url", sa.Text(), nullable=False),
        sa.Column("image_urls", sa.JSON(), nullable=False),
        sa.Column("rights_statement", sa.Text(), nullable=False),
        sa.Column("rights_uri", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ledger_seq", sa.BigInteger(), nullable=True),
        sa.Column(
            "mirror_status",
            sa.Enum(
                "pending", "mirrored", "failed", name="mirrorstatus", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("mirror_error", sa.Text(), nullable=False),
        sa.Column("mirror_attempts", sa.Integer(), nullable=False),
        sa.Column("image_key", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("phash", sa.BigInteger(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("derivatives_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_records")),
        sa.UniqueConstraint("source", "source_id", name=op.f("uq_stock_records_source_source_id")),
    )
    with op.batch_alter_table("stock_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stock_records_mirror_status"), ["mirror_status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_stock_records_sha256"), ["sha256"], unique=False)

    op.create_table(
        "collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("share_token", sa.String(length=64), nullable=True),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_collections_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_collections_owner_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collections")),
        sa.UniqueConstraint("share_token", name=op.f("uq_collections_share_token")),
    )
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collections_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_collections_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "collection_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "done",
                "failed",
                name="jobstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("capped", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_collection_jobs_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_jobs")),
    )
    with op.batch_alter_table("collection_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collection_jobs_collection_id"), ["collection_id"], unique=False
        )

    op.create_table(
        "catalog_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_id", sa.Integer(), nullable=True),
        sa.Column("stock_id", sa.Integer(), nullable=True),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("creator", sa.String(length=300), nullable=False),
        sa.Column("institution", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("medium", sa.String(length=300), nullable=False),
        sa.Column("year_start", sa.Integer(), nullable=True),
        sa.Column("year_end", sa.Integer(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column(
            "orientation",
            sa.Enum(
                "landscape",
                "portrait",
                "square",
                "unknown",
                name="orientation",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "license",
            sa.Enum(
                "public_domain",
                "cc0",
                "licensed",
                name="cataloglicense",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("has_image", sa.Boolean(), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["stock_id"], ["stock_records.id"], name=op.f("fk_catalog_items_stock_id_stock_records")
        ),
        sa.ForeignKeyConstraint(
            ["work_id"], ["works.id"], name=op.f("fk_catalog_items_work_id_works")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_items")),
        sa.UniqueConstraint("stock_id", name=op.f("uq_catalog_items_stock_id")),
        sa.UniqueConstraint("work_id", name=op.f("uq_catalog_items_work_id")),
    )
    with op.batch_alter_table("catalog_items", schema=None) as batch_op:
        batch_op.create_index("ix_catalog_items_available_id", ["available", "id"], unique=False)
        batch_op.create_index(
            "ix_catalog_items_available_license_id", ["available", "license", "id"], unique=False
        )
        batch_op.create_index(
            "ix_catalog_items_available_price", ["available", "price_minor", "id"], unique=False
        )
        batch_op.create_index(
            "ix_catalog_items_available_source", ["available", "source"], unique=False
        )
        batch_op.create_index(
            "ix_catalog_items_available_year", ["available", "year_start"], unique=False
        )
        batch_op.create_index(
            "ix_catalog_items_available_orientation",
            ["available", "orientation", "year_start"],
            unique=False,
        )
        batch_op.create_index(
            "ix_catalog_items_available_image", ["available", "has_image", "id"], unique=False
        )
        batch_op.create_index(
            "ix_catalog_items_available_width", ["available", "width"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_catalog_items_creator"), ["creator"], unique=False)
        batch_op.create_index(batch_op.f("ix_catalog_items_medium"), ["medium"], unique=False)

    op.create_table(
        "collection_items",
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("added_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_collection_items_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["catalog_items.id"],
            name=op.f("fk_collection_items_item_id_catalog_items"),
        ),
        sa.PrimaryKeyConstraint("collection_id", "item_id", name=op.f("pk_collection_items")),
    )
    with op.batch_alter_table("collection_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collection_items_item_id"), ["item_id"], unique=False)

    _create_full_text()


FTS_COLUMNS = "title, description, tags, creator, institution, medium"


def _create_full_text() -> None:
    """SQLite: an FTS5 index over catalog_items; updates and deletes are kept in sync by
    triggers, inserts by the write path (in bulk). PostgreSQL: a stored,
    generated tsvector (title A, creator B, tags/institution/medium C, description D) + GIN."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            f"CREATE VIRTUAL TABLE catalog_fts USING fts5({FTS_COLUMNS}, content='catalog_items', "
            "content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
        )
        new = ", ".join(f"new.{c.strip()}" for c in FTS_COLUMNS.split(","))
        old = ", ".join(f"old.{c.strip()}" for c in FTS_COLUMNS.split(","))
        # New rows are indexed by the write path in one INSERT ... SELECT per batch
        # (marketplace.catalog.search.index_new_items): a row trigger costs 5x more per row.
        op.execute(
            "CREATE TRIGGER catalog_items_fts_delete AFTER DELETE ON catalog_items BEGIN "
            f"INSERT INTO catalog_fts(catalog_fts, rowid, {FTS_COLUMNS}) "
            f"VALUES ('delete', old.id, {old}); END"
        )
        op.execute(
            f"CREATE TRIGGER catalog_items_fts_update AFTER UPDATE OF {FTS_COLUMNS} "
            "ON catalog_items BEGIN "
            f"INSERT INTO catalog_fts(catalog_fts, rowid, {FTS_COLUMNS}) "
            f"VALUES ('delete', old.id, {old}); "
            f"INSERT INTO catalog_fts(rowid, {FTS_COLUMNS}) VALUES (new.id, {new}); END"
        )
    elif dialect == "postgresql":
        # 'simple' words with accents folded (unaccent is a trusted extension since PG 13).
        op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        op.execute("CREATE TEXT SEARCH CONFIGURATION marketplace_text (COPY = simple)")
        op.execute(
            "ALTER TEXT SEARCH CONFIGURATION marketplace_text "
            "ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple"
        )
        vector = " || ".join(
            f"setweight(to_tsvector('marketplace_text', {columns}), '{weight}')"
            for columns, weight in (
                ("coalesce(title, '')", "A"),
                ("coalesce(creator, '')", "B"),
                (
                    "coalesce(tags, '') || ' ' || coalesce(institution, '') || ' ' || "
                    "coalesce(medium, '')",
                    "C",
                ),
                ("coalesce(description, '')", "D"),
            )
        )
        op.execute(
            "ALTER TABLE catalog_items ADD COLUMN search_vector tsvector "
            f"GENERATED ALWAYS AS ({vector}) STORED"
        )
        op.execute(
            "CREATE INDEX ix_catalog_items_search_vector ON catalog_items USING GIN (search_vector)"
        )
    else:
        raise NotImplementedError(f"no full-text index written for {dialect}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS catalog_fts")
    else:
        op.execute("ALTER TABLE catalog_items DROP COLUMN IF EXISTS search_vector")
        op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS marketplace_text")
    with op.batch_alter_table("collection_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_items_item_id"))

    op.drop_table("collection_items")
    with op.batch_alter_table("catalog_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_items_medium"))
        batch_op.drop_index(batch_op.f("ix_catalog_items_creator"))
        batch_op.drop_index("ix_catalog_items_available_year")
        batch_op.drop_index("ix_catalog_items_available_source")
        batch_op.drop_index("ix_catalog_items_available_price")
        batch_op.drop_index("ix_catalog_items_available_license_id")
        batch_op.drop_index("ix_catalog_items_available_id")

    op.drop_table("catalog_items")
    with op.batch_alter_table("collection_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_jobs_collection_id"))

    op.drop_table("collection_jobs")
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collections_owner_id"))
        batch_op.drop_index(batch_op.f("ix_collections_organization_id"))

    op.drop_table("collections")
    with op.batch_alter_table("stock_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_records_sha256"))
        batch_op.drop_index(batch_op.f("ix_stock_records_mirror_status"))

    op.drop_table("stock_records")
