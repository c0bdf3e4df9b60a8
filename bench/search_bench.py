"""Search benchmark: the tantivy engine end to end through `search.search()`, beside raw tantivy.

    python bench/search_bench.py [--records 1000000] [--backend sqlite postgresql]

Writes `--records` catalog rows straight into `catalog_items` (words, creators and techniques
drawn from the shared museum samples, as catalog_bench does), builds the index with
`marketplace search reindex`'s code (build time and size on disk), then runs five kinds of
query through the project's `search()` — text with facets, filters alone, a stop word alone,
text with min_width, and deep pages (page 50 by cursor) — each page checked against the
database as in production. The peer, measured in the same run on the same index, is tantivy
alone: the same query's top 48, exact count and the four small facets, with no database.
Targets (2 cores): p95 < 20 ms at 1M works with exact totals and facets; < 50 ms at 10M.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalog_bench import percentile, vocabulary
from common import database, print_table
from sqlalchemy import text

from marketplace import create_app
from marketplace.artists.terms import ALL_USES_MASK
from marketplace.catalog import search, search_index
from marketplace.catalog.models import CatalogItem, CatalogLicense, Orientation
from marketplace.db import bulk_insert, get_database
from marketplace.migrate import upgrade

SOURCES = ("cleveland", "met", "aic", "tate", "artists")
LICENSES = (CatalogLicense.PUBLIC_DOMAIN, CatalogLicense.LICENSED, CatalogLicense.CC0)


def rows(count: int, vocab: dict[str, list[Any]], seed: int = 2026) -> Any:
    """Catalog rows in batches of 20,000: 97% available, a third with images."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    batch: list[dict[str, Any]] = []
    for i in range(1, count + 1):
        words = [rng.choice(vocab["words"]) for _ in range(rng.randint(2, 6))]
        width = rng.choice((900, 1024, 1263, 1600, 2400, 3400))
        height = int(width * rng.choice((0.5, 0.66, 0.75, 1.0, 1.33, 1.5)))
        year = rng.choice(vocab["years"])
        licence = rng.choices(LICENSES, (0.8, 0.15, 0.05))[0]
        batch.append(
            {
                "id": i,
                "work_id": None,
                "stock_id": None,
                "available": rng.random() < 0.97,
                "title": " ".join(words).capitalize(),
                "description": " ".join(rng.choice(vocab["words"]) for _ in range(8)),
                "tags": ", ".join(rng.sample(vocab["types"], 1)),
                "creator": rng.choice(vocab["creators"])[:300],
                "institution": "Bench Museum",
                "source": rng.choice(SOURCES),
                "medium": rng.choice(vocab["techniques"])[:300],
                "year_start": year,
                "year_end": year + rng.choice((0, 0, 1, 5)),
                "width": width,
                "height": height,
                "orientation": Orientation.LANDSCAPE
                if width > height
                else (Orientation.SQUARE if width == height else Orientation.PORTRAIT),
                "license": licence,
                "price_minor": rng.choice((100, 300, 500, 1200))
                if licence is CatalogLicense.LICENSED
                else 0,
                "currency": "usd",
                "has_image": rng.random() < 0.33,
                "permitted_uses": ALL_USES_MASK,
                "created_at": now,
                "updated_at": now,
            }
        )
        if len(batch) == 20_000:
            yield batch
            batch = []
    if batch:
        yield batch


def kinds(words: list[str], per_kind: int, seed: int = 7) -> dict[str, list[dict[str, list[str]]]]:
    rng = random.Random(seed)

    def text() -> str:
        return " ".join(rng.choice(words).lower() for _ in range(rng.randint(1, 2)))

    out: dict[str, list[dict[str, list[str]]]] = {
        "text + facets": [],
        "filters only": [],
        "stop word only": [],
        "text + min_width": [],
    }
    for _ in range(per_kind):
        out["text + facets"].append({"q": [text()]})
        year = rng.randint(1400, 1850)
        out["filters only"].append(
            {
                "year_from": [str(year)],
                "year_to": [str(year + rng.randint(20, 200))],
                "orientation": [rng.choice(["landscape", "portrait", "square"])],
                "license": ["public_domain"],
            }
        )
        out["stop word only"].append({"q": [rng.choice(["the", "of the", "a", "and"])]})
        out["text + min_width"].append(
            {"q": [text()], "min_width": [str(rng.choice((1000, 2000)))]}
        )
    return out


PEER_FACETS = ("license", "source", "orientation", "has_image")


def peer(searcher: Any, query: search.SearchQuery) -> None:
    """Tantivy alone: top 48 (by score, or by the sort's fast field), exact count, 4 facets."""
    built = search_index.build_query(query)
    if query.effective_sort == "relevance":
        searcher.search(built, limit=48, count=True)
    else:
        searcher.search(built, limit=48, count=True, order_by_field="id")
    searcher.aggregate(
        built, {name: {"terms": {"field": name, "size": 12}} for name in PEER_FACETS}
    )


def timed(run: Any) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def load_and_build(name: str, session: Any, count: int, vocab: dict[str, list[Any]]) -> dict:
    started = time.perf_counter()
    for batch in rows(count, vocab):
        bulk_insert(session.connection(), CatalogItem.__table__, batch)
        session.commit()
    load_seconds = time.perf_counter() - started
    if name == "postgresql":
        session.execute(text("ANALYZE catalog_items"))
        session.commit()
    started = time.perf_counter()
    indexed, generation = search_index.rebuild(session)
    build_seconds = time.perf_counter() - started
    session.rollback()
    return {
        "load": load_seconds,
        "build": build_seconds,
        "indexed": indexed,
        "size": folder_size(generation),
    }


def bench_backend(
    name: str,
    url: str,
    count: int,
    workdir: Path,
    per_kind: int,
    *,
    reuse: bool = False,
    rebuild_index: bool = False,
) -> list[dict]:
    app = create_app(
        {"DATABASE_URL": url, "REDIS_URL": None, "TESTING": True, "SEARCH_ENGINE": "tantivy"},
        instance_path=str(workdir / f"instance-{name}-{count}"),
    )
    upgrade(get_database(app).engine)
    vocab = vocabulary()
    built_file = workdir / f"built-{name}-{count}.json"
    with app.app_context():
        session = get_database(app).sessions()
        if reuse and built_file.exists():
            built = json.loads(built_file.read_text())
            if rebuild_index:  # the rows kept, the index built again (a schema change)
                started = time.perf_counter()
                built["indexed"], generation = search_index.rebuild(session)
                built["build"] = time.perf_counter() - started
                built["size"] = folder_size(generation)
                session.rollback()
                built_file.write_text(json.dumps(built))
        else:
            built = load_and_build(name, session, count, vocab)
            built_file.write_text(json.dumps(built))
        load_seconds, build_seconds = built["load"], built["build"]
        indexed, size = built["indexed"], built["size"]
        started = time.perf_counter()
        columns = search_index.warm_columns(session)
        columns_seconds = time.perf_counter() - started
        session.rollback()
        print(
            f"{name}: {count:,} rows loaded in {load_seconds:.0f} s; {indexed:,} indexed in "
            f"{build_seconds:.0f} s ({indexed / build_seconds:,.0f} docs/s), "
            f"{size / 2**20:,.0f} MiB; columns loaded in {columns_seconds:.1f} s, "
            f"{columns.nbytes / 2**20:,.0f} MiB in memory",
            flush=True,
        )
        searcher = search_index.reader().searcher()
        out = []
        for kind, params_list in kinds(vocab["words"], per_kind).items():
            ours, theirs = [], []
            for params in params_list:
                query = search.parse_query(params)
                ours.append(timed(lambda q=query: search.search(session, q)))
                session.rollback()
                theirs.append(timed(lambda q=query: peer(searcher, q)))
            out.append(row(name, count, kind, ours, theirs))
        # Deep pages: page 50 by cursor, newest first and by relevance.
        for sort, q in (("newest", ""), ("relevance", rng_word(vocab))):
            params = {"sort": [sort], "limit": ["48"], **({"q": [q]} if q else {})}
            query = search.parse_query(params)
            ours, theirs = [], []
            order = {"order_by_field": "id"} if sort == "newest" else {}
            for page in range(50):
                started = time.perf_counter()
                result = search.search(session, query)
                elapsed = (time.perf_counter() - started) * 1000
                session.rollback()
                if page >= 40:
                    ours.append(elapsed)
                    built = search_index.build_query(query)
                    started = time.perf_counter()
                    searcher.search(built, limit=48, count=True, offset=page * 48, **order)
                    theirs.append((time.perf_counter() - started) * 1000)
                if not result.next_cursor:
                    break
                query = search.parse_query({**params, "cursor": [result.next_cursor]})
            if ours:
                out.append(row(name, count, f"pages 41-50, {sort}", ours, theirs))
        session.close()
        out[0]["index build"] = f"{build_seconds:.0f} s ({indexed / build_seconds:,.0f}/s)"
        out[0]["index size"] = f"{size / 2**20:,.0f} MiB"
        out[1]["index build"] = f"columns: {columns_seconds:.0f} s"
        out[1]["index size"] = f"columns: {columns.nbytes / 2**20:,.0f} MiB RAM"
    get_database(app).engine.dispose()
    return out


def rng_word(vocab: dict[str, list[Any]]) -> str:
    return str(random.Random(3).choice(vocab["words"])).lower()


def row(backend: str, count: int, kind: str, ours: list[float], theirs: list[float]) -> dict:
    p95, peer95 = percentile(ours, 0.95), percentile(theirs, 0.95)
    return {
        "backend": backend,
        "works": f"{count:,}",
        "query": kind,
        "search() p50 / p95": f"{statistics.median(ours):.1f} / {p95:.1f} ms",
        "tantivy alone p50 / p95": f"{statistics.median(theirs):.1f} / {peer95:.1f} ms",
        "ratio (p95)": f"{p95 / peer95:.1f}x" if peer95 else "-",
        "index build": "",
        "index size": "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--ten-million", action="store_true", help="10,000,000 works instead")
    parser.add_argument("--queries", type=int, default=60, help="queries per kind")
    parser.add_argument(
        "--backend", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the SQLite database and index here and reuse them on the next run",
    )
    parser.add_argument(
        "--rebuild-index", action="store_true", help="with --workdir: build the index again"
    )
    args = parser.parse_args()
    count = 10_000_000 if args.ten_million else args.records
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backend:
            if args.workdir is not None and backend == "sqlite":
                args.workdir.mkdir(parents=True, exist_ok=True)
                url = f"sqlite:///{args.workdir / f'bench-{count}.sqlite'}"
                table += bench_backend(
                    backend,
                    url,
                    count,
                    args.workdir,
                    args.queries,
                    reuse=True,
                    rebuild_index=args.rebuild_index,
                )
            else:
                with database(backend, Path(tmp)) as url:
                    table += bench_backend(backend, url, count, Path(tmp), args.queries)
            for line in table[-7:]:
                print(line, flush=True)
    print_table(f"Search (tantivy engine), {count:,} generated works:", table)


if __name__ == "__main__":
    main()
