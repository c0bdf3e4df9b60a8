"""`ledger verify`: recompute everything the ledger claims, from the stored bytes up.

One pass over the entries rebuilds the tree; every leaf hash, every stored node, every
checkpoint's root and signature is compared on the way, and every column that repeats the signed
bytes for lookups (an entry's kind, time and subject ids; a checkpoint's root and time) is held
to them. Then each checkpoint is proved consistent with the next, and every money transaction
is checked to balance and to match, header and postings, the log entry that names it; every
account to match its code and the first entry that names it.

A failure names the entry it proves changed. Only a signed checkpoint can prove which of the
entries under a stored tree node (16 of them) changed, so where none lies between them the
report names them all.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal_column, select
from sqlalchemy.orm import Session

from marketplace.ledger import merkle, money, services
from marketplace.ledger.canonical import format_timestamp
from marketplace.ledger.kinds import MONEY_KINDS
from marketplace.ledger.models import (
    NODE_INDEX_BITS,
    NODE_LEVEL_STRIDE,
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
    bad_seqs: tuple[int, ...] = ()
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def bad_seq(self) -> int | None:
        """The first entry the problem may lie in (the only one, when the proof is exact)."""
        return self.bad_seqs[0] if self.bad_seqs else None

    def fail(self, problem: str, *seqs: int) -> VerifyReport:
        self.problem, self.bad_seqs = problem, seqs
        return self

    def summary(self) -> str:
        if self.ok:
            return (
                f"ledger OK: {self.entries} entries, {self.nodes} nodes, "
                f"{self.checkpoints} checkpoints, {self.transactions} money transactions; "
                f"root {self.root.hex()}"
            )
        where = ""
        if len(self.bad_seqs) > 2:
            where = f" at seqs {self.bad_seqs[0]}-{self.bad_seqs[-1]}"
        elif self.bad_seqs:
            where = " at seq " + " or ".join(str(seq) for seq in self.bad_seqs)
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
        select(
            LedgerEntry.seq,
            LedgerEntry.entry,
            LedgerEntry.leaf_hash,
            *(getattr(LedgerEntry, column) for column in ENTRY_COLUMNS),
        ).order_by(LedgerEntry.seq),
    )
    # Stored nodes in the order a rebuild completes them: by (idx + 1) << level, then level.
    level = f"CAST((key >> {NODE_INDEX_BITS}) AS INTEGER)"
    completes_at: ColumnElement[int] = literal_column(
        f"((key & {(1 << NODE_INDEX_BITS) - 1}) + 1) << {level}"
    )
    nodes = _stream(
        session,
        select(LedgerNode.key, LedgerNode.hash).order_by(completes_at, literal_column(level)),
    )
    checkpoints = _stream(
        session,
        select(
            LedgerCheckpoint.tree_size,
            LedgerCheckpoint.root_hash,
            LedgerCheckpoint.note,
            LedgerCheckpoint.created_at,
        ).order_by(LedgerCheckpoint.tree_size),
    )
    size, frontier = 0, list[bytes]()
    proven = 0  # entries below this size are proved by a checkpoint that verified
    next_cp = next(checkpoints, None)
    leaves: list[bytes] = []

    def flush() -> bool:
        nonlocal size, frontier
        if not leaves:
            return True
        result = merkle.append_leaf_hashes(size, frontier, leaves, every=NODE_LEVEL_STRIDE)
        for level, index, digest in result.new_nodes:
            stored = next(nodes, None)
            if stored is None or stored[0] != node_key(level, index):
                report.fail(f"stored tree node ({level}, {index}) is missing", index << level)
                return False
            if bytes(stored[1]) != digest:
                problem, seqs = _blame_node(level, index, proven)
                report.fail(problem, *seqs)
                return False
            report.nodes += 1
        size, frontier = result.size, result.frontier
        leaves.clear()
        return True

    for seq, data, stored_leaf, *columns in entries:
        data = bytes(data)
        if seq != report.entries:
            return report.fail(f"sequence gap: expected {report.entries}", seq).ok
        leaf = merkle.leaf_hash(data)
        if leaf != bytes(stored_leaf):
            return report.fail("entry bytes do not match the stored leaf hash", seq).ok
        problem = _check_entry_row(
            data, seq, who.origin, dict(zip(ENTRY_COLUMNS, columns, strict=True))
        )
        if problem:
            return report.fail(problem, seq).ok
        leaves.append(leaf)
        report.entries += 1
        while next_cp is not None and next_cp[0] == report.entries:
            if not flush():
                return False
            entry_time = columns[ENTRY_COLUMNS.index("created_at")]
            if not _check_checkpoint(
                next_cp, size, frontier, verifier, who.origin, entry_time, proven, report
            ):
                return False
            proven = size
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


def _blame_node(level: int, index: int, proven: int) -> tuple[str, tuple[int, ...]]:
    """The failure for a stored node that no longer matches what the entries under it hash to.

    Nodes are compared bottom-up, so below a mismatching node above the lowest stored level
    every stored node matched: the node table itself was changed. A node of the lowest stored
    level covers 2**NODE_LEVEL_STRIDE entries and only a signed checkpoint between them can
    tell which one changed (the stored node commits to all its leaves at once); entries below
    `proven` are covered by a checkpoint that verified.
    """
    first, last = index << level, ((index + 1) << level) - 1
    if level > NODE_LEVEL_STRIDE:
        return (
            f"stored tree nodes over entries {first}-{last} disagree with each other: "
            "the node table was changed",
            (max(first, proven),),
        )
    return _blame_entries(
        max(first, proven), last, f"the tree node over entries {first}-{last} no longer matches"
    )


def _blame_entries(first: int, last: int, because: str) -> tuple[str, tuple[int, ...]]:
    """Entries `first`..`last`, one of which was changed, named as exactly as the log allows."""
    if first == last:
        return f"entry {last} was changed after it was logged: {because}", (last,)
    who = f"entry {first} or {last}" if last - first == 1 else f"one of entries {first}-{last}"
    return (
        f"{who} was changed after it was logged: {because}, "
        "and no checkpoint between them tells which",
        tuple(range(first, last + 1)),
    )


ENTRY_COLUMNS = ("created_at", "kind", "work_id", "artist_id", "order_id", "organization_id")
SUBJECT_COLUMNS = {
    "work_id": "work",
    "artist_id": "artist",
    "order_id": "order",
    "organization_id": "organization",
}


def _check_entry_row(data: bytes, seq: int, origin: str, columns: dict[str, Any]) -> str | None:
    """What is wrong with an entry's bytes, or with a column that repeats them for lookups."""
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return "entry bytes are not JSON"
    if not isinstance(parsed, dict) or parsed.get("seq") != seq or parsed.get("log") != origin:
        return "entry names another position or another log"
    subject = parsed.get("subject")
    if not isinstance(subject, dict):
        return "entry bytes have no subject"
    signed: dict[str, Any] = {
        "created_at": parsed.get("timestamp"),
        "kind": parsed.get("kind"),
        **{column: subject.get(key) for column, key in SUBJECT_COLUMNS.items()},
    }
    stored = dict(columns, created_at=format_timestamp(columns["created_at"]))
    for column in ENTRY_COLUMNS:
        if stored[column] != signed[column]:
            return (
                f"ledger_entries.{column} is {stored[column]!r} "
                f"but the signed entry says {signed[column]!r}"
            )
    return None


def _check_checkpoint(
    row: Any,
    size: int,
    frontier: list[bytes],
    verifier: Any,
    origin: str,
    entry_time: datetime,
    proven: int,
    report: VerifyReport,
) -> bool:
    tree_size, stored_root, note, created_at = row
    root = merkle.root_from_frontier(frontier)
    last = size - 1
    try:
        opened = open_note(note, [verifier])
        checkpoint = parse_checkpoint(opened.text)
    except NoteError as exc:
        return report.fail(f"checkpoint at size {tree_size}: {exc}", last).ok
    if (checkpoint.origin, checkpoint.size) != (origin, size):
        return report.fail(f"checkpoint note at size {tree_size} says something else", last).ok
    if checkpoint.root_hash != root:
        uncovered = max(proven, size - size % (1 << NODE_LEVEL_STRIDE))
        if uncovered < size:
            # Every stored node under this tree matched; the leaves after the last one (no
            # stored node covers them yet) are the only entries the signed root can be blaming.
            problem, seqs = _blame_entries(
                uncovered, last, f"the checkpoint at size {tree_size} signed other bytes"
            )
            return report.fail(problem, *seqs).ok
        return report.fail(
            f"checkpoint at size {tree_size} signed another tree than the stored nodes over "
            f"entries {proven}-{last}: the node table was changed",
            proven,
        ).ok
    if bytes(stored_root) != root:
        return report.fail(
            f"ledger_checkpoints.root_hash at size {tree_size} differs from its signed note"
        ).ok
    if created_at != entry_time:
        return report.fail(
            f"ledger_checkpoints.created_at at size {tree_size} is not the time of entry {last}"
        ).ok
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
    """Each header and its postings against the signed entry; each account against its code."""
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
        select(
            LedgerTransaction.idempotency_key,
            LedgerTransaction.entry_seq,
            LedgerTransaction.kind,
            LedgerTransaction.currency,
            LedgerTransaction.memo,
            LedgerTransaction.created_at,
            sums.c.net,
            sums.c.n,
        )
        .outerjoin(sums, sums.c.key == LedgerTransaction.idempotency_key)
        .order_by(LedgerTransaction.entry_seq),
    )
    opened: dict[str, datetime] = {}  # account code -> time of the first entry naming it
    for key, entry_seq, kind, currency, memo, created_at, net, count in list(rows):
        if not count or count < 2 or net != 0:
            return report.fail(f"money transaction {key!r} does not balance", entry_seq).ok
        entry = session.get(LedgerEntry, entry_seq)
        if entry is None:
            return report.fail(f"money transaction {key!r} names no ledger entry", entry_seq).ok
        parsed = json.loads(bytes(entry.entry))
        payload = parsed.get("payload", {})
        header = {
            "idempotency_key": (key, payload.get("key")),
            "kind": (kind, parsed.get("kind")),
            "currency": (currency, payload.get("currency")),
            "memo": (memo, payload.get("memo")),
            "created_at": (format_timestamp(created_at), parsed.get("timestamp")),
        }
        for column, (stored, claimed) in header.items():
            if stored != claimed:
                return report.fail(
                    f"ledger_transactions.{column} of {key!r} is {stored!r} "
                    f"but its signed entry says {claimed!r}",
                    entry_seq,
                ).ok
        if not _postings_match_entry(session, key, payload):
            return report.fail(
                f"money transaction {key!r} differs from its ledger entry", entry_seq
            ).ok
        for posting in payload.get("postings", []):
            opened.setdefault(posting["account"], entry.created_at)
        report.transactions += 1
    orphan = session.scalar(
        select(LedgerEntry.seq)
        .outerjoin(LedgerTransaction, LedgerTransaction.entry_seq == LedgerEntry.seq)
        .where(LedgerEntry.kind.in_([kind.value for kind in MONEY_KINDS]))
        .where(LedgerTransaction.id.is_(None))
        .order_by(LedgerEntry.seq)
        .limit(1)
    )
    if orphan is not None:
        return report.fail("money entry has no money transaction recorded", orphan).ok
    return _verify_accounts(session, opened, report)


def _verify_accounts(session: Session, opened: dict[str, datetime], report: VerifyReport) -> bool:
    accounts = session.execute(
        select(
            LedgerAccount.code,
            LedgerAccount.kind,
            LedgerAccount.currency,
            LedgerAccount.artist_id,
            LedgerAccount.created_at,
        ).order_by(LedgerAccount.id)
    )
    for code, kind, currency, artist_id, created_at in accounts:
        try:
            expected = money.parse_account_code(code)
        except money.UnknownAccount:
            return report.fail(f"ledger account {code!r} is not an account of our chart").ok
        if (kind, currency, artist_id) != expected:
            return report.fail(
                f"ledger account {code!r}: its kind, currency or artist differs from its code"
            ).ok
        first = opened.get(code)
        if first is None:
            return report.fail(f"ledger account {code!r} is named by no money entry").ok
        if created_at != first:
            return report.fail(
                f"ledger_accounts.created_at of {code!r} is not the time of the first money "
                "entry naming it"
            ).ok
    return True


def _postings_match_entry(session: Session, key: str, payload: dict[str, Any]) -> bool:
    currency = payload.get("currency")
    claimed = Counter(
        (p["account"], p["direction"], p["amount_minor"], currency)
        for p in payload.get("postings", [])
    )
    stored = Counter(
        (code, direction, int(amount), posting_currency)
        for code, direction, amount, posting_currency in session.execute(
            select(
                LedgerAccount.code,
                LedgerPosting.direction,
                LedgerPosting.amount_minor,
                LedgerPosting.currency,
            )
            .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
            .where(LedgerPosting.transaction_key == key)
        )
    )
    return claimed == stored
