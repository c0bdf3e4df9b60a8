"""ledger: partial indexes on the subject columns of ledger_entries

Most entries (catalog stock, money postings' headers aside) concern no work, order or
organization, yet every append wrote a NULL into each of the four subject indexes. Partial
indexes (`WHERE col IS NOT NULL`) skip those rows, which halves the cost of an append on SQLite;
lookups by `col = ?` and `col IS NOT NULL` use them as before. Index names are unchanged.

Revision ID: 0011_ledger_speed
Revises: 0010_optout_speed
Create Date: 2026-12-03 13:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_ledger_speed"
down_revision = "0010_optout_speed"
branch_labels = None
depends_on = None

COLUMNS = ("work_id", "artist_id", "order_id", "organization_id")


def upgrade() -> None:
    for column in COLUMNS:
        name = f"ix_ledger_entries_{column}"
        where = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, table_name="ledger_entries")
        op.create_index(
            name, "ledger_entries", [column], sqlite_where=where, postgresql_where=where
        )


def downgrade() -> None:
    for column in COLUMNS:
        name = f"ix_ledger_entries_{column}"
        op.drop_index(name, table_name="ledger_entries")
        op.create_index(name, "ledger_entries", [column])
