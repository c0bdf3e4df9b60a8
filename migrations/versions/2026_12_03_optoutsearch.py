"""Opted-out catalog items: what rules match items by (addresses, hosts, image hashes) and
which active rules match which items

Revision ID: 0017_optoutsearch
Revises: 0016_ledger_nodes
Create Date: 2026-12-03 16:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_optoutsearch"
down_revision = "0016_ledger_nodes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_item_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=300), nullable=False),
        sa.Column("key_hash", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["catalog_items.id"],
            name=op.f("fk_catalog_item_addresses_item_id_catalog_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_item_addresses")),
    )
    with op.batch_alter_table("catalog_item_addresses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_item_addresses_host"), ["host"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_catalog_item_addresses_item_id"), ["item_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_catalog_item_addresses_key_hash"), ["key_hash"], unique=False
        )
    op.create_table(
        "catalog_item_hosts",
        sa.Column("host", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_catalog_item_hosts")),
    )
    op.create_table(
        "catalog_item_images",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("phash", sa.BigInteger(), nullable=True),
        sa.Column("phash_b0", sa.Integer(), nullable=True),
        sa.Column("phash_b1", sa.Integer(), nullable=True),
        sa.Column("phash_b2", sa.Integer(), nullable=True),
        sa.Column("phash_b3", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["catalog_items.id"],
            name=op.f("fk_catalog_item_images_item_id_catalog_items"),
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_catalog_item_images")),
    )
    with op.batch_alter_table("catalog_item_images", schema=None) as batch_op:
        for column in ("sha256", "phash_b0", "phash_b1", "phash_b2", "phash_b3"):
            batch_op.create_index(
                batch_op.f(f"ix_catalog_item_images_{column}"), [column], unique=False
            )
    op.create_table(
        "catalog_item_optouts",
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["catalog_items.id"],
            name=op.f("fk_catalog_item_optouts_item_id_catalog_items"),
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["optout_rules.id"],
            name=op.f("fk_catalog_item_optouts_rule_id_optout_rules"),
        ),
        sa.PrimaryKeyConstraint("rule_id", "item_id", name=op.f("pk_catalog_item_optouts")),
    )
    with op.batch_alter_table("catalog_item_optouts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_catalog_item_optouts_item_id"), ["item_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("catalog_item_optouts")
    op.drop_table("catalog_item_images")
    op.drop_table("catalog_item_hosts")
    op.drop_table("catalog_item_addresses")
