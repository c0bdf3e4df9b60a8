"""The ledger's write and read paths: the only code that touches ledger_* tables.

Appending takes the ledger lock (a PostgreSQL advisory lock; on SQLite the IMMEDIATE transaction
that `transaction()` begins), so concurrent appenders form one gap-free sequence. Every
transaction that appended publishes exactly one signed checkpoint, just before it commits.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Column, Connection, Table, event, func, select, text
from sqlalchemy.orm import Session

from marketplace.db import insert_driver_rows, utcnow
from marketplace.ledger import merkle
from marketplace.ledger.canonical import entry_encoder, format_timestamp
from marketplace.ledger.keys import load_signer, public_key_pem
from marketplace.ledger.kinds import SUBJECT_KEYS, EntryKind
from marketplace.ledger.models import (
    NODE_INDEX_BITS,
    NODE_LEVEL_STRIDE,
    LedgerCheckpoint,
    LedgerEntry,
    LedgerNode,
    node_key,
)
from marketplace.ledger.note import Checkpoint, Signer, format_checkpoint
from marketplace.ledger.verify import BUNDLE_FORMAT

log = logging.getLogger(__name__)

ENTRIES = Table("ledger_entries", LedgerEntry.metadata)  # Core handles for the hot loop
NODES = Table("ledger_nodes", LedgerNode.metadata)
ADVISORY_LOCK_ID = 0x4C454447  # "LEDG": one lock for every ledger writer
CHUNK = 5000
_PENDING = "ledger.pending_checkpoint"


class LedgerError(Exception):
    """A ledger request that cannot be met; the message is safe to show."""


class EntryNotFound(LedgerError):
    pass


class CheckpointNotFound(LedgerError):
    pass


class InvalidEntry(LedgerError):
    pass


@dataclass(frozen=True)
class LedgerIdentity:
    """Who signs the log: the checkpoint origin and its key."""

    origin: str
    signer: Signer

    @property
    def verifier_key(self) -> str:
        return self.signer.verifier().to_string()

    @property
    def public_key_pem(self) -> str:
        return public_key_pem(self.signer)


def init_app(app: Flask) -> None:
    origin = str(app.config["LEDGER_ORIGIN"])
    configured = app.config.get("LEDGER_KEY_PATH")
    path = Path(str(configured or app.config["LEDGER_DEFAULT_KEY_PATH"]))
    signer = load_signer(origin, path, create=not configured)
    app.extensions["marketplace.ledger"] = LedgerIdentity(origin=origin, signer=signer)


def identity(app: Flask | None = None) -> LedgerIdentity:
    found: LedgerIdentity = (app or current_app).extensions["marketplace.ledger"]
    return found


# --- Appending -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewEntry:
    kind: EntryKind
    subject: Mapping[str, int] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Appended:
    """Where a batch landed: seqs first_seq .. first_seq + count - 1."""

    first_seq: int
    count: int

    @property
    def seqs(self) -> range:
        return range(self.first_seq, self.first_seq + self.count)


def lock(session: Session) -> None:
    """Serialize ledger writers until the transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID})


def tree_size(session: Session) -> int:
    last = session.scalar(select(func.max(LedgerEntry.seq)))
    return 0 if last is None else int(last) + 1


def _check_entry(entry: NewEntry) -> None:
    if not isinstance(entry.kind, EntryKind):
        raise InvalidEntry(f"unknown ledger entry kind {entry.kind!r}")
    for key, value in entry.subject.items():
        if key not in SUBJECT_KEYS:
            raise InvalidEntry(f"unknown subject key {key!r}")
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidEntry(f"subject {key!r} must be an integer id")


def append(
    session: Session,
    kind: EntryKind,
    *,
    subject: Mapping[str, int] | None = None,
    payload: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> int:
    """Record one fact; returns its seq. The caller owns the transaction."""
    entry = NewEntry(kind, subject or {}, payload or {})
    return append_many(session, [entry], now=now).first_seq


def append_many(
    session: Session, entries: Iterable[NewEntry], *, now: datetime | None = None
) -> Appended:
    """Record many facts in order, in chunks; O(batch + log n) hashing, no tree recomputation.

    `now` (default: the clock, read under the lock) is the time every entry of the batch
    records; a caller that stamps its own rows with the same moment passes it, taken after
    `lock()`, so the log's timestamps never go backwards.
    Raises InvalidEntry (or NotCanonical) before writing the chunk that holds a bad entry; the
    caller's transaction then rolls the whole batch back.
    """
    who = identity()
    lock(session)
    size = tree_size(session)
    first = size
    frontier = _frontier(session, size)
    now = now or utcnow()
    encode = entry_encoder(log=who.origin, timestamp=now)
    connection = session.connection()
    created_at = _driver_value(connection, ENTRIES.c.created_at, now)  # converted once
    sha256 = hashlib.sha256
    layouts, subject_keys = _SUBJECT_LAYOUTS, frozenset(SUBJECT_KEYS)
    for chunk in _chunks(entries, CHUNK):
        # Rows by the subject columns they fill: binding only those (not four NULLs per row)
        # is a fifth of the cost of an insert on SQLite.
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        leaves = []
        seq = size
        for entry in chunk:
            entry_kind, subject = entry.kind, entry.subject
            if type(entry_kind) is not EntryKind:
                _check_entry(entry)  # raises
            for key, value in subject.items():  # _check_entry's rules, inlined for the usual case
                if type(value) is not int or key not in subject_keys:
                    _check_entry(entry)  # raises, or accepts an int subclass
            kind: str = entry_kind._value_  # EntryKind.value, without the descriptor
            data = encode(seq, kind, subject, entry.payload)
            leaf = sha256(b"\x00" + data).digest()  # merkle.leaf_hash, inlined for the hot loop
            leaves.append(leaf)
            names = tuple(subject)
            layout = layouts.get(names)
            if layout is None:
                layout = layouts[names] = _subject_layout(names)
            row = (seq, created_at, kind, data, leaf, *[subject[key] for key in layout])
            rows = groups.get(layout)
            if rows is None:
                rows = groups[layout] = []
            rows.append(row)
            seq += 1
        result = merkle.append_leaf_hashes(size, frontier, leaves, every=NODE_LEVEL_STRIDE)
        for layout, rows in groups.items():
            columns = _ENTRY_COLUMNS + tuple(SUBJECT_COLUMN_OF[key] for key in layout)
            insert_driver_rows(connection, ENTRIES, columns, rows)
        insert_driver_rows(
            connection,
            NODES,
            ("key", "hash"),
            [((lv << NODE_INDEX_BITS) | ix, h) for lv, ix, h in result.new_nodes],
        )
        size, frontier = result.size, result.frontier
    if size > first:
        session.info[_PENDING] = who
    return Appended(first_seq=first, count=size - first)


_ENTRY_COLUMNS = ("seq", "created_at", "kind", "entry", "leaf_hash")
# Subject keys that ledger_entries repeats in a column of their own, for lookups.
SUBJECT_COLUMN_OF = {
    "work": "work_id",
    "artist": "artist_id",
    "order": "order_id",
    "organization": "organization_id",
}
_SUBJECT_LAYOUTS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _subject_layout(names: tuple[str, ...]) -> tuple[str, ...]:
    """The subject keys of `names` that have a column, in one order per set of keys."""
    return tuple(key for key in SUBJECT_COLUMN_OF if key in names)


def _driver_value(connection: Connection, column: Column[Any], value: Any) -> Any:
    """`value` as the driver takes it for `column` (what SQLAlchemy would bind)."""
    dialect = connection.dialect
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return value if process is None else process(value)


def _chunks(items: Iterable[NewEntry], n: int) -> Iterator[list[NewEntry]]:
    chunk: list[NewEntry] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


RANGES_PER_QUERY = 400
_RANGE_SLACK = 1 << NODE_LEVEL_STRIDE  # read a few rows more rather than one range more

# PostgreSQL: one statement text for every read, so psycopg prepares it once.
_PG_READ_RANGES = (
    "SELECT 0, e.seq, e.leaf_hash FROM unnest(%s::bigint[], %s::bigint[]) AS r(lo, hi) "
    "JOIN ledger_entries e ON e.seq >= r.lo AND e.seq < r.hi "
    "UNION ALL SELECT 1, n.key, n.hash FROM unnest(%s::bigint[], %s::bigint[]) AS r(lo, hi) "
    "JOIN ledger_nodes n ON n.key >= r.lo AND n.key < r.hi"
)


def lookup_hashes(session: Session, ids: Iterable[tuple[int, int]]) -> merkle.SubtreeHashes:
    """The hashes of the perfect subtrees `ids` (level, index), from what is stored.

    Reads the leaf hashes and stored nodes below them as primary-key ranges (ledger_entries for
    level 0, ledger_nodes for levels that are multiples of NODE_LEVEL_STRIDE), one query for a
    proof's few ranges, whatever the tree size; a bundle's thousands go 400 ranges at a time.
    The levels between are hashed on demand by the returned mapping.
    """
    wanted = merkle.stored_ranges(ids, NODE_LEVEL_STRIDE, slack=_RANGE_SLACK)
    ranges = [
        (0, span.start, span.stop)
        if level == 0
        else (1, node_key(level, span.start), node_key(level, span.stop))
        for level, spans in wanted.items()
        for span in spans
    ]
    stored: dict[tuple[int, int], bytes] = {}
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    index_mask = (1 << NODE_INDEX_BITS) - 1
    for start in range(0, len(ranges), RANGES_PER_QUERY):
        part = ranges[start : start + RANGES_PER_QUERY]
        leaves = [(lo, hi) for table, lo, hi in part if table == 0]
        nodes = [(lo, hi) for table, lo, hi in part if table == 1]
        # Driver SQL: SQLAlchemy's coercion of parameters cost more than the query.
        if postgres:
            sql = _PG_READ_RANGES
            params: tuple[Any, ...] = (
                [lo for lo, _ in leaves],
                [hi for _, hi in leaves],
                [lo for lo, _ in nodes],
                [hi for _, hi in nodes],
            )
        else:
            selects = [
                "SELECT 0, seq, leaf_hash FROM ledger_entries WHERE seq >= ? AND seq < ?"
            ] * len(leaves) + [
                "SELECT 1, key, hash FROM ledger_nodes WHERE key >= ? AND key < ?"
            ] * len(nodes)
            sql = " UNION ALL ".join(selects)
            params = tuple(bound for pair in (*leaves, *nodes) for bound in pair)
        for is_node, key, digest in connection.exec_driver_sql(sql, params).fetchall():
            if is_node:
                stored[key >> NODE_INDEX_BITS, key & index_mask] = bytes(digest)
            else:
                stored[0, key] = bytes(digest)
    return merkle.SubtreeHashes(stored, NODE_LEVEL_STRIDE)


def _frontier(session: Session, size: int) -> list[bytes]:
    ids = merkle.frontier_ids(size)
    lookup = lookup_hashes(session, ids)
    return [lookup[node_id] for node_id in ids]


def root_hash(session: Session, size: int) -> bytes:
    return merkle.root_from_frontier(_frontier(session, size))


# --- Checkpoints ---------------------------------------------------------------------------


def publish_checkpoint(session: Session, who: LedgerIdentity | None = None) -> LedgerCheckpoint:
    """Sign and store a checkpoint of the current tree; returns the existing one if unchanged.

    Its `created_at` is the time of the last entry it covers (the moment of the tree it signs),
    so `ledger verify` can check that column against the signed entry bytes.
    """
    who = who or identity()
    size = tree_size(session)
    existing = session.get(LedgerCheckpoint, size)
    if existing is not None:
        return existing
    root = root_hash(session, size)
    note = who.signer.sign(format_checkpoint(Checkpoint(who.origin, size, root)))
    last_entry_at = session.scalar(
        select(LedgerEntry.created_at).where(LedgerEntry.seq == size - 1)
    )
    checkpoint = LedgerCheckpoint(
        tree_size=size, root_hash=root, note=note, created_at=last_entry_at or utcnow()
    )
    session.add(checkpoint)
    session.flush()
    log.info("ledger checkpoint published at size %s", size)
    return checkpoint


# Why a listener and not a call at each append: a checkpoint must be the transaction's last
# ledger write, and one transaction often appends several times from several services
# (register_work logs the work and then its terms; a batch logs each file). Only the code that
# commits knows the transaction is complete, and that is `db.transaction()`, a core below the
# ledger that must not import it. So `append_many` marks the session and this hook publishes
# once, just before the commit, inside the same database transaction (a failed signature or
# insert rolls back the entries too). A transaction that appended nothing carries no mark and
# runs no ledger SQL here; tests/ledger/test_log.py holds both halves of that.
@event.listens_for(Session, "before_commit")
def _publish_pending_checkpoint(session: Session) -> None:
    who = session.info.pop(_PENDING, None)
    if who is not None:
        publish_checkpoint(session, who)


@event.listens_for(Session, "after_rollback")
def _forget_pending_checkpoint(session: Session) -> None:
    session.info.pop(_PENDING, None)


def latest_checkpoint(session: Session) -> LedgerCheckpoint | None:
    return session.scalar(
        select(LedgerCheckpoint).order_by(LedgerCheckpoint.tree_size.desc()).limit(1)
    )


def get_checkpoint(session: Session, size: int) -> LedgerCheckpoint:
    checkpoint = session.get(LedgerCheckpoint, size)
    if checkpoint is None:
        raise CheckpointNotFound(f"No checkpoint was published at tree size {size}.")
    return checkpoint


# --- Proofs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryProof:
    """An entry, its exact bytes and its inclusion proof against a published checkpoint."""

    seq: int
    kind: str
    timestamp: datetime
    entry: bytes
    leaf_hash: bytes
    tree_size: int
    inclusion_proof: list[bytes]
    checkpoint: str

    def to_json(self) -> dict[str, Any]:
        """The shape of GET /api/v1/ledger/entries/<seq> (keep stable)."""
        return {
            "seq": self.seq,
            "kind": self.kind,
            "timestamp": format_timestamp(self.timestamp),
            "entry": base64.b64encode(self.entry).decode(),
            "leaf_hash": self.leaf_hash.hex(),
            "tree_size": self.tree_size,
            "inclusion_proof": [h.hex() for h in self.inclusion_proof],
        }


def inclusion_proof(session: Session, seq: int, size: int) -> list[bytes]:
    ranges = merkle.inclusion_proof_ranges(seq, size)
    lookup = lookup_hashes(session, merkle.proof_node_ids(ranges))
    return [merkle.range_hash(start, end, lookup) for start, end in ranges]


def consistency_proof(session: Session, old_size: int, new_size: int) -> list[bytes]:
    """Proof that the checkpoint at `old_size` is a prefix of the one at `new_size`.

    Both must be published sizes (CheckpointNotFound otherwise), 1 <= old <= new.
    """
    if old_size < 1 or old_size > new_size:
        raise LedgerError("Ask for 1 <= from <= to.")
    get_checkpoint(session, old_size)
    get_checkpoint(session, new_size)
    ranges = merkle.consistency_proof_ranges(old_size, new_size)
    lookup = lookup_hashes(session, merkle.proof_node_ids(ranges))
    return [merkle.range_hash(start, end, lookup) for start, end in ranges]


def entry_proof(
    session: Session, seq: int, checkpoint: LedgerCheckpoint | None = None
) -> EntryProof:
    """The entry with an inclusion proof against `checkpoint` (default: the latest one)."""
    entry = session.get(LedgerEntry, seq)
    checkpoint = checkpoint or latest_checkpoint(session)
    if entry is None or checkpoint is None or seq >= checkpoint.tree_size:
        raise EntryNotFound(f"No ledger entry {seq} in a published checkpoint.")
    return EntryProof(
        seq=entry.seq,
        kind=entry.kind,
        timestamp=entry.created_at,
        entry=bytes(entry.entry),
        leaf_hash=bytes(entry.leaf_hash),
        tree_size=checkpoint.tree_size,
        inclusion_proof=inclusion_proof(session, seq, checkpoint.tree_size),
        checkpoint=checkpoint.note,
    )


def find_entry(session: Session, seq: int) -> LedgerEntry | None:
    return session.get(LedgerEntry, seq)


def entries_for(
    session: Session, *, work: int | None = None, order: int | None = None, limit: int = 100
) -> Sequence[LedgerEntry]:
    """Entries that concern a work or an order, oldest first (for provenance pages)."""
    query = select(LedgerEntry).order_by(LedgerEntry.seq).limit(limit)
    if work is not None:
        query = query.where(LedgerEntry.work_id == work)
    if order is not None:
        query = query.where(LedgerEntry.order_id == order)
    return session.scalars(query).all()


def proof_bundle(session: Session, seqs: Sequence[int]) -> dict[str, Any]:
    """Entries with inclusion proofs against one checkpoint, plus the key: all a verifier needs.

    `python -m marketplace.ledger.verify` checks it offline; certificates embed it. Built in
    batches (entries and every proof's stored hashes a few hundred per query), so ten thousand
    proofs cost a few hundred queries, not three per entry.
    """
    who = identity()
    checkpoint = latest_checkpoint(session)
    if checkpoint is None:
        raise EntryNotFound("The ledger is empty.")
    size = checkpoint.tree_size
    wanted = sorted(set(seqs))
    if wanted and (wanted[0] < 0 or wanted[-1] >= size):
        raise EntryNotFound("An entry asked for is not in the latest checkpoint.")
    entries: list[dict[str, Any]] = []
    for start in range(0, len(wanted), 2000):
        chunk = wanted[start : start + 2000]
        rows = {
            int(row.seq): row
            for part in range(0, len(chunk), 500)
            for row in session.execute(
                select(
                    LedgerEntry.seq,
                    LedgerEntry.kind,
                    LedgerEntry.created_at,
                    LedgerEntry.entry,
                    LedgerEntry.leaf_hash,
                ).where(LedgerEntry.seq.in_(chunk[part : part + 500]))
            )
        }
        ranges = {seq: merkle.inclusion_proof_ranges(seq, size) for seq in chunk}
        distinct = {r for rs in ranges.values() for r in rs}  # neighbours share most of theirs
        lookup = lookup_hashes(session, merkle.proof_node_ids(distinct))
        hashes = {(s, e): merkle.range_hash(s, e, lookup) for s, e in distinct}
        for seq in chunk:
            row = rows[seq]
            proof = EntryProof(
                seq=seq,
                kind=row.kind,
                timestamp=row.created_at,
                entry=bytes(row.entry),
                leaf_hash=bytes(row.leaf_hash),
                tree_size=size,
                inclusion_proof=[hashes[r] for r in ranges[seq]],
                checkpoint=checkpoint.note,
            )
            entries.append(proof.to_json())
    return {
        "format": BUNDLE_FORMAT,
        "origin": who.origin,
        "verifier_key": who.verifier_key,
        "checkpoint": checkpoint.note,
        "entries": entries,
    }
