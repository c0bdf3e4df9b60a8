"""Ledger tables. Only `marketplace.ledger` writes them; triggers refuse UPDATE and DELETE.

Provenance: `ledger_entries` (the leaves, seq = leaf index), `ledger_nodes` (the hash of every
perfect subtree whose level is a multiple of 4, so appends and proofs never recompute more than
a few nodes of the tree) and
`ledger_checkpoints` (every signed tree head published).

Money: `ledger_accounts`, `ledger_transactions` and `ledger_postings`. Postings are written
first and the transaction header last; a trigger refuses a header whose postings do not balance
and a posting whose header already exists, and a deferred foreign key refuses postings left
without a header at commit.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base, UTCDateTime, value_enum

# SQLite makes an INTEGER PRIMARY KEY the rowid: appends and lookups by seq use one B-tree.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

LEDGER_TABLES = (
    "ledger_entries",
    "ledger_nodes",
    "ledger_checkpoints",
    "ledger_accounts",
    "ledger_transactions",
    "ledger_postings",
)


def _subject_index(column: str) -> Index:
    """Most entries concern no work, order or organization: partial indexes skip their NULLs,
    which halves the cost of an append; `column = ?` and `IS NOT NULL` queries still use them."""
    where = text(f"{column} IS NOT NULL")
    return Index(f"ix_ledger_entries_{column}", column, sqlite_where=where, postgresql_where=where)


SUBJECT_COLUMNS = ("work_id", "artist_id", "order_id", "organization_id")


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = tuple(_subject_index(column) for column in SUBJECT_COLUMNS)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(48))  # no index: only `ledger verify` filters on it
    work_id: Mapped[int | None] = mapped_column(BigInteger)
    artist_id: Mapped[int | None] = mapped_column(BigInteger)
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    organization_id: Mapped[int | None] = mapped_column(BigInteger)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


NODE_LEVEL_STRIDE = 4  # ledger_nodes keeps levels 4, 8, 12, ...: one row per 15 leaves
NODE_INDEX_BITS = 56  # key = level << 56 | index: each level's nodes form one key range


def node_key(level: int, index: int) -> int:
    """One integer per perfect subtree, consecutive along a level, so the nodes a proof needs
    are read as a few primary-key ranges."""
    return (level << NODE_INDEX_BITS) | index


def node_from_key(key: int) -> tuple[int, int]:
    return key >> NODE_INDEX_BITS, key & ((1 << NODE_INDEX_BITS) - 1)


class LedgerNode(Base):
    """Hash of the perfect subtree covering leaves [idx * 2**level, (idx + 1) * 2**level),
    keyed by node_key(level, idx), for levels that are multiples of NODE_LEVEL_STRIDE only.

    The levels between are rebuilt from at most 2**(NODE_LEVEL_STRIDE - 1) stored hashes
    below them (`merkle.SubtreeHashes`): a proof reads a few short key ranges and hashes a few
    dozen nodes, and an append writes one node row per 15 entries instead of one per entry.
    """

    __tablename__ = "ledger_nodes"

    key: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerCheckpoint(Base):
    """A published signed tree head: the C2SP signed note exactly as served."""

    __tablename__ = "ledger_checkpoints"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AccountKind(enum.StrEnum):
    """Whether a debit raises (assets, expenses) or lowers (the rest) the account's balance."""

    ASSET = "asset"
    LIABILITY = "liability"
    REVENUE = "revenue"
    EXPENSE = "expense"


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[AccountKind] = mapped_column(value_enum(AccountKind, length=16))
    currency: Mapped[str] = mapped_column(String(3))
    artist_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(48))
    currency: Mapped[str] = mapped_column(String(3))
    memo: Mapped[str] = mapped_column(Text, default="")
    entry_seq: Mapped[int] = mapped_column(ForeignKey("ledger_entries.seq"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerPosting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("direction IN ('debit', 'credit')", name="direction_valid"),
        Index("ix_ledger_postings_account_id_direction", "account_id", "direction"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_key: Mapped[str] = mapped_column(
        ForeignKey("ledger_transactions.idempotency_key", deferrable=True, initially="DEFERRED"),
        index=True,
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    direction: Mapped[str] = mapped_column(String(6))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
