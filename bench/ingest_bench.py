"""Ingest benchmark: the bulk path against a floor measured in the same run, and the re-ingest.

    nice -n 5 python bench/ingest_bench.py [--records 1000000] [--backend sqlite postgresql]

Generates Cleveland-API-shaped JSON lines (`catalog_bench.generate`) and, per backend, loads
them three ways into fresh migrated databases:

* ours: `marketplace ingest cleveland FILE`'s code path (the bulk path, chosen by the file's
  size): adapter mapping in a second process, raw-line hashes, one ledger entry per chunk,
  secondary indexes built after the load. The search index (tantivy) rebuild that follows a
  large load runs as a job; it is timed on its own.
* floor: one process, orjson, the same rows into the same tables (stock_records,
  catalog_items, and SQLite's FTS5 rows), secondary indexes dropped before and built after
  the load; no adapter (fields picked straight from the JSON), no hashing, no ledger.
* the monthly re-ingest of the same, unchanged file into our loaded database.

Target (issue #14): >= 20,000 records/s on SQLite and >= 0.8x the floor; re-ingest < 60 s.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import orjson
from catalog_bench import generate
from common import database, print_table
from sqlalchemy import text

from marketplace import create_app
from marketplace.catalog import bulk, search_index
from marketplace.catalog.ingest import ingest_file
from marketplace.catalog.sources import get_adapter
from marketplace.db import get_database, reserve_ids, transaction, utcnow
from marketplace.migrate import upgrade


def make_app(url: str, workdir: Path, name: str):  # type: ignore[no-untyped-def]
    app = create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": None,
            "TESTING": True,
            # The rebuild job after a large load is timed apart from the load.
            "SEARCH_ENGINE": "database",
        },
        instance_path=str(workdir / f"instance-{name}"),
    )
    upgrade(get_database(app).engine)
    return app


def ours(url: str, source_file: Path, workdir: Path, backend: str) -> dict[str, float]:
    app = make_app(url, workdir, f"ours-{backend}")
    with app.app_context():
        started = time.perf_counter()
        report = ingest_file(get_adapter("cleveland"), source_file, bulk=True)
        load = time.perf_counter() - started
        with transaction() as session:
            started = time.perf_counter()
            indexed, _ = search_index.rebuild(session, app)
            reindex = time.perf_counter() - started
        started = time.perf_counter()
        again = ingest_file(get_adapter("cleveland"), source_file, bulk=True)
        reingest = time.perf_counter() - started
        assert again.added == again.updated == 0, again.summary_lines()[0]
        with get_database(app).engine.connect() as connection:
            entries = int(connection.scalar(text("SELECT count(*) FROM ledger_entries")) or 0)
    get_database(app).engine.dispose()
    return {
        "added": report.added,
        "read": report.read,
        "load": load,
        "reindex": reindex,
        "indexed": indexed,
        "reingest": reingest,
        "entries": entries,
    }


def floor(url: str, source_file: Path, workdir: Path, backend: str) -> dict[str, float]:
    """Records/s for the same rows written the plainest fast way (see the docstring)."""
    app = make_app(url, workdir, f"floor-{backend}")
    with app.app_context():
        started = time.perf_counter()
        dropped = bulk.drop_indexes()
        count = 0
        batch: list[tuple[dict, bytes]] = []

        def flush() -> None:
            with transaction() as session:
                connection = session.connection()
                now = bulk._driver(connection, bulk.STOCK, utcnow())
                ids = reserve_ids(connection, bulk.STOCK, len(batch))
                stock, items = [], []
                for record_id, (record, line) in zip(ids, batch, strict=True):
                    web = (record.get("images") or {}).get("web") or {}
                    width, height = int(web.get("width") or 0), int(web.get("height") or 0)
                    creators = "; ".join(c.get("description", "") for c in record["creators"])
                    stock.append(
                        (
                            record_id, "cleveland", str(record["id"]), record["title"], creators,
                            record["creation_date"], record["creation_date_earliest"],
                            record["creation_date_latest"], record["technique"],
                            record["measurements"], "Cleveland Museum of Art", record["url"],
                            orjson.dumps([web.get("url")]).decode(), "Public domain.",
                            "https://creativecommons.org/publicdomain/zero/1.0/", "",
                            record["type"], line.decode(), width, height, "", now, now,
                            "pending", "", 0, 0, "",
                        )
                    )  # fmt: skip
                item_ids = reserve_ids(connection, bulk.ITEMS, len(batch))
                for item_id, row in zip(item_ids, stock, strict=True):
                    items.append(
                        (
                            item_id, row[0], True, row[3], "", row[16], row[4][:300], row[10],
                            "cleveland", row[8][:300], row[6], row[7], row[18], row[19],
                            "landscape" if row[18] > row[19] else "portrait", "public_domain",
                            0, "USD", False, 255, now, now,
                        )
                    )  # fmt: skip
                bulk._insert(connection, bulk.STOCK, FLOOR_STOCK, stock)
                bulk._insert(connection, bulk.ITEMS, bulk._NEW_ITEM, items)
                if connection.dialect.name == "sqlite":
                    connection.exec_driver_sql(
                        "INSERT INTO catalog_fts(rowid, title, description, tags, creator, "
                        "institution, medium) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [(i[0], i[3], i[4], i[5], i[6], i[7], i[9]) for i in items],
                    )
            batch.clear()

        with source_file.open("rb") as lines:
            for line in lines:
                record = orjson.loads(line)
                if record.get("share_license_status") != "CC0":
                    continue
                batch.append((record, line.rstrip(b"\n")))
                if len(batch) == bulk.BULK_CHUNK:
                    count += len(batch)
                    flush()
        if batch:
            count += len(batch)
            flush()
        bulk.create_indexes(dropped)
        elapsed = time.perf_counter() - started
    get_database(app).engine.dispose()
    return {"rows": count, "seconds": elapsed}


FLOOR_STOCK = (
    "id", "source", "source_id", "title", "creator", "date_text", "year_start", "year_end",
    "medium", "dimensions", "institution", "page_url", "image_urls", "rights_statement",
    "rights_uri", "description", "tags", "raw", "width", "height", "content_hash",
    "created_at", "updated_at", "mirror_status", "mirror_error", "mirror_attempts",
    "derivatives_version", "withdrawn_reason",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--backend", nargs="+", default=["sqlite"], choices=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    rows = []
    with TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        source_file = workdir / "cleveland.jsonl"
        generate(source_file, args.records)
        for backend in args.backend:
            with database(backend, workdir) as url:
                floor_run = floor(url, source_file, workdir, backend)
            with database(backend, workdir) as url:
                run = ours(url, source_file, workdir, backend)
            print(backend, floor_run, run, flush=True)
            rate = run["read"] / run["load"]
            floor_rate = args.records / floor_run["seconds"]
            rows.append(
                {
                    "backend": backend,
                    "records read (loaded)": f"{int(run['read']):,} ({int(run['added']):,})",
                    "bulk ingest": f"{rate:,.0f}/s ({run['load']:.1f} s)",
                    "floor (orjson, same tables + FTS, indexes after, no ledger)": (
                        f"{floor_rate:,.0f}/s ({floor_run['seconds']:.1f} s)"
                    ),
                    "ratio": f"{rate / floor_rate:.2f}x",
                    "ledger entries": f"{int(run['entries']):,}",
                    "search reindex job": f"{run['reindex']:.1f} s",
                    "unchanged re-ingest": f"{run['reingest']:.1f} s",
                }
            )
    print_table(
        f"Ingest, {args.records:,} generated Cleveland records (93% open access), "
        "records read per second:",
        rows,
    )


if __name__ == "__main__":
    main()
