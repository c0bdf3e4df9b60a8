"""Loading a museum's open-access file into the catalog: streaming, idempotent, batched.

Each chunk of records commits on its own (so a run cut short can simply be run again), is
written with bulk statements, and is registered in the ledger with one `append_many` call.
A record whose mapped fields and raw source are unchanged is left alone; a changed one is
updated and its change recorded. Changes only to a source's bookkeeping fields (`updated_at`,
`timestamp`, ...: `BOOKKEEPING_FIELDS`) are not changes: a monthly refresh of a dump must not
re-log the collection.

A record the source no longer offers (not open access any more, or its image gone) is
withdrawn at once: it leaves search, collections' available items and bundles, and a
`stock.withdrawn` entry says why. If the source offers it again it is reinstated
(`stock.reinstated`). Ids repeated within one file are reported; the first one is kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Table, case, select, text, update
from sqlalchemy.orm import Session

from marketplace.catalog.models import CatalogItem, MirrorStatus, StockRecord
from marketplace.catalog.search import index_new_items, items_changed
from marketplace.catalog.services import (
    apply_optouts,
    stock_item_values,
    stock_item_values_from,
)
from marketplace.catalog.sources.base import (
    Adapter,
    Malformed,
    RawRecord,
    Skipped,
    StockFields,
    carries_signature,
)
from marketplace.db import bulk_insert, reserve_ids, transaction, utcnow
from marketplace.ledger import services as ledger
from marketplace.ledger.kinds import EntryKind

log = logging.getLogger(__name__)

CHUNK = 2000
ANALYZE_EVERY = 20_000  # records added between statistics refreshes (then doubling)
STOCK = Table("stock_records", StockRecord.metadata)
ITEMS = Table("catalog_items", CatalogItem.metadata)
MAX_REPORTED_PROBLEMS = 200
# Top-level raw fields that say when the source last touched its record, not what it is.
BOOKKEEPING_FIELDS = frozenset(
    {
        "updated_at",  # AIC, Cleveland
        "source_updated_at",  # AIC
        "timestamp",  # AIC, Smithsonian
        "last_updated",
        "last_updated_source",  # AIC
        "lastTimeUpdated",  # Smithsonian
        "docSignature",  # Smithsonian: a signature of the indexed document
        "hash",  # Smithsonian: a hash of the same
        "version",  # Smithsonian: the index's version string
        "metadataDate",  # the Met's API
        "Metadata Date",  # the Met's MetObjects.csv
    }
)


SIGNATURE_SAMPLE = 20  # records looked at to tell which source a file belongs to


class UnusableFile(Exception):
    """Nothing in the file could be read as this source's records; the message says why.

    `report` holds what was counted when the whole file was read (None when the file was
    refused before reading it through).
    """

    def __init__(self, message: str, report: IngestReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class IngestReport:
    source: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0  # records whose id an earlier record of the file already had
    withdrawn: int = 0  # skipped records that were in the catalog: taken out of it
    reinstated: int = 0  # withdrawn records the source offers again
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), first N

    @property
    def read(self) -> int:
        return (
            self.added
            + self.updated
            + self.unchanged
            + self.reinstated
            + sum(self.skipped.values())
            + sum(self.malformed.values())
            + self.duplicates
        )

    @property
    def usable(self) -> int:
        """Records that were read as this source's records (loaded, unchanged or skipped)."""
        return self.read - sum(self.malformed.values()) - self.duplicates

    def note_malformed(self, problem: Malformed) -> None:
        self.malformed[problem.reason] += 1
        self._note(problem.line, problem.reason)

    def note_duplicate(self, line: int, source_id: str) -> None:
        self.duplicates += 1
        self._note(line, f"duplicate id {source_id!r} (an earlier record has it; kept that one)")

    def note_repeated_line(self, line: int) -> None:
        """A record whose bytes an earlier line had (found without reading its id)."""
        self.duplicates += 1
        self._note(line, "the same record as an earlier line (kept that one)")

    def _note(self, line: int, reason: str) -> None:
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append((line, reason))

    def summary_lines(self) -> list[str]:
        lines = [
            f"{self.source}: {self.read} records read: {self.added} added, {self.updated} "
            f"updated, {self.unchanged} unchanged, {self.reinstated} reinstated, "
            f"{sum(self.skipped.values())} skipped ({self.withdrawn} withdrawn), "
            f"{sum(self.malformed.values())} malformed, {self.duplicates} duplicate ids"
        ]
        lines += [f"  skipped, {reason}: {n}" for reason, n in self.skipped.most_common()]
        if self.withdrawn:
            lines.append(f"  withdrawn from the catalog (no longer offered): {self.withdrawn}")
        lines += [f"  malformed, {reason}: {n}" for reason, n in self.malformed.most_common()]
        if self.duplicates:
            lines.append(f"  duplicate ids: {self.duplicates}")
        shown = self.problems[:20]
        lines += [f"  line {line}: {reason}" for line, reason in shown]
        problems = sum(self.malformed.values()) + self.duplicates
        if problems > len(shown):
            lines.append(f"  ... and {problems - len(shown)} more")
        return lines


_FIELD_NAMES = tuple(f.name for f in fields(StockFields))
_RAW = _FIELD_NAMES.index("raw")


def _without_bookkeeping(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in raw.items() if key not in BOOKKEEPING_FIELDS}


def content_hash(record: StockFields) -> str:
    """Fingerprint of what we store and show about a record: unchanged means nothing to write.

    The source's bookkeeping fields are left out, so a refreshed dump is not a change.
    """
    values = [getattr(record, name) for name in _FIELD_NAMES]  # shallow: no asdict deep copy
    values[_RAW] = _without_bookkeeping(record.raw)
    try:
        data = orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=str)
    except TypeError:  # an integer past 64 bits: the standard library writes it
        data = json.dumps(
            values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        ).encode()
    return hashlib.sha256(data).hexdigest()


def _columns(fields: StockFields) -> dict[str, Any]:
    return {
        "title": fields.title[:2000],
        "creator": fields.creator[:2000],
        "date_text": fields.date_text[:200],
        "year_start": fields.year_start,
        "year_end": fields.year_end,
        "medium": fields.medium[:2000],
        "dimensions": fields.dimensions[:2000],
        "institution": fields.institution[:200],
        "page_url": fields.page_url,
        "image_urls": list(fields.image_urls),
        "rights_statement": fields.rights_statement,
        "rights_uri": fields.rights_uri[:200],
        "description": fields.description,
        "tags": ", ".join(fields.tags),
        "raw": fields.raw,
        "width": fields.image_width,
        "height": fields.image_height,
    }


Outcome = StockFields | Skipped  # a Skipped here always names its record (source_id)
# An outcome with the SHA-256 of its record's bytes as read (None: not from a file).
Read = tuple[Outcome, str | None]


def raw_sha256(record: RawRecord) -> str:
    """SHA-256 of the record's bytes as read (its JSON line), or of its canonical JSON when it
    shares its line (an API response) or comes from a CSV row or a JSON array: what a re-ingest
    compares to skip an unchanged record, and what its ledger leaf commits to."""
    data = record.source_bytes
    if data is None:
        data = orjson.dumps(record.data, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


def _mapped(adapter: Adapter, path: Path, report: IngestReport) -> Iterator[Read]:
    """Records to write (mapped, or skipped by the source's say), each id once.

    Seen ids are kept as 64-bit digests (about 100 bytes a record, however long the ids).
    """
    seen: set[int] = set()
    for item in adapter.read(path):
        if isinstance(item, Malformed):
            report.note_malformed(item)
            continue
        result = adapter.map(item)
        if isinstance(result, Malformed):
            report.note_malformed(result)
            continue
        if result.source_id:
            digest = int.from_bytes(
                hashlib.blake2b(result.source_id.encode(), digest_size=8).digest(), "big"
            )
            if digest in seen:
                report.note_duplicate(item.line, result.source_id)
                continue
            seen.add(digest)
        if isinstance(result, Skipped):
            report.skipped[result.reason] += 1
            if result.source_id:
                yield result, raw_sha256(item)  # the catalog may hold it: withdraw it
        else:
            yield result, raw_sha256(item)


def _chunks(records: Iterable[Read], size: int) -> Iterator[list[Read]]:
    chunk: list[Read] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def ingest_file(
    adapter: Adapter,
    path: Path,
    *,
    chunk_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    bulk: bool | None = None,
    remap: bool = False,
    rebuild_indexes: bool | None = None,
) -> IngestReport:
    """Load `path` with `adapter`; returns counts of what happened, with reasons.

    `chunk_size`: records a transaction (default 2,000; 5,000 lines on the bulk path).
    `bulk` (default: for files of at least `bulk.BULK_MIN_LINES` lines) takes the bulk path
    (`marketplace.catalog.bulk`): mapping in a second process, unchanged records skipped by
    their raw hash (`remap` maps them all again), one ledger entry per chunk, secondary
    indexes built after the load (`rebuild_indexes`, default: when the load at least doubles
    the catalog).
    """
    from marketplace.catalog import bulk as bulk_path  # it builds on this module

    _check_source(adapter, path)
    bulk_path.ensure_indexes()  # a bulk run killed mid-load left them dropped
    lines = count_lines(path)
    if bulk if bulk is not None else lines >= bulk_path.BULK_MIN_LINES:
        report = bulk_path.ingest_file_bulk(
            adapter,
            path,
            chunk_size=chunk_size or bulk_path.BULK_CHUNK,
            remap=remap,
            progress=progress,
            estimate=lines,
            rebuild_indexes=rebuild_indexes,
        )
        _refresh_statistics()
        return _checked(report, adapter, path)
    report = IngestReport(source=adapter.name)
    analyzed_at = 0
    for chunk in _chunks(_mapped(adapter, path, report), chunk_size or CHUNK):
        _write_chunk(adapter.name, chunk, report)
        if progress is not None:
            progress(len(chunk))
        if report.added - analyzed_at >= max(ANALYZE_EVERY, analyzed_at):
            _refresh_statistics()  # the planner must know the tables grew (index, not scan)
            analyzed_at = report.added
    if report.added > analyzed_at:
        _refresh_statistics()
    return _checked(report, adapter, path)


def _checked(report: IngestReport, adapter: Adapter, path: Path) -> IngestReport:
    """The report, or UnusableFile when nothing in the file could be read."""
    log.info("ingest %s: %s", adapter.name, report.summary_lines()[0])
    if not report.usable:
        if not report.read:
            raise UnusableFile(f"{path.name}: no records found in the file.", report)
        raise UnusableFile(
            f"{path.name}: none of its {report.read} records could be read as "
            f"{adapter.institution} records (the reasons are listed above).",
            report,
        )
    return report


def count_lines(path: Path) -> int:
    """Newlines in the file, read in 1 MiB blocks (memory stays flat)."""
    lines = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
    return max(lines, 1)


def _sample(adapter: Adapter, path: Path) -> list[RawRecord]:
    records: list[RawRecord] = []
    for item in adapter.read(path):
        if isinstance(item, RawRecord):
            records.append(item)
            if len(records) >= SIGNATURE_SAMPLE:
                break
    return records


def _check_source(adapter: Adapter, path: Path) -> None:
    """Refuse, before writing anything, a file that is plainly another source's format."""
    from marketplace.catalog.sources import ADAPTERS  # the registry imports every adapter

    sample = _sample(adapter, path)
    if not sample or any(carries_signature(adapter, r.data) for r in sample):
        return
    for other in ADAPTERS.values():
        if other.name != adapter.name and any(
            carries_signature(other, r.data) for r in _sample(other, path)
        ):
            raise UnusableFile(
                f"{path.name} looks like a file of {other.institution} (source "
                f"{other.name!r}), not of {adapter.institution}: run `marketplace ingest "
                f"{other.name} {path.name}`. Nothing was loaded."
            )
    raise UnusableFile(
        f"{path.name} does not look like a file of {adapter.institution}: none of its first "
        f"{len(sample)} records has any of the fields {', '.join(adapter.signature)}. "
        "Nothing was loaded."
    )


def _refresh_statistics() -> None:
    """Planner statistics for the tables a large ingest grows: without them PostgreSQL keeps
    believing the tables are empty and scans instead of using the indexes."""
    with transaction() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ANALYZE stock_records"))
            session.execute(text("ANALYZE catalog_items"))
        else:
            session.execute(text("PRAGMA optimize"))


def ingest_records(
    source: str, records: Iterable[StockFields], *, chunk_size: int = CHUNK
) -> IngestReport:
    """Load records already mapped (by an adapter, or built by a caller such as the tests):
    the same idempotent writes and ledger entries as `ingest_file`, without a file. Meant for
    small batches: the records are held in memory."""
    report = IngestReport(source=source)
    seen: set[str] = set()
    unique: list[Read] = []
    for position, record in enumerate(records, 1):
        if record.source_id in seen:
            report.note_duplicate(position, record.source_id)
        else:
            seen.add(record.source_id)
            unique.append((record, None))
    for chunk in _chunks(unique, chunk_size):
        _write_chunk(source, chunk, report)
    return report


def _write_chunk(source: str, chunk: list[Read], report: IngestReport) -> None:
    offered = [f for f, _ in chunk if isinstance(f, StockFields)]
    gone = [f for f, _ in chunk if isinstance(f, Skipped)]
    raws = {f.source_id: raw for f, raw in chunk}
    hashes = {fields.source_id: content_hash(fields) for fields in offered}
    with transaction() as session:
        stored_raws: dict[str, str | None] = {}
        existing = {}
        for record_id, source_id, old_hash, status, withdrawn_at, stored_raw in session.execute(
            select(
                StockRecord.id,
                StockRecord.source_id,
                StockRecord.content_hash,
                StockRecord.mirror_status,
                StockRecord.withdrawn_at,
                StockRecord.raw_sha256,
            ).where(
                StockRecord.source == source,
                StockRecord.source_id.in_([f.source_id for f, _ in chunk]),
            )
        ):
            existing[source_id] = (record_id, old_hash, status, withdrawn_at)
            stored_raws[source_id] = stored_raw
        # Remember the bytes of records we hold (unchanged, or withdrawn again), so that the
        # bulk path skips them next time; changed and new ones get theirs below.
        remembered = [
            {"id": existing[source_id][0], "raw_sha256": raw}
            for source_id, raw in raws.items()
            if raw is not None and source_id in existing and stored_raws[source_id] != raw
        ]
        if remembered:
            session.execute(update(StockRecord), remembered)
        new = [f for f in offered if f.source_id not in existing]
        reinstated = [
            f for f in offered if f.source_id in existing and existing[f.source_id][3] is not None
        ]
        changed = [
            f
            for f in offered
            if f.source_id in existing
            and existing[f.source_id][3] is None
            and existing[f.source_id][1] != hashes[f.source_id]
            and not _rehashed_if_same(session, existing[f.source_id][0], f, hashes[f.source_id])
        ]
        withdrawn = [
            f for f in gone if f.source_id in existing and existing[f.source_id][3] is None
        ]
        report.unchanged += len(offered) - len(new) - len(changed) - len(reinstated)
        if not new and not changed and not reinstated and not withdrawn:
            return
        entries = [
            ledger.NewEntry(
                EntryKind.STOCK_REGISTERED
                if f.source_id not in existing
                else EntryKind.STOCK_UPDATED,
                {},
                _entry_payload(source, f, hashes[f.source_id]),
            )
            for f in (*new, *changed)
        ]
        entries += [
            ledger.NewEntry(
                EntryKind.STOCK_REINSTATED,
                {"stock": existing[f.source_id][0]},
                _entry_payload(source, f, hashes[f.source_id]),
            )
            for f in reinstated
        ]
        entries += [
            ledger.NewEntry(
                EntryKind.STOCK_WITHDRAWN,
                {"stock": existing[f.source_id][0]},
                {"source": source, "source_id": f.source_id, "reason": f.reason},
            )
            for f in withdrawn
        ]
        first_seq = ledger.append_many(session, entries).first_seq
        now = utcnow()
        if new:
            rows = [
                {
                    "source": source,
                    "source_id": f.source_id,
                    **_columns(f),
                    "content_hash": hashes[f.source_id],
                    "raw_sha256": raws[f.source_id],
                    "ledger_leaf": None,
                    "created_at": now,
                    "updated_at": now,
                    "ledger_seq": first_seq + i,
                    "mirror_status": MirrorStatus.PENDING,
                    "mirror_error": "",
                    "mirror_attempts": 0,
                    "derivatives_version": 0,
                    "withdrawn_at": None,
                    "withdrawn_reason": "",
                }
                for i, f in enumerate(new)
            ]
            # Ids reserved up front and rows written through the driver's executemany: the
            # ORM's per-row work would cost more than the writes themselves.
            connection = session.connection()
            ids = reserve_ids(connection, STOCK, len(rows))
            for row, record_id in zip(rows, ids, strict=True):
                row["id"] = record_id
            bulk_insert(connection, STOCK, rows)
            item_ids = reserve_ids(connection, ITEMS, len(rows))
            items = [stock_item_values_from(r, r["id"]) for r in rows]
            for item, item_id in zip(items, item_ids, strict=True):
                item["id"] = item_id
            bulk_insert(connection, ITEMS, items)
            index_new_items(session, item_ids)
            apply_optouts(session, item_ids, new=True)  # opted-out addresses: unavailable
            report.added += len(new)
        for offset, f in enumerate((*changed, *reinstated), start=len(new)):
            record_id, _old, status, _withdrawn = existing[f.source_id]
            columns = _columns(f)
            if status is MirrorStatus.MIRRORED:  # keep the measured size of our copy
                columns.pop("width")
                columns.pop("height")
            session.execute(
                update(StockRecord)
                .where(StockRecord.id == record_id)
                .values(
                    **columns,
                    content_hash=hashes[f.source_id],
                    raw_sha256=raws[f.source_id],
                    updated_at=now,
                    ledger_seq=first_seq + offset,
                    ledger_leaf=None,
                    withdrawn_at=None,
                    withdrawn_reason="",
                )
            )
            _reindex(session, record_id)
        report.updated += len(changed)
        report.reinstated += len(reinstated)
        start = len(new) + len(changed) + len(reinstated)
        for offset, gone_record in enumerate(withdrawn, start=start):
            record_id = existing[gone_record.source_id][0]
            session.execute(
                update(StockRecord)
                .where(StockRecord.id == record_id)
                .values(
                    withdrawn_at=now,
                    withdrawn_reason=gone_record.reason[:200],
                    updated_at=now,
                    ledger_seq=first_seq + offset,
                    ledger_leaf=None,
                )
            )
            _reindex(session, record_id)
        report.withdrawn += len(withdrawn)


def _entry_payload(source: str, f: StockFields, content_sha256: str) -> dict[str, Any]:
    return {
        "source": source,
        "source_id": f.source_id,
        "title": f.title[:300],
        "rights_uri": f.rights_uri,
        "image_url": f.image_urls[0] if f.image_urls else "",
        "content_sha256": content_sha256,
    }


def _reindex(session: Session, record_id: int) -> None:
    """Make the record's search row say what the record is now (withdrawn or offered)."""
    record = session.get(StockRecord, record_id)
    assert record is not None
    session.refresh(record)
    values = stock_item_values(record)
    values.pop("created_at")
    # A taken-down item (an accepted claim) is never offered again, whatever the source says.
    values["available"] = case(
        (CatalogItem.taken_down_at.is_(None), values["available"]), else_=False
    )
    changed = session.scalars(
        update(CatalogItem)
        .where(CatalogItem.stock_id == record_id)
        .values(**values)
        .returning(CatalogItem.id)
    ).all()
    items_changed(session, list(changed))
    apply_optouts(session, list(changed))


def _rehashed_if_same(session: Session, record_id: int, f: StockFields, new_hash: str) -> bool:
    """True (and the stored fingerprint refreshed, with no ledger entry) when the record differs
    from what we hold only in the source's bookkeeping fields: records fingerprinted before
    bookkeeping fields were left out must not all count as changed once."""
    record = session.get(StockRecord, record_id)
    assert record is not None
    new = _columns(f)
    old = {name: getattr(record, name) for name in new}
    new["raw"], old["raw"] = _without_bookkeeping(new["raw"]), _without_bookkeeping(record.raw)
    if record.mirror_status is MirrorStatus.MIRRORED:  # our measured size, not the source's
        for name in ("width", "height"):
            new.pop(name), old.pop(name)
    if old != new:
        return False
    record.content_hash = new_hash
    return True
