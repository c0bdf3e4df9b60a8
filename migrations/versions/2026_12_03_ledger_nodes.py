"""ledger: keep tree nodes of every 4th level only, keyed level-major; no index on entry kinds

`ledger_nodes` held the hash of every perfect subtree of level >= 1: one row per entry, written
on every append. It now holds levels 4, 8, 12, ... (one row per 15 entries); the levels between
are rebuilt from at most eight stored hashes below them when a proof or an append needs them.
The key changes from `index << 6 | level` to `level << 56 | index`, so the nodes of one level
are one key range and a proof reads a few ranges instead of scattered keys.

`ix_ledger_entries_kind` went too: every append paid for it and only `ledger verify` filters on
kinds, once, in a pass that reads the whole table anyway.

Upgrade deletes the rows of the other levels and re-keys the rest in place (the hashes are the
stored ones, unchanged; `ledger verify` recomputes them all). Downgrade rebuilds every level
from the stored leaf hashes. The append-only triggers on ledger_nodes are lifted for the
rewrite only, inside the migration's transaction, and put back as they were.

Revision ID: 0016_ledger_nodes
Revises: 0015_certificate_revision
Create Date: 2026-12-03 16:30:00
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op

revision = "0016_ledger_nodes"
down_revision = "0015_certificate_revision"
branch_labels = None
depends_on = None

OLD_LEVEL_BITS = 6
NEW_INDEX_BITS = 56
STRIDE = 4

# The triggers of 0002 and 0005_ledger on ledger_nodes, as they were created there.
SQLITE_TRIGGERS = {
    "ledger_nodes_no_update": """CREATE TRIGGER ledger_nodes_no_update
    BEFORE UPDATE ON ledger_nodes
    BEGIN SELECT RAISE(ABORT, 'ledger_nodes is append-only'); END""",
    "ledger_nodes_no_delete": """CREATE TRIGGER ledger_nodes_no_delete
    BEFORE DELETE ON ledger_nodes
    BEGIN SELECT RAISE(ABORT, 'ledger_nodes is append-only'); END""",
    "ledger_nodes_no_replace": """CREATE TRIGGER ledger_nodes_no_replace
    BEFORE INSERT ON ledger_nodes
    WHEN EXISTS (SELECT 1 FROM ledger_nodes WHERE key = NEW.key)
    BEGIN SELECT RAISE(ABORT, 'ledger_nodes is append-only: that key is already recorded'); END""",
}
POSTGRES_TRIGGERS = ("ledger_nodes_append_only", "ledger_nodes_no_truncate")


def _lift_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    else:
        for name in POSTGRES_TRIGGERS:
            op.execute(f"ALTER TABLE ledger_nodes DISABLE TRIGGER {name}")


def _restore_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_TRIGGERS.values():
            op.execute(statement)
    else:
        for name in POSTGRES_TRIGGERS:
            op.execute(f"ALTER TABLE ledger_nodes ENABLE TRIGGER {name}")


def upgrade() -> None:
    level_mask = (1 << OLD_LEVEL_BITS) - 1
    _lift_triggers()
    op.execute(f"DELETE FROM ledger_nodes WHERE (key & {level_mask}) % {STRIDE} <> 0")
    # New keys are >= 4 << 56 and old ones below 2**58 (an index under 2**52): no collision.
    op.execute(
        f"UPDATE ledger_nodes SET key = ((key & {level_mask}) << {NEW_INDEX_BITS}) "
        f"| (key >> {OLD_LEVEL_BITS})"
    )
    _restore_triggers()
    op.drop_index("ix_ledger_entries_kind", table_name="ledger_entries")


def _all_nodes(leaf_hashes: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """(old key, hash) of every perfect subtree of level >= 1, as appends used to store them."""
    stack: list[bytes] = []
    count = 0
    for leaf in leaf_hashes:
        node, count = leaf, count + 1
        remaining, level = count, 0
        while not remaining & 1:
            node = hashlib.sha256(b"\x01" + stack.pop() + node).digest()
            remaining >>= 1
            level += 1
            yield ((remaining - 1) << OLD_LEVEL_BITS) | level, node
        stack.append(node)


def downgrade() -> None:
    op.create_index("ix_ledger_entries_kind", "ledger_entries", ["kind"])
    connection = op.get_bind()
    _lift_triggers()
    op.execute("DELETE FROM ledger_nodes")
    nodes = sa.table("ledger_nodes", sa.column("key", sa.BigInteger), sa.column("hash"))
    leaves = (
        bytes(row[0])
        for row in connection.execute(
            sa.text("SELECT leaf_hash FROM ledger_entries ORDER BY seq")
        ).fetchall()
    )
    batch: list[dict[str, object]] = []
    for key, digest in _all_nodes(leaves):
        batch.append({"key": key, "hash": digest})
        if len(batch) == 10_000:
            connection.execute(nodes.insert(), batch)
            batch = []
    if batch:
        connection.execute(nodes.insert(), batch)
    _restore_triggers()
