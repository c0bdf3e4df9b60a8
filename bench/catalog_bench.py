"""Catalog benchmark: ingest rate, search latency (text, filters, facets), deep pages.

    python bench/catalog_bench.py [--records 1000000] [--backend sqlite postgresql]

Generates Cleveland-API-shaped records whose titles, creators, dates, techniques and types are
drawn from the real samples in ../shared/data (a small built-in vocabulary when absent), writes
them as JSON lines, loads them with `marketplace ingest cleveland`'s code path, then runs 200
fixed queries through the search service. Prints a Markdown table for the README.
Targets (2 cores): ingest >= 20,000 records/s on SQLite; search p95 < 50 ms at 1M, facets
included. PostgreSQL comes from BENCH_POSTGRES_URL (default: the local trust-auth server).

Floors from the same run and database, with the ratio: ingest beside reading and parsing the same
file and inserting five of its columns with plain SQL (no mapping, hashing, ledger or index);
text queries beside the backend's own full-text engine answering the same words alone (FTS5
MATCH / tsvector @@, top 48 by its rank, no filters, facets or joins).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

from common import database, print_table
from sqlalchemy import text

from marketplace import create_app
from marketplace.catalog import search
from marketplace.catalog.ingest import ingest_file
from marketplace.catalog.sources import get_adapter
from marketplace.db import get_database
from marketplace.migrate import upgrade

SHARED = Path(
    os.environ.get("MARKETPLACE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")
)
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WORD = re.compile(r"[A-Za-zÀ-ÿ]{3,}")


def vocabulary() -> dict[str, list]:
    """Titles' words, creators, techniques, types and years as they occur in the samples."""
    titles, creators, techniques, types, years = [], [], [], [], []
    data = SHARED / "data"
    if data.exists():
        for name in ("tate_artworks.jsonl", "cmoa_objects.jsonl", "aic_artworks.jsonl"):
            with (data / name).open(encoding="utf-8") as handle:
                for line in handle:
                    record = json.loads(line)
                    titles.append(record.get("title") or "")
                    creator = record.get("all_artists") or record.get("artist_title") or ""
                    if not creator and record.get("creator"):
                        creator = record["creator"][0].get("full_name", "")
                    creators.append(creator)
                    techniques.append(record.get("medium") or record.get("medium_display") or "")
                    year = (record.get("dateRange") or {}).get("startYear") or record.get(
                        "date_start"
                    )
                    if isinstance(year, int):
                        years.append(year)
        cleveland = json.loads(
            (data / "api_samples/clevelandmuseum/handle_response_data.json").read_text()
        )["data"]
        for record in cleveland:
            titles.append(record["title"])
            techniques.append(record.get("technique") or "")
            types.append(record.get("type") or "")
            creators.extend(c["description"] for c in record.get("creators") or [])
            if record.get("creation_date_earliest"):
                years.append(record["creation_date_earliest"])
        with (data / "nga_constituents.csv").open(encoding="utf-8") as handle:
            creators.extend(row["forwarddisplayname"] for row in csv.DictReader(handle))
    words = [w for t in titles for w in WORD.findall(t)] or ["harbour", "portrait", "landscape"]
    return {
        "words": words,
        "creators": [c.strip() for c in creators if c.strip()] or ["Unknown artist"],
        "techniques": [t.strip().lower() for t in techniques if t.strip()] or ["oil on canvas"],
        "types": [t for t in types if t] or ["Painting", "Drawing", "Print"],
        "years": years or list(range(1500, 1950)),
    }


def generate(path: Path, count: int, seed: int = 2026) -> list[str]:
    """Write `count` records as Cleveland API JSON lines; returns words for queries."""
    vocab = vocabulary()
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            words = [rng.choice(vocab["words"]) for _ in range(rng.randint(2, 6))]
            year = rng.choice(vocab["years"])
            width = rng.choice((900, 1024, 1263, 1600, 2400, 3400))
            height = int(width * rng.choice((0.5, 0.66, 0.75, 1.0, 1.33, 1.5)))
            accession = f"{1900 + i % 120}.{i}"
            status = "CC0" if rng.random() < 0.93 else "Copyrighted"
            record = {
                "id": 10_000_000 + i,
                "accession_number": accession,
                "title": " ".join(words).capitalize(),
                "creation_date": str(year),
                "creation_date_earliest": year,
                "creation_date_latest": year + rng.choice((0, 0, 1, 5, 10)),
                "creators": [{"description": rng.choice(vocab["creators"]), "role": "artist"}],
                "technique": rng.choice(vocab["techniques"]),
                "type": rng.choice(vocab["types"]),
                "measurements": f"{rng.randint(5, 200)} x {rng.randint(5, 200)} cm",
                "url": f"https://clevelandart.org/art/{accession}",
                "share_license_status": status,
                "copyright": None,
                "images": {
                    "web": {
                        "url": f"https://openaccess-cdn.clevelandart.org/{accession}/{accession}_web.jpg",
                        "width": str(width),
                        "height": str(height),
                    },
                },
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return vocab["words"]


def queries(words: list[str], count: int = 200, seed: int = 7) -> list[dict[str, list[str]]]:
    """A fixed mix: text alone, text + filters, filters alone, sorts."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        params: dict[str, list[str]] = {}
        kind = i % 4
        if kind in (0, 1, 3):
            params["q"] = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 2)))]
        if kind in (1, 2):
            params["year_from"] = [str(rng.randint(1400, 1800))]
            params["year_to"] = [str(int(params["year_from"][0]) + rng.randint(20, 200))]
        if kind == 2:
            params["orientation"] = [rng.choice(["landscape", "portrait", "square"])]
            params["license"] = ["public_domain"]
        if kind == 3:
            params["sort"] = [rng.choice(["newest", "price_asc", "relevance"])]
            params["min_width"] = [str(rng.choice((1000, 2000)))]
        out.append(params)
    return out


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


FLOOR_TABLE = "bench_floor_records"
FTS_FLOOR = {
    "sqlite": text(
        "SELECT rowid FROM catalog_fts WHERE catalog_fts MATCH :words ORDER BY rank LIMIT 48"
    ),
    "postgresql": text(
        "SELECT id FROM catalog_items WHERE search_vector @@ to_tsquery("
        "'marketplace_text'::regconfig, :words) ORDER BY ts_rank_cd(search_vector, to_tsquery("
        "'marketplace_text'::regconfig, :words)) DESC LIMIT 48"
    ),
}


def floor_ingest(session, source_file: Path) -> float:
    """Records/s to parse the file and insert five columns of each with plain SQL."""
    session.execute(text(f"DROP TABLE IF EXISTS {FLOOR_TABLE}"))
    session.execute(
        text(
            f"CREATE TABLE {FLOOR_TABLE} (id BIGINT PRIMARY KEY, title TEXT, creator TEXT, "
            "year INTEGER, url TEXT)"
        )
    )
    session.commit()
    insert = text(f"INSERT INTO {FLOOR_TABLE} VALUES (:id, :title, :creator, :year, :url)")
    count, rows = 0, []
    t0 = time.perf_counter()
    with source_file.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            rows.append(
                {
                    "id": record["id"],
                    "title": record["title"],
                    "creator": record["creators"][0]["description"],
                    "year": record["creation_date_earliest"],
                    "url": record["images"]["web"]["url"],
                }
            )
            if len(rows) == 5000:
                session.execute(insert, rows)
                session.commit()
                count, rows = count + len(rows), []
    if rows:
        session.execute(insert, rows)
        session.commit()
        count += len(rows)
    elapsed = time.perf_counter() - t0
    session.execute(text(f"DROP TABLE {FLOOR_TABLE}"))
    session.commit()
    return count / elapsed


def fts_words(backend: str, q: str) -> str:
    words = WORD.findall(q.lower())
    if backend == "postgresql":
        return " & ".join(words)
    return " AND ".join(f'"{w}"' for w in words)


def ratio(ours: float, floor: float) -> str:
    return f"{ours / floor:.1f}x" if floor else "-"


def bench_backend(name: str, url: str, source_file: Path, words: list[str], workdir: Path) -> dict:
    app = create_app(
        {"DATABASE_URL": url, "REDIS_URL": None, "TESTING": True},
        instance_path=str(workdir / f"instance-{name}"),
    )
    upgrade(get_database(app).engine)
    with app.app_context():
        started = time.perf_counter()
        report = ingest_file(get_adapter("cleveland"), source_file, chunk_size=5000)
        ingest_seconds = time.perf_counter() - started
        loaded = report.added
        session = get_database(app).sessions()
        latencies, text_ours, text_floor = [], [], []
        for params in queries(words):
            query = search.parse_query(params)
            t0 = time.perf_counter()
            search.search(session, query)
            elapsed = (time.perf_counter() - t0) * 1000
            latencies.append(elapsed)
            session.rollback()
            if "q" in params and len(params) == 1:
                text_ours.append(elapsed)
                t0 = time.perf_counter()
                session.execute(FTS_FLOOR[name], {"words": fts_words(name, params["q"][0])}).all()
                text_floor.append((time.perf_counter() - t0) * 1000)
                session.rollback()
        # Deep pages: follow the cursor 50 pages into a broad query.
        query = search.parse_query({"sort": ["newest"], "limit": ["48"]})
        first = deep = 0.0
        for page in range(50):
            t0 = time.perf_counter()
            result = search.search(session, query, with_facets=False)
            elapsed = (time.perf_counter() - t0) * 1000
            first = elapsed if page == 0 else first
            deep = elapsed
            query = search.parse_query(
                {"sort": ["newest"], "limit": ["48"], "cursor": [result.next_cursor or ""]}
            )
        ingest_floor = floor_ingest(session, source_file)
        session.close()
    get_database(app).engine.dispose()
    ingest_rate = loaded / ingest_seconds
    ours_text, floor_text = statistics.median(text_ours), statistics.median(text_floor)
    return {
        "backend": name,
        "records": f"{loaded:,}",
        "ingest": f"{ingest_rate:,.0f}/s",
        "parse + INSERT floor": f"{ingest_floor:,.0f}/s ({ratio(ingest_floor, ingest_rate)})",
        "text query p50": f"{ours_text:.1f} ms",
        "FTS engine floor": f"{floor_text:.1f} ms ({ratio(ours_text, floor_text)})",
        "search p50": f"{statistics.median(latencies):.1f} ms",
        "search p95": f"{percentile(latencies, 0.95):.1f} ms",
        "page 1 / page 50": f"{first:.1f} / {deep:.1f} ms",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--backend", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        source_file = workdir / "cleveland.jsonl"
        words = generate(source_file, args.records)
        for backend in args.backend:
            with database(backend, workdir) as url:
                rows.append(bench_backend(backend, url, source_file, words, workdir))
            print(rows[-1], flush=True)  # each backend as it finishes (a 1M run is long)
    print_table(
        f"Catalog, {args.records:,} generated records (93% open access), 200 queries:", rows
    )


if __name__ == "__main__":
    main()
