"""Loading a museum's open-access file into the catalog: streaming, idempotent, batched.

Each chunk of records commits on its own (so a run cut short can simply be run again), is
written with bulk statements, and is registered in the ledger with one `append_many` call.
A record whose mapped fields and raw source are unchanged is left alone; a changed one is
updated and its change recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select, text, update

from marketplace.catalog.models import CatalogItem, MirrorStatus, StockRecord
from marketplace.catalog.search import index_new_items
from marketplace.catalog.services import stock_item_values, stock_item_values_from
from marketplace.catalog.sources.base import Adapter, Malformed, RawRecord, Skipped, StockFields
from marketplace.db import bulk_insert, reserve_ids, transaction, utcnow
from marketplace.ledger import services as ledger
from marketplace.ledger.kinds import EntryKind

log = logging.getLogger(__name__)

CHUNK = 2000
ANALYZE_EVERY = 20_000  # records added between statistics refreshes (then doubling)
STOCK = Table("stock_records", StockRecord.metadata)
ITEMS = Table("catalog_items", CatalogItem.metadata)
MAX_REPORTED_PROBLEMS = 200


@dataclass
class IngestReport:
    source: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), first N

    @property
    def read(self) -> int:
        return (
            self.added
            + self.updated
            + self.unchanged
            + sum(self.skipped.values())
            + sum(self.malformed.values())
        )

    def note_malformed(self, problem: Malformed) -> None:
        self.malformed[problem.reason] += 1
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append((problem.line, problem.reason))

    def summary_lines(self) -> list[str]:
        lines = [
            f"{self.source}: {self.read} records read: {self.added} added, {self.updated} "
            f"updated, {self.unchanged} unchanged, {sum(self.skipped.values())} skipped, "
            f"{sum(self.malformed.values())} malformed"
        ]
        lines += [f"  skipped, {reason}: {n}" for reason, n in self.skipped.most_common()]
        lines += [f"  malformed, {reason}: {n}" for reason, n in self.malformed.most_common()]
        shown = self.problems[:20]
        lines += [f"  line {line}: {reason}" for line, reason in shown]
        if sum(self.malformed.values()) > len(shown):
            lines.append(f"  ... and {sum(self.malformed.values()) - len(shown)} more")
        return lines


_FIELD_NAMES = tuple(f.name for f in fields(StockFields))


def content_hash(record: StockFields) -> str:
    """Fingerprint of everything we store about a record: unchanged means nothing to write."""
    values = [getattr(record, name) for name in _FIELD_NAMES]  # shallow: no asdict deep copy
    data = json.dumps(
        values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(data.encode()).hexdigest()


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


def _mapped(adapter: Adapter, path: Path, report: IngestReport) -> Iterator[StockFields]:
    for item in adapter.read(path):
        if isinstance(item, Malformed):
            report.note_malformed(item)
            continue
        result = adapter.map(item) if isinstance(item, RawRecord) else item
        if isinstance(result, Malformed):
            report.note_malformed(result)
        elif isinstance(result, Skipped):
            report.skipped[result.reason] += 1
        else:
            yield result


def _chunks(records: Iterable[StockFields], size: int) -> Iterator[list[StockFields]]:
    chunk: dict[str, StockFields] = {}
    for record in records:
        chunk[record.source_id] = record  # a repeated id within a chunk: the last one wins
        if len(chunk) >= size:
            yield list(chunk.values())
            chunk = {}
    if chunk:
        yield list(chunk.values())


def ingest_file(
    adapter: Adapter,
    path: Path,
    *,
    chunk_size: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Load `path` with `adapter`; returns counts of what happened, with reasons."""
    report = IngestReport(source=adapter.name)
    analyzed_at = 0
    for chunk in _chunks(_mapped(adapter, path, report), chunk_size):
        _write_chunk(adapter, chunk, report)
        if progress is not None:
            progress(len(chunk))
        if report.added - analyzed_at >= max(ANALYZE_EVERY, analyzed_at):
            _refresh_statistics()  # the planner must know the tables grew (index, not scan)
            analyzed_at = report.added
    if report.added > analyzed_at:
        _refresh_statistics()
    log.info("ingest %s: %s", adapter.name, report.summary_lines()[0])
    return report


def _refresh_statistics() -> None:
    """Planner statistics for the tables a large ingest grows: without them PostgreSQL keeps
    believing the tables are empty and scans instead of using the indexes."""
    with transaction() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ANALYZE stock_records"))
            session.execute(text("ANALYZE catalog_items"))
        else:
            session.execute(text("PRAGMA optimize"))


def _write_chunk(adapter: Adapter, chunk: list[StockFields], report: IngestReport) -> None:
    hashes = {fields.source_id: content_hash(fields) for fields in chunk}
    with transaction() as session:
        existing = {
            source_id: (record_id, old_hash, status)
            for record_id, source_id, old_hash, status in session.execute(
                select(
                    StockRecord.id,
                    StockRecord.source_id,
                    StockRecord.content_hash,
                    StockRecord.mirror_status,
                ).where(
                    StockRecord.source == adapter.name,
                    StockRecord.source_id.in_(list(hashes)),
                )
            )
        }
        new = [f for f in chunk if f.source_id not in existing]
        changed = [
            f
            for f in chunk
            if f.source_id in existing and existing[f.source_id][1] != hashes[f.source_id]
        ]
        report.unchanged += len(chunk) - len(new) - len(changed)
        if not new and not changed:
            return
        entries = [
            ledger.NewEntry(
                EntryKind.STOCK_REGISTERED
                if f.source_id not in existing
                else EntryKind.STOCK_UPDATED,
                {},
                {
                    "source": adapter.name,
                    "source_id": f.source_id,
                    "title": f.title[:300],
                    "rights_uri": f.rights_uri,
                    "image_url": f.image_urls[0] if f.image_urls else "",
                    "content_sha256": hashes[f.source_id],
                },
            )
            for f in (*new, *changed)
        ]
        first_seq = ledger.append_many(session, entries).first_seq
        now = utcnow()
        if new:
            rows = [
                {
                    "source": adapter.name,
                    "source_id": f.source_id,
                    **_columns(f),
                    "content_hash": hashes[f.source_id],
                    "created_at": now,
                    "updated_at": now,
                    "ledger_seq": first_seq + i,
                    "mirror_status": MirrorStatus.PENDING,
                    "mirror_error": "",
                    "mirror_attempts": 0,
                    "derivatives_version": 0,
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
            report.added += len(new)
        for offset, f in enumerate(changed, start=len(new)):
            record_id, _old, status = existing[f.source_id]
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
                    updated_at=now,
                    ledger_seq=first_seq + offset,
                )
            )
            record = session.get(StockRecord, record_id)
            assert record is not None
            session.refresh(record)
            values = stock_item_values(record)
            values.pop("created_at")
            session.execute(
                update(CatalogItem).where(CatalogItem.stock_id == record_id).values(**values)
            )
            report.updated += 1
