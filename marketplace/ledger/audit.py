"""`ledger verify`: recompute everything the ledger claims, from the stored bytes up.

One pass over the entries rebuilds the tree; every leaf hash, every stored node, every
checkpoint's root and signature is compared on the way. Then each checkpoint is proved
consistent with the next, and every money transaction is checked to balance and to match the
postings its log entry names.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal_column, select
from sqlalchemy.orm import Session

from marketplace.ledger import merkle, services
from marketplace.ledger.models import (
    NODE_LEVEL_BITS,
    LedgerAccount,
    LedgerCheckpoint,
    LedgerEntry,
    LedgerNode,
    LedgerPosting,
    LedgerTransaction,
    node_from_key,
    node_key,
)
from marketplace.ledger.note import NoteError, open_note, parse_checkpoint

STREAM = 10_000


@dataclass
class VerifyReport:
    entries: int = 0
    nodes: int = 0
    checkpoints: int = 0
    transactions: int = 0
    root: bytes = merkle.EMPTY_ROOT
    bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def fail(self, problem: str, seq: int | None = None) -> VerifyReport:
        self.problem, self.bad_seq = problem, seq
        return self

    def summary(self) -> str:
        if self.ok:
            return (
                f"ledger OK: {self.entries} entries, {self.nodes} nodes, "
                f"{self.checkpoints} checkpoints, {self.transactions} money transactions; "
                f"root {self.root.hex()}"
            )
        where = f" at seq {self.bad_seq}" if self.bad_seq is not None else ""
        return f"ledger FAILED{where}: {self.problem}"


def _stream(session: Session, query: Any) -> Iterator[Any]:
    yield from session.execute(query.execution_options(yield_per=STREAM))


def verify_all(session: Session, who: services.LedgerIdentity | None = None) -> VerifyReport:
    """Check the whole ledger; the report names the first bad sequence number."""
    who = who or services.identity()
    report = VerifyReport()
    if not _verify_tree(session, who, report):
        return report
    if not _verify_consistency(session, report):
        return report
    _verify_money(session, report)
    return report


def _verify_tree(session: Session, who: services.LedgerIdentity, report: VerifyReport) -> bool:
    verifier = who.signer.verifier()
    entries = _stream(
        session,
        select(LedgerEntry.seq, LedgerEntry.entry, LedgerEntry.leaf_hash).order_by(LedgerEntry.seq),
    )
    # Stored nodes in the order a rebuild completes them: by (idx + 1) << level, then level.
    level = f"CAST((key & {(1 << NODE_LEVEL_BITS) - 1}) AS INTEGER)"
    completes_at: ColumnElement[int] = literal_column(
        f"((key >> {NODE_LEVEL_BITS}) + 1) << {level}"
    )
    nodes = _stream(
        session,
        select(LedgerNode.key, LedgerNode.hash).order_by(completes_at, literal_column(level)),
    )
    checkpoints = _stream(
        session,
        select(
            LedgerCheckpoint.tree_size, LedgerCheckpoint.root_hash, LedgerCheckpoint.note
        ).order_by(LedgerCheckpoint.tree_size),
    )
    size, frontier = 0, list[bytes]()
    next_cp = next(checkpoints, None)
    leaves: list[bytes] = []

    def flush() -> bool:
        nonlocal size, frontier
        if not leaves:
            return True
        result = merkle.append_leaf_hashes(size, frontier, leaves)
        for level, index, digest in result.new_nodes:
            stored = next(nodes, None)
            if stored is None or stored[0] != node_key(level, index):
                report.fail(f"stored tree node ({level}, {index}) is missing", index << level)
                return False
            if bytes(stored[1]) != digest:
                report.fail(
                    f"stored tree node ({level}, {index}) does not match the entries under it",
                    index << level,
                )
                return False
            report.nodes += 1
        size, frontier = result.size, result.frontier
        leaves.clear()
        return True

    for seq, data, stored_leaf in entries:
        data = bytes(data)
        if seq != report.entries:
            return report.fail(f"sequence gap: expected {report.entries}", seq).ok
        leaf = merkle.leaf_hash(data)
        if leaf != bytes(stored_leaf):
            return report.fail("entry bytes do not match the stored leaf hash", seq).ok
        problem = _check_entry_json(data, seq, who.origin)
        if problem:
            return report.fail(problem, seq).ok
        leaves.append(leaf)
        report.entries += 1
        while next_cp is not None and next_cp[0] == report.entries:
            if not flush():
                return False
            if not _check_checkpoint(next_cp, size, frontier, verifier, who.origin, report):
                return False
            next_cp = next(checkpoints, None)
        if len(leaves) >= STREAM and not flush():
            return False
    if not flush():
        return False
    if next_cp is not None:
        return report.fail(f"checkpoint at size {next_cp[0]} is beyond the {size} entries").ok
    extra = next(nodes, None)
    if extra is not None:
        return report.fail(f"stored tree node {node_from_key(extra[0])} covers no entries").ok
    report.root = merkle.root_from_frontier(frontier)
    return True


def _check_entry_json(data: bytes, seq: int, origin: str) -> str | None:
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return "entry bytes are not JSON"
    if not isinstance(parsed, dict) or parsed.get("seq") != seq or parsed.get("log") != origin:
        return "entry names another position or another log"
    return None


def _check_checkpoint(
    row: Any,
    size: int,
    frontier: list[bytes],
    verifier: Any,
    origin: str,
    report: VerifyReport,
) -> bool:
    tree_size, stored_root, note = row
    root = merkle.root_from_frontier(frontier)
    last = size - 1
    if bytes(stored_root) != root:
        return report.fail(f"checkpoint at size {tree_size} has a wrong root", last).ok
    try:
        opened = open_note(note, [verifier])
        checkpoint = parse_checkpoint(opened.text)
    except NoteError as exc:
        return report.fail(f"checkpoint at size {tree_size}: {exc}", last).ok
    if (checkpoint.origin, checkpoint.size, checkpoint.root_hash) != (origin, size, root):
        return report.fail(f"checkpoint note at size {tree_size} says something else", last).ok
    report.checkpoints += 1
    return True


def _verify_consistency(session: Session, report: VerifyReport) -> bool:
    rows = _stream(
        session,
        select(LedgerCheckpoint.tree_size, LedgerCheckpoint.root_hash).order_by(
            LedgerCheckpoint.tree_size
        ),
    )
    previous = None
    for size, root in list(rows):
        if previous is not None:
            old_size, old_root = previous
            proof = services.consistency_proof(session, old_size, size)
            if not merkle.verify_consistency(old_size, size, proof, bytes(old_root), bytes(root)):
                return report.fail(
                    f"checkpoints at sizes {old_size} and {size} are not consistent", old_size
                ).ok
        previous = (size, root)
    return True


def _verify_money(session: Session, report: VerifyReport) -> bool:
    signed = case(
        (LedgerPosting.direction == "debit", LedgerPosting.amount_minor),
        else_=-LedgerPosting.amount_minor,
    )
    sums = (
        select(
            LedgerPosting.transaction_key.label("key"),
            func.sum(signed).label("net"),
            func.count().label("n"),
        )
        .group_by(LedgerPosting.transaction_key)
        .subquery()
    )
    rows = _stream(
        session,
        select(LedgerTransaction.idempotency_key, LedgerTransaction.entry_seq, sums.c.net, sums.c.n)
        .outerjoin(sums, sums.c.key == LedgerTransaction.idempotency_key)
        .order_by(LedgerTransaction.entry_seq),
    )
    for key, entry_seq, net, count in list(rows):
        if not count or count < 2 or net != 0:
            return report.fail(f"money transaction {key!r} does not balance", entry_seq).ok
        if not _postings_match_entry(session, key, entry_seq):
            return report.fail(
                f"money transaction {key!r} differs from its ledger entry", entry_seq
            ).ok
        report.transactions += 1
    return True


def _postings_match_entry(session: Session, key: str, entry_seq: int) -> bool:
    entry = session.get(LedgerEntry, entry_seq)
    if entry is None:
        return False
    payload = json.loads(bytes(entry.entry)).get("payload", {})
    claimed = Counter(
        (p["account"], p["direction"], p["amount_minor"]) for p in payload.get("postings", [])
    )
    stored = Counter(
        (code, direction, int(amount))
        for code, direction, amount in session.execute(
            select(LedgerAccount.code, LedgerPosting.direction, LedgerPosting.amount_minor)
            .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
            .where(LedgerPosting.transaction_key == key)
        )
    )
    return payload.get("key") == key and claimed == stored
