"""Bulk ingest: a large file loaded at the pace of the database, with per-record provenance.

What differs from the record-by-record path in `ingest` (the rules are the same):

* Two more processes map the file (`_map_file`), alternate blocks of lines each, while this
  one writes the blocks in file order; blocks travel through bounded queues, so memory stays
  flat and every core works.
* Each record is fingerprinted by the SHA-256 of its bytes as read (its JSON line), not by
  serialising it again. A record whose bytes are those we stored is skipped before it is
  parsed or mapped: the monthly re-ingest of an unchanged dump reads, hashes and moves on.
  `remap=True` maps every record again (after an adapter learns to read more fields).
* Each chunk of new and changed records is registered with ONE `stock.chunk_registered`
  ledger entry whose payload is the RFC 6962 Merkle root over the records' leaves
  (`verify.record_leaf`: their source, id and raw SHA-256); the leaves are kept in
  `stock_chunks`, so `record_proof` forms any record's proof: its audit path to the chunk
  root, then the entry's inclusion proof in the log. Withdrawals and reinstatements keep
  their own entries, one per record, as in the other path.
* When the load is at least as large as the catalog, the catalog tables' secondary indexes
  are dropped before it and built again after it (on failure too, and `ensure_indexes` at
  the start of every ingest rebuilds any that a killed run left missing). Every chunk commits
  with its ledger entry, so a run cut short is finished by running it again.
* The search index (tantivy) is rebuilt by one job after a large load instead of being
  updated chunk by chunk.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import queue as queue_module
import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from flask import current_app
from sqlalchemy import Connection, Index, Table, select, text, update
from sqlalchemy.orm import Session

from marketplace import jobs
from marketplace.artists.terms import ALL_USES_MASK
from marketplace.catalog import search
from marketplace.catalog.ingest import (
    ITEMS,
    MAX_REPORTED_PROBLEMS,
    STOCK,
    IngestReport,
    Outcome,
    _columns,
    _rehashed_if_same,
    _reindex,
    content_hash,
    raw_sha256,
)
from marketplace.catalog.models import CatalogLicense, MirrorStatus, StockChunk, StockRecord
from marketplace.catalog.services import apply_optouts, orientation_of
from marketplace.catalog.sources.base import Adapter, Malformed, Skipped, StockFields
from marketplace.db import insert_driver_rows, reserve_ids, transaction, utcnow
from marketplace.ledger import merkle
from marketplace.ledger import services as ledger
from marketplace.ledger.kinds import EntryKind
from marketplace.ledger.verify import RECORD_PROOF_FORMAT, record_leaf

log = logging.getLogger(__name__)

BULK_CHUNK = 5000
BULK_MIN_LINES = 100_000  # files of at least this many lines take the bulk path by default
REINDEX_MIN_ITEMS = 20_000  # more changed items than this: one search rebuild, not updates
QUEUE_CHUNKS = 3  # blocks each mapping process maps ahead of the writer (bounds memory)
MAPPERS = 2  # mapping processes: mapping costs about twice what writing does
CHUNKS = Table("stock_chunks", StockChunk.metadata)
_KEY_HEX = 24  # 96 bits of a raw SHA-256 kept in memory per stored record


class BulkIngestFailed(RuntimeError):
    """The mapping process failed; the message holds its traceback."""


# --- The mapping process ---------------------------------------------------------------------


_PLAIN_ID = re.compile(r"[0-9A-Za-z._:/ -]*")


def _leaf(source: str, source_id: str, raw_hex: str) -> bytes:
    """`verify.record_leaf`, without a JSON encoder for the ids of every museum we read
    (letters, digits and a little punctuation: nothing JSON escapes)."""
    if not (_PLAIN_ID.fullmatch(source_id) and _PLAIN_ID.fullmatch(source)):
        return record_leaf(source, source_id, raw_hex)
    data = f'{{"raw_sha256":"{raw_hex}","source":"{source}","source_id":"{source_id}"}}'
    return hashlib.sha256(b"\x00" + data.encode()).digest()


def _key(raw_hex: str) -> int:
    return int(raw_hex[:_KEY_HEX], 16)


# A new or changed record, ready to write: everything but ids, times and ledger positions.
# (source_id, raw_sha256, leaf, content_hash, stock columns (STOCK_COLUMNS), orientation)
Prepared = tuple[str, str, bytes, str, tuple[Any, ...], str]
Gone = tuple[str, str, str]  # (source_id, reason, raw_sha256) of a record the source withdrew

STOCK_COLUMNS = (
    "title",
    "creator",
    "date_text",
    "year_start",
    "year_end",
    "medium",
    "dimensions",
    "institution",
    "page_url",
    "image_urls",
    "rights_statement",
    "rights_uri",
    "description",
    "tags",
    "raw",
    "width",
    "height",
)
_TITLE, _CREATOR, _YEAR_START, _YEAR_END, _MEDIUM = 0, 1, 3, 4, 5
_INSTITUTION, _DESCRIPTION, _TAGS, _WIDTH, _HEIGHT = 7, 12, 13, 15, 16


def _prepare(source: str, fields: StockFields, raw_hex: str) -> Prepared:
    columns = _columns(fields)
    columns["image_urls"] = orjson.dumps(columns["image_urls"]).decode()
    columns["raw"] = orjson.dumps(columns["raw"]).decode()
    return (
        fields.source_id,
        raw_hex,
        _leaf(source, fields.source_id, raw_hex),
        content_hash(fields),
        tuple(columns[name] for name in STOCK_COLUMNS),
        orientation_of(fields.image_width, fields.image_height).value,
    )


# What a mapping process sends for each record, in line order: (tag, line, value).
PREPARED, GONE, UNCHANGED = 0, 1, 2


def _map_file(
    adapter: Adapter,
    path: Path,
    known: set[int],
    block_lines: int,
    worker: int,
    workers: int,
    out: Any,
) -> None:
    """Map the records of every `workers`-th block of `block_lines` lines (from block
    `worker`), putting ("block", number, records, count) on `out` for each block, then
    ("done", report); ("error", traceback) if anything fails. Runs in its own process.

    Every process reads the whole file (parsing is cheap) and maps its own blocks (mapping is
    not); the writer takes blocks in file order, so ids repeated within the file are decided
    there, first one kept, as in the record-by-record path."""
    try:
        report = IngestReport(source=adapter.name)
        records: list[tuple[int, int, Any]] = []
        current = -1
        for item in adapter.read(path):
            block = (item.line - 1) // block_lines
            if block != current:
                if current % workers == worker and current >= 0:
                    out.put(("block", current, records, len(records)))
                    records = []
                current = block
            if block % workers != worker:
                continue
            if isinstance(item, Malformed):
                report.note_malformed(item)
                continue
            raw_hex = raw_sha256(item)
            key = _key(raw_hex)
            if key in known:  # the very bytes we hold: nothing to map, nothing to write
                records.append((UNCHANGED, item.line, key))
                continue
            result = adapter.map(item)
            if isinstance(result, Malformed):
                report.note_malformed(result)
            elif isinstance(result, Skipped):
                if result.source_id:  # the catalog may hold it: withdraw it
                    records.append((GONE, item.line, (result.source_id, result.reason, raw_hex)))
                else:
                    report.skipped[result.reason] += 1
            else:
                records.append((PREPARED, item.line, _prepare(adapter.name, result, raw_hex)))
        if current >= 0 and current % workers == worker:
            out.put(("block", current, records, len(records)))
        out.put(("done", report))
    except BaseException:
        out.put(("error", traceback.format_exc()))


# --- The writing process ---------------------------------------------------------------------


@dataclass
class _Run:
    source: str
    report: IngestReport
    fresh: bool  # the catalog held no record of this source when the run began
    collect_ids: bool  # update the search index per chunk (small loads)
    changed_items: int = 0
    seen_ids: set[int] = field(default_factory=set)  # hash() of each id written or withdrawn
    seen_raw: set[int] = field(default_factory=set)  # keys of records skipped as unchanged


def ingest_file_bulk(
    adapter: Adapter,
    path: Path,
    *,
    chunk_size: int = BULK_CHUNK,
    remap: bool = False,
    progress: Callable[[int], None] | None = None,
    estimate: int | None = None,
    rebuild_indexes: bool | None = None,
    mappers: int = MAPPERS,
) -> IngestReport:
    """Load `path` with `adapter` through the bulk path (see the module docstring).

    `estimate` is the file's line count; `rebuild_indexes` (default: when the file has at
    least twice as many lines as the catalog has rows) drops the secondary indexes for the
    load."""
    source = adapter.name
    with transaction() as session:
        stored = session.execute(
            select(StockRecord.raw_sha256).where(
                StockRecord.source == source, StockRecord.raw_sha256.is_not(None)
            )
        ).scalars()
        known = set() if remap else {_key(h) for h in stored if h}
        held = session.scalar(select(StockRecord.id).where(StockRecord.source == source).limit(1))
        catalog_rows = _row_estimate(session)
    lines = estimate or 0
    drop = rebuild_indexes
    if drop is None:
        # Worth it when the load at least doubles the tables (a first load, a new source);
        # never for a refresh of what is there, which writes little.
        drop = lines >= BULK_MIN_LINES // 10 and catalog_rows * 2 <= lines
    run = _Run(
        source=source,
        report=IngestReport(source=source),
        fresh=held is None,
        collect_ids=lines < REINDEX_MIN_ITEMS,
    )
    context: Any = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    workers = max(1, mappers)
    channels = [context.Queue(maxsize=QUEUE_CHUNKS) for _ in range(workers)]
    processes = [
        context.Process(
            target=_map_file,
            args=(adapter, path, known, chunk_size, worker, workers, channels[worker]),
            name=f"ingest-map-{source}-{worker}",
            daemon=True,
        )
        for worker in range(workers)
    ]
    del known  # the children have their copies
    dropped: list[Index] = drop_indexes() if drop else []
    for process in processes:
        process.start()
    try:
        heads: list[tuple[Any, ...] | None] = [None] * workers
        done = [False] * workers
        while True:
            for worker in range(workers):
                if heads[worker] is None and not done[worker]:
                    message = _receive(channels[worker], processes[worker])
                    if message[0] == "error":
                        raise BulkIngestFailed(f"mapping {path.name} failed:\n{message[1]}")
                    if message[0] == "done":
                        _merge(run.report, message[1])
                        done[worker] = True
                    else:
                        heads[worker] = message
            waiting = [(h[1], w) for w, h in enumerate(heads) if h is not None]
            if not waiting:
                break
            _, worker = min(waiting)  # the next block of the file
            _, _, records, count = heads[worker]  # type: ignore[misc]
            heads[worker] = None
            prepared, gone = _first_of_each_id(run, records)
            if prepared or gone:
                _write_chunk(run, prepared, gone)
            if progress is not None:
                progress(count)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
        for channel in channels:
            channel.close()
        if dropped:
            create_indexes(dropped)
    if run.changed_items and not run.collect_ids:
        _reindex_search()
    return run.report


def _first_of_each_id(
    run: _Run, records: Sequence[tuple[int, int, Any]]
) -> tuple[list[Prepared], list[Gone]]:
    """A block's records to write, each id once in the whole file (the first is kept)."""
    report, seen_ids, seen_raw = run.report, run.seen_ids, run.seen_raw
    prepared: list[Prepared] = []
    gone: list[Gone] = []
    for tag, line, value in records:
        if tag == UNCHANGED:
            if value in seen_raw:
                report.note_repeated_line(line)
            else:
                seen_raw.add(value)
                report.unchanged += 1
            continue
        digest = hash(value[0])
        if digest in seen_ids:
            report.note_duplicate(line, value[0])
            continue
        seen_ids.add(digest)
        if tag == GONE:
            report.skipped[value[1]] += 1
            gone.append(value)
        else:
            prepared.append(value)
    return prepared, gone


def _receive(channel: Any, mapper: Any) -> tuple[Any, ...]:
    while True:
        try:
            message: tuple[Any, ...] = channel.get(timeout=1.0)
            return message
        except queue_module.Empty:
            if not mapper.is_alive():
                raise BulkIngestFailed(
                    f"the mapping process stopped (exit code {mapper.exitcode})"
                ) from None


def _merge(report: IngestReport, mapped: IngestReport) -> None:
    """Add what the mapping process counted (read side) to what the writer counted."""
    report.unchanged += mapped.unchanged
    report.skipped.update(mapped.skipped)
    report.malformed.update(mapped.malformed)
    report.duplicates += mapped.duplicates
    report.problems = sorted(mapped.problems + report.problems)[:MAX_REPORTED_PROBLEMS]


def _row_estimate(session: Session) -> int:
    return int(session.scalar(select(ITEMS.c.id).order_by(ITEMS.c.id.desc()).limit(1)) or 0)


def _write_chunk(run: _Run, prepared: Sequence[Prepared], gone: Sequence[Gone]) -> None:
    """One chunk, in one transaction: rows, search rows and the chunk's ledger entry."""
    source, report = run.source, run.report
    with transaction() as session:
        existing: dict[str, tuple[int, str, str | None, Any, MirrorStatus]] = {}
        if not run.fresh:
            wanted = [p[0] for p in prepared] + [g[0] for g in gone]
            for start in range(0, len(wanted), 900):
                for row in session.execute(
                    select(
                        StockRecord.source_id,
                        StockRecord.id,
                        StockRecord.content_hash,
                        StockRecord.raw_sha256,
                        StockRecord.withdrawn_at,
                        StockRecord.mirror_status,
                    ).where(
                        StockRecord.source == source,
                        StockRecord.source_id.in_(wanted[start : start + 900]),
                    )
                ):
                    existing[row[0]] = (row[1], row[2], row[3], row[4], row[5])
        new = [p for p in prepared if p[0] not in existing]
        reinstated = [p for p in prepared if p[0] in existing and existing[p[0]][3] is not None]
        rehashed: list[tuple[str, int]] = []
        changed: list[Prepared] = []
        for p in prepared:
            found = existing.get(p[0])
            if found is None or found[3] is not None:
                continue
            if found[1] == p[3] or _same_content(session, found[0], p):
                rehashed.append((p[1], found[0]))  # bookkeeping only: remember the bytes
            else:
                changed.append(p)
        withdrawn = [g for g in gone if g[0] in existing and existing[g[0]][3] is None]
        still_gone = [(g[2], existing[g[0]][0]) for g in gone if g[0] in existing]
        report.unchanged += len(rehashed)
        connection = session.connection()
        if rehashed or still_gone:
            connection.exec_driver_sql(
                _sql(connection, "UPDATE stock_records SET raw_sha256 = {} WHERE id = {}"),
                [*rehashed, *still_gone],
            )
        registered = [*new, *changed]
        if not registered and not reinstated and not withdrawn:
            return
        now = utcnow()
        entries = []
        if registered:
            leaves = [p[2] for p in registered]
            entries.append(
                ledger.NewEntry(
                    EntryKind.STOCK_CHUNK_REGISTERED,
                    {},
                    {
                        "source": source,
                        "records": len(leaves),
                        "merkle_root": merkle.tree_root(leaves).hex(),
                    },
                )
            )
        entries += [
            ledger.NewEntry(
                EntryKind.STOCK_REINSTATED,
                {"stock": existing[p[0]][0]},
                _payload(source, p),
            )
            for p in reinstated
        ]
        entries += [
            ledger.NewEntry(
                EntryKind.STOCK_WITHDRAWN,
                {"stock": existing[g[0]][0]},
                {"source": source, "source_id": g[0], "reason": g[1]},
            )
            for g in withdrawn
        ]
        first_seq = ledger.append_many(session, entries, now=now).first_seq
        if registered:
            insert_driver_rows(
                connection,
                CHUNKS,
                ("ledger_seq", "source", "leaf_hashes", "created_at"),
                [(first_seq, source, b"".join(leaves), _driver(connection, CHUNKS, now))],
            )
        if new:
            item_ids = _insert_new(connection, source, new, first_seq, now)
            # What the registry matches them by, and out of the catalog if a rule does.
            apply_optouts(session, item_ids, new=True)
            if run.collect_ids:
                search.items_changed(session, item_ids)
            run.changed_items += len(item_ids)
            report.added += len(new)
        after = first_seq + (1 if registered else 0)
        updates = [
            *((p, first_seq, leaf) for leaf, p in enumerate(changed, start=len(new))),
            *((p, after + i, None) for i, p in enumerate(reinstated)),
        ]
        for p, seq, leaf in updates:
            record_id, _old, _raw, _withdrawn, status = existing[p[0]]
            columns = dict(zip(STOCK_COLUMNS, p[4], strict=True))
            columns["image_urls"] = orjson.loads(columns["image_urls"])
            columns["raw"] = orjson.loads(columns["raw"])
            if status is MirrorStatus.MIRRORED:  # keep the measured size of our copy
                columns.pop("width")
                columns.pop("height")
            session.execute(
                update(StockRecord)
                .where(StockRecord.id == record_id)
                .values(
                    **columns,
                    content_hash=p[3],
                    raw_sha256=p[1],
                    updated_at=now,
                    ledger_seq=seq,
                    ledger_leaf=leaf,
                    withdrawn_at=None,
                    withdrawn_reason="",
                )
            )
            _reindex(session, record_id)
        report.updated += len(changed)
        report.reinstated += len(reinstated)
        start = after + len(reinstated)
        for offset, g in enumerate(withdrawn, start=start):
            record_id = existing[g[0]][0]
            session.execute(
                update(StockRecord)
                .where(StockRecord.id == record_id)
                .values(
                    withdrawn_at=now,
                    withdrawn_reason=g[1][:200],
                    raw_sha256=g[2],
                    updated_at=now,
                    ledger_seq=offset,
                    ledger_leaf=None,
                )
            )
            _reindex(session, record_id)
        report.withdrawn += len(withdrawn)
        run.changed_items += len(changed) + len(reinstated) + len(withdrawn)


def _same_content(session: Session, record_id: int, p: Prepared) -> bool:
    """Whether a record differs from what we hold only in the source's bookkeeping fields
    (its fingerprint made before they were left out); refreshes the fingerprint if so."""
    columns = dict(zip(STOCK_COLUMNS, p[4], strict=True))
    fields = StockFields(
        source_id=p[0],
        title=columns["title"],
        creator=columns["creator"],
        date_text=columns["date_text"],
        year_start=columns["year_start"],
        year_end=columns["year_end"],
        medium=columns["medium"],
        dimensions=columns["dimensions"],
        institution=columns["institution"],
        page_url=columns["page_url"],
        image_urls=tuple(orjson.loads(columns["image_urls"])),
        image_width=columns["width"],
        image_height=columns["height"],
        rights_statement=columns["rights_statement"],
        rights_uri=columns["rights_uri"],
        description=columns["description"],
        tags=tuple(t for t in columns["tags"].split(", ") if t),
        raw=orjson.loads(columns["raw"]),
    )
    return _rehashed_if_same(session, record_id, fields, p[3])


def _payload(source: str, p: Prepared) -> dict[str, Any]:
    columns = dict(zip(STOCK_COLUMNS, p[4], strict=True))
    urls = orjson.loads(columns["image_urls"])
    return {
        "source": source,
        "source_id": p[0],
        "title": columns["title"][:300],
        "rights_uri": columns["rights_uri"],
        "image_url": urls[0] if urls else "",
        "content_sha256": p[3],
    }


_NEW_STOCK = (
    "id",
    "source",
    "source_id",
    *STOCK_COLUMNS,
    "content_hash",
    "raw_sha256",
    "created_at",
    "updated_at",
    "ledger_seq",
    "ledger_leaf",
    "mirror_status",
    "mirror_error",
    "mirror_attempts",
    "derivatives_version",
    "withdrawn_reason",
)
_NEW_ITEM = (
    "id",
    "stock_id",
    "available",
    "title",
    "description",
    "tags",
    "creator",
    "institution",
    "source",
    "medium",
    "year_start",
    "year_end",
    "width",
    "height",
    "orientation",
    "license",
    "price_minor",
    "currency",
    "has_image",
    "permitted_uses",
    "created_at",
    "updated_at",
)
_FTS = ("rowid", *search.FTS_COLUMNS)


def _insert_new(
    connection: Connection, source: str, new: Sequence[Prepared], seq: int, now: Any
) -> list[int]:
    """Stock rows, their search rows and (SQLite) full-text rows, in three bulk inserts."""
    stamp = _driver(connection, STOCK, now)
    pending = _driver(connection, STOCK, MirrorStatus.PENDING, "mirror_status")
    ids = reserve_ids(connection, STOCK, len(new))
    insert_driver_rows(
        connection,
        STOCK,
        _NEW_STOCK,
        [
            (
                record_id,
                source,
                p[0],
                *p[4],
                p[3],
                p[1],
                stamp,
                stamp,
                seq,
                leaf,
                pending,
                "",
                0,
                0,
                "",
            )
            for leaf, (record_id, p) in enumerate(zip(ids, new, strict=True))
        ],
    )
    item_ids = reserve_ids(connection, ITEMS, len(new))
    currency = str(current_app.config["DEFAULT_CURRENCY"])
    licence = CatalogLicense.PUBLIC_DOMAIN.value
    available, no_image = (
        _driver(connection, ITEMS, True, "available"),
        _driver(connection, ITEMS, False, "has_image"),
    )
    items = []
    for item_id, record_id, p in zip(item_ids, ids, new, strict=True):
        c = p[4]
        items.append(
            (
                item_id,
                record_id,
                available,
                c[_TITLE],
                c[_DESCRIPTION],
                c[_TAGS],
                c[_CREATOR][:300],
                c[_INSTITUTION],
                source,
                c[_MEDIUM][:300],
                c[_YEAR_START],
                c[_YEAR_END],
                c[_WIDTH],
                c[_HEIGHT],
                p[5],
                licence,
                0,
                currency,
                no_image,
                ALL_USES_MASK,
                stamp,
                stamp,
            )
        )
    insert_driver_rows(connection, ITEMS, _NEW_ITEM, items)
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(
            f"INSERT INTO catalog_fts({', '.join(_FTS)}) "  # noqa: S608 - fixed names
            f"VALUES ({', '.join('?' for _ in _FTS)})",
            [(i[0], i[3], i[4], i[5], i[6], i[7], i[9]) for i in items],
        )
    return item_ids


def _driver(connection: Connection, table: Table, value: Any, column: str = "created_at") -> Any:
    """`value` as the driver takes it for `table.column` (what SQLAlchemy would bind)."""
    dialect = connection.dialect
    process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    return value if process is None else process(value)


def _sql(connection: Connection, template: str) -> str:
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    return template.format(*(marker for _ in range(template.count("{}"))))


def secondary_indexes() -> list[Index]:
    """The catalog tables' non-unique indexes, as the models (and so the migrations) define
    them; unique constraints stay, since the ingest relies on them."""
    return [index for table in (STOCK, ITEMS) for index in table.indexes if not index.unique]


def drop_indexes() -> list[Index]:
    """Drop the catalog's secondary indexes present now; returns them to `create_indexes`."""
    dropped = []
    with transaction() as session:
        connection = session.connection()
        for index in secondary_indexes():
            if _has_index(connection, index):
                index.drop(connection)
                dropped.append(index)
    log.info("bulk ingest: %d secondary indexes dropped for the load", len(dropped))
    return dropped


def create_indexes(indexes: Sequence[Index] | None = None) -> int:
    """Build the given (default: all) catalog secondary indexes that are missing; returns how
    many were built. Every ingest starts with this, so a killed bulk run heals itself."""
    built = 0
    with transaction() as session:
        connection = session.connection()
        for index in indexes if indexes is not None else secondary_indexes():
            if not _has_index(connection, index):
                index.create(connection)
                built += 1
        if built:
            _analyze(connection)
    if built:
        log.info("catalog: %d secondary indexes built", built)
    return built


def ensure_indexes() -> int:
    return create_indexes(None)


def _has_index(connection: Connection, index: Index) -> bool:
    assert index.table is not None
    if connection.dialect.name == "sqlite":
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?"
    else:
        sql = "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = %s"
    return connection.exec_driver_sql(sql, (str(index.name),)).first() is not None


def _analyze(connection: Connection) -> None:
    """Planner statistics for the new indexes (SQLite: sampled, a second at 1M rows)."""
    if connection.dialect.name == "sqlite":
        connection.execute(text("PRAGMA analysis_limit = 1000"))
    connection.execute(text("ANALYZE stock_records"))
    connection.execute(text("ANALYZE catalog_items"))


# --- Search index ----------------------------------------------------------------------------

REBUILD_JOB = "marketplace.catalog.tasks.rebuild_search_index"


def _reindex_search() -> None:
    """After a large load: one rebuild of the search index (a job; inline without Redis or
    with SEARCH_INDEX_UPDATES=inline), instead of an update job per chunk."""
    if search.engine() != "tantivy":
        return
    if current_app.config.get("SEARCH_INDEX_UPDATES") == "inline":
        from marketplace.catalog.tasks import rebuild_search_index

        rebuild_search_index()
        return
    jobs.enqueue(REBUILD_JOB, job_id="search-rebuild")


# --- Proofs ----------------------------------------------------------------------------------


class NoChunkProof(LookupError):
    """The record was not registered as part of a chunk (or is unknown)."""


def record_proof(session: Session, stock_id: int) -> dict[str, Any]:
    """A stock record's proof, checked offline by `python -m marketplace.ledger.verify`:

    its leaf (source, id, raw SHA-256) -> the audit path to the Merkle root in its chunk's
    `stock.chunk_registered` entry -> that entry's inclusion proof against the latest signed
    checkpoint. Raises NoChunkProof for a record whose latest entry is its own.
    """
    record = session.get(StockRecord, stock_id)
    if record is None or record.ledger_seq is None or record.ledger_leaf is None:
        raise NoChunkProof(f"stock record {stock_id} has no chunk entry")
    if record.raw_sha256 is None:
        raise NoChunkProof(f"stock record {stock_id} has no raw hash")
    chunk = session.get(StockChunk, record.ledger_seq)
    if chunk is None:
        raise NoChunkProof(f"no leaves kept for ledger entry {record.ledger_seq}")
    data = bytes(chunk.leaf_hashes)
    leaves = [data[i : i + 32] for i in range(0, len(data), 32)]
    return {
        "format": RECORD_PROOF_FORMAT,
        "record": {
            "raw_sha256": record.raw_sha256,
            "source": record.source,
            "source_id": record.source_id,
        },
        "entry_seq": record.ledger_seq,
        "leaf_index": record.ledger_leaf,
        "leaf_count": len(leaves),
        "audit_path": [
            h.hex() for h in merkle.inclusion_proof_from_leaves(leaves, record.ledger_leaf)
        ],
        "ledger": ledger.proof_bundle(session, [record.ledger_seq]),
    }


__all__ = [
    "BULK_MIN_LINES",
    "BulkIngestFailed",
    "NoChunkProof",
    "Outcome",
    "create_indexes",
    "drop_indexes",
    "ensure_indexes",
    "ingest_file_bulk",
    "record_proof",
]
