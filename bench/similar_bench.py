"""Similar-works benchmark: the pHash index against a linear numpy scan, a million hashes.

    python bench/similar_bench.py [--entries 1000000] [--queries 300] [--radii 4 6 8 12 16]

Makes `--entries` pHashes (90% uniformly random, 10% in clusters of near-duplicates a few bits
apart, as re-encoded copies are), builds `marketplace.similarity.index.PHashIndex` from the
arrays, and times top-48 queries at each radius: half are entries with 1-4 bits flipped (there
is something to find), half random. The floor, measured in the same run on the same queries, is
numpy's brute force: popcount of XOR over the whole array, then the matches sorted
(`index.brute_force`); every index answer is checked against it. The ratio is index / floor
(below 1: the index is faster). Memory is the index's arrays.

With `--catalog N` (default 1,000,000; 0 skips it) it then measures the service the API and
the item pages call, on a migrated SQLite catalog of N mirrored stock items bulk-inserted with
the same hashes: loading and building the index from the database, and
`catalog.similar.similar_items` (top 8 at the default distance 12, with its per-query check for
changed items and its availability check of every hit), beside the same numpy floor.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import print_table
from sqlalchemy import insert, text

from marketplace import create_app
from marketplace.catalog import similar
from marketplace.catalog.models import (
    CatalogItem,
    CatalogLicense,
    MirrorStatus,
    Orientation,
    StockRecord,
)
from marketplace.db import get_database
from marketplace.migrate import upgrade
from marketplace.similarity.index import PHashIndex, brute_force

LIMIT = 48


def _hashes(rng: np.random.Generator, count: int) -> np.ndarray:
    clustered = count // 10
    random_part = rng.integers(0, 2**64, count - clustered, dtype=np.uint64, endpoint=False)
    centres = rng.integers(0, 2**64, max(1, clustered // 20), dtype=np.uint64, endpoint=False)
    copies = np.repeat(centres, 20)[:clustered]
    flips = np.zeros(clustered, dtype=np.uint64)
    for _ in range(4):  # up to four random bits flipped per copy
        bits = rng.integers(0, 64, clustered).astype(np.uint64)
        keep = rng.random(clustered) < 0.6
        flips ^= np.where(keep, np.uint64(1) << bits, np.uint64(0))
    return np.concatenate([random_part, copies ^ flips])


def _queries(rng: np.random.Generator, hashes: np.ndarray, count: int) -> list[int]:
    near = hashes[rng.integers(0, len(hashes), count // 2)].tolist()
    out = []
    for value in near:
        for bit in rng.choice(64, size=int(rng.integers(1, 5)), replace=False).tolist():
            value ^= 1 << bit
        out.append(value)
    out += rng.integers(0, 2**64, count - len(out), dtype=np.uint64, endpoint=False).tolist()
    return [int(q) for q in out]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--radii", type=int, nargs="+", default=[4, 6, 8, 12, 16])
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--catalog", type=int, default=1_000_000)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    hashes = _hashes(rng, args.entries)
    ids = rng.permutation(args.entries).astype(np.int64) + 1
    started = time.perf_counter()
    index = PHashIndex(ids, hashes)
    build = time.perf_counter() - started
    memory = index.nbytes
    queries = _queries(rng, hashes, args.queries)

    rows = []
    for radius in args.radii:
        timed_index, timed_floor, found = [], [], 0
        for query in queries:
            started = time.perf_counter()
            answer = index.query(query, radius, LIMIT)
            timed_index.append(time.perf_counter() - started)
            started = time.perf_counter()
            expected = brute_force(ids, hashes, query, radius, LIMIT)
            timed_floor.append(time.perf_counter() - started)
            assert answer == expected, (query, radius)
            found += len(answer)
        index_p50, floor_p50 = statistics.median(timed_index), statistics.median(timed_floor)
        index_p95, floor_p95 = _p95(timed_index), _p95(timed_floor)
        rows.append(
            {
                "max distance": str(radius),
                "index p50 / p95": f"{_ms(index_p50)} / {_ms(index_p95)}",
                "numpy brute force p50 / p95 (floor)": f"{_ms(floor_p50)} / {_ms(floor_p95)}",
                "ratio p50 / p95": f"{index_p50 / floor_p50:.3f} / {index_p95 / floor_p95:.3f}",
                "hits per query": f"{found / len(queries):.1f}",
            }
        )
    print_table(
        f"pHash index, {args.entries:,} hashes, {len(queries)} top-{LIMIT} queries per radius "
        f"(build {build:.2f} s from arrays, {memory / 1e6:.0f} MB; answers equal brute force)",
        rows,
    )

    if args.catalog:
        catalog_section(args.catalog, hashes[: args.catalog], queries)


def _bulk_load(session: Any, signed: list[int]) -> None:
    """N stock records and their catalog items, fast: one template row of each is written
    through SQLAlchemy (so every column has its stored form), then copied in SQL once per
    pHash from a scratch table. The templates stay (no pHash, so never in the index)."""
    template = len(signed) + 1
    session.execute(
        insert(StockRecord),
        {
            "id": template,
            "source": "bench",
            "source_id": "template",
            "title": "Record",
            "raw": {},
            "content_hash": "0" * 64,
            "mirror_status": MirrorStatus.MIRRORED,
        },
    )
    session.execute(
        insert(CatalogItem),
        {
            "id": template,
            "title": "Record",
            "source": "bench",
            "orientation": Orientation.UNKNOWN,
            "license": CatalogLicense.PUBLIC_DOMAIN,
            "currency": "eur",
            "has_image": True,
        },
    )
    session.execute(text("CREATE TEMP TABLE bench_phash (id INTEGER PRIMARY KEY, phash BIGINT)"))
    session.connection().exec_driver_sql(
        "INSERT INTO bench_phash VALUES (?, ?)", list(enumerate(signed, start=1))
    )

    def copy(table: str, columns: list[str], special: dict[str, str]) -> None:
        chosen = ", ".join(special.get(c, f"t.{c}") for c in columns)
        session.execute(
            text(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {chosen} "
                f"FROM bench_phash p, {table} t WHERE t.id = :template ORDER BY p.id"
            ),
            {"template": template},
        )

    copy(
        "stock_records",
        [c.name for c in StockRecord.__table__.columns],
        {"id": "p.id", "source_id": "CAST(p.id AS TEXT)", "phash": "p.phash"},
    )
    copy(
        "catalog_items",
        [c.name for c in CatalogItem.__table__.columns],
        {"id": "p.id", "stock_id": "p.id"},
    )
    session.commit()


def catalog_section(count: int, hashes: np.ndarray, queries: list[int]) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        app = create_app(
            {
                "DATABASE_URL": f"sqlite:///{Path(workdir) / 'similar.sqlite'}",
                "REDIS_URL": None,
                "TESTING": True,
            },
            instance_path=str(Path(workdir) / "instance"),
        )
        upgrade(get_database(app).engine)
        signed = hashes.view(np.int64).tolist()
        started = time.perf_counter()
        with app.app_context():
            session = get_database(app).sessions()
            _bulk_load(session, signed)
            loaded = time.perf_counter() - started
            started = time.perf_counter()
            similar.current_index(session)  # the first query's cost: load and build
            build = time.perf_counter() - started
            session.rollback()
            ids = np.arange(1, count + 1, dtype=np.int64)
            ours, floor = [], []
            for query in queries:
                started = time.perf_counter()
                similar.similar_items(session, query)
                ours.append(time.perf_counter() - started)
                session.rollback()
                started = time.perf_counter()
                brute_force(ids, hashes, query, similar.DEFAULT_MAX_DISTANCE, similar.STRIP_SIZE)
                floor.append(time.perf_counter() - started)
            session.close()
    p50, p95 = statistics.median(ours), _p95(ours)
    floor_p50, floor_p95 = statistics.median(floor), _p95(floor)
    print()
    print_table(
        f"Similar works service on SQLite, {count:,} mirrored stock items "
        f"(bulk load {loaded:.0f} s, not part of the figures)",
        [
            {
                "step": "load + build the index from the database (first query)",
                "project": f"{build:.2f} s",
                "floor": "-",
                "ratio": "-",
            },
            {
                "step": f"similar_items, top {similar.STRIP_SIZE} within "
                f"{similar.DEFAULT_MAX_DISTANCE}, p50 / p95",
                "project": f"{_ms(p50)} / {_ms(p95)}",
                "floor": f"{_ms(floor_p50)} / {_ms(floor_p95)} (numpy brute force)",
                "ratio": f"{p50 / floor_p50:.2f} / {p95 / floor_p95:.2f}",
            },
        ],
    )


if __name__ == "__main__":
    main()
