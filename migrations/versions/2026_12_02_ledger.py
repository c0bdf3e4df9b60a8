"""ledger: refuse an insert that would replace an existing ledger row (SQLite REPLACE)

SQLite's `INSERT OR REPLACE` / `REPLACE INTO` resolves a key conflict by deleting the old row
without firing delete triggers, so the no-update/no-delete triggers of 0002 let it overwrite
any ledger row. A BEFORE INSERT trigger runs before conflict resolution: it refuses an insert
whose primary key or unique key is already taken, which turns REPLACE, UPSERT and a duplicate
INSERT alike into an error. PostgreSQL has no REPLACE; its upsert runs the BEFORE UPDATE
trigger of 0002, which already refuses it (the tests hold both backends to this).

Revision ID: 0005_ledger
Revises: 0004
Create Date: 2026-12-02 17:30:00
"""

from alembic import op

revision = "0005_ledger"
down_revision = "0004"
branch_labels = None
depends_on = None

# Every key that identifies a ledger row: a REPLACE on any of them would delete that row.
KEYS = {
    "ledger_entries": ("seq",),
    "ledger_nodes": ("key",),
    "ledger_checkpoints": ("tree_size",),
    "ledger_accounts": ("id", "code"),
    "ledger_transactions": ("id", "idempotency_key", "entry_seq"),
    "ledger_postings": ("id",),
}


def _sqlite_trigger(table: str, columns: tuple[str, ...]) -> str:
    taken = " OR ".join(
        f"EXISTS (SELECT 1 FROM {table} WHERE {column} = NEW.{column})" for column in columns
    )
    return f"""CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table}
    WHEN {taken}
    BEGIN SELECT RAISE(ABORT, '{table} is append-only: that key is already recorded'); END"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in KEYS.items():
        op.execute(_sqlite_trigger(table, columns))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in KEYS:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_replace")
