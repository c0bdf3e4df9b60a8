"""Ledger benchmark: batched appends, inclusion-proof latency and full verification.

    python bench/ledger_bench.py [--entries 1000000] [--batch 10000] [--backend sqlite postgresql]

Prints a Markdown table for the README's performance section. Targets (2-core machine):
>= 20,000 entries/s batched, inclusion proof < 2 ms, full verify of 1M entries < 60 s.

Each figure sits beside a floor measured in the same run on the same database, and their ratio:
appends beside plain SQL inserts of the same rows into an unindexed table (no hashing, no
tree, no checkpoint); proofs beside a plain indexed read of the leaf; "verify all" beside
reading every entry and SHA-256 hashing it with hashlib (the least any verifier must do).
PostgreSQL is taken from BENCH_POSTGRES_URL (default: the local trust-auth server).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from common import database, print_table
from sqlalchemy import text

from marketplace import create_app
from marketplace.db import get_database, transaction
from marketplace.ledger import merkle
from marketplace.ledger import services as ledger
from marketplace.ledger.audit import verify_all
from marketplace.ledger.kinds import EntryKind
from marketplace.migrate import upgrade

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def entries(start: int, count: int):
    for i in range(start, start + count):
        yield ledger.NewEntry(
            EntryKind.STOCK_REGISTERED,
            {"stock": i},
            {
                "source": "cleveland",
                "record": f"1953.{i}",
                "title": f"Landscape with figures, study {i}",
                "rights": "https://creativecommons.org/publicdomain/zero/1.0/",
                "sha256": f"{i:064x}",
            },
        )


FLOOR_TABLE = "bench_floor_entries"


def floor_append(session, total: int, batch: int) -> float:
    """Median rows/s of plain SQL inserts of the same entries (the database's own floor)."""
    session.execute(text(f"DROP TABLE IF EXISTS {FLOOR_TABLE}"))
    session.execute(
        text(
            f"CREATE TABLE {FLOOR_TABLE} (seq BIGINT PRIMARY KEY, kind VARCHAR(48), "
            "entry BYTEA, leaf_hash BYTEA)".replace(
                "BYTEA", "BLOB" if session.bind.dialect.name == "sqlite" else "BYTEA"
            )
        )
    )
    session.commit()
    insert = text(f"INSERT INTO {FLOOR_TABLE} VALUES (:seq, :kind, :entry, :leaf)")
    rates = []
    for start in range(0, total, batch):
        n = min(batch, total - start)
        rows = [
            {"seq": i, "kind": e.kind.value, "entry": json.dumps(e.payload).encode(), "leaf": b""}
            for i, e in zip(range(start, start + n), entries(start, n), strict=True)
        ]
        t0 = time.perf_counter()
        session.execute(insert, rows)
        session.commit()
        rates.append(n / (time.perf_counter() - t0))
    session.execute(text(f"DROP TABLE {FLOOR_TABLE}"))
    session.commit()
    return statistics.median(rates)


def floor_hash_all(session) -> float:
    """Seconds to read every entry and hash it once with hashlib."""
    t0 = time.perf_counter()
    for (entry,) in session.execute(text("SELECT entry FROM ledger_entries ORDER BY seq")):
        hashlib.sha256(b"\x00" + bytes(entry)).digest()
    session.rollback()
    return time.perf_counter() - t0


def ratio(ours: float, floor: float) -> str:
    return f"{ours / floor:.1f}x" if floor else "-"


def bench_backend(name: str, url: str, total: int, batch: int, workdir: Path) -> dict[str, str]:
    app = create_app(
        {"DATABASE_URL": url, "REDIS_URL": None, "TESTING": True},
        instance_path=str(workdir / f"instance-{name}"),
    )
    upgrade(get_database(app).engine)
    session = get_database(app).sessions()
    rates = []
    started = time.perf_counter()
    with app.app_context():
        for start in range(0, total, batch):
            n = min(batch, total - start)
            t0 = time.perf_counter()
            with transaction(session):
                ledger.append_many(session, entries(start, n))
            rates.append(n / (time.perf_counter() - t0))
        append_seconds = time.perf_counter() - started

        size = ledger.tree_size(session)
        root = ledger.root_hash(session, size)
        rng = random.Random(7)
        latencies, reads = [], []
        for seq in rng.sample(range(size), 300):
            t0 = time.perf_counter()
            proof = ledger.inclusion_proof(session, seq, size)
            latencies.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            leaf = session.execute(
                text("SELECT leaf_hash FROM ledger_entries WHERE seq = :s"), {"s": seq}
            ).scalar_one()
            reads.append((time.perf_counter() - t0) * 1000)
            assert merkle.verify_inclusion(bytes(leaf), seq, size, proof, root)
        session.rollback()
        hash_seconds = floor_hash_all(session)

        t0 = time.perf_counter()
        report = verify_all(session)
        verify_seconds = time.perf_counter() - t0
        assert report.ok, report.summary()
        insert_floor = floor_append(session, total, batch)
    session.close()
    get_database(app).engine.dispose()
    latencies.sort()
    append_rate, proof_p50 = statistics.median(rates), statistics.median(latencies)
    read_p50 = statistics.median(reads)
    return {
        "backend": name,
        "entries": f"{size:,}",
        "append (median batch)": f"{append_rate:,.0f}/s",
        "plain INSERT floor": f"{insert_floor:,.0f}/s ({ratio(insert_floor, append_rate)})",
        "append (overall)": f"{size / append_seconds:,.0f}/s",
        "proof p50": f"{proof_p50:.2f} ms",
        "leaf read floor": f"{read_p50:.2f} ms ({ratio(proof_p50, read_p50)})",
        "proof p95": f"{latencies[int(len(latencies) * 0.95)]:.2f} ms",
        "verify all": f"{verify_seconds:.1f} s",
        "read + hashlib floor": f"{hash_seconds:.1f} s ({ratio(verify_seconds, hash_seconds)})",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument(
        "--backend", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for backend in args.backend:
            with database(backend, workdir) as url:
                rows.append(bench_backend(backend, url, args.entries, args.batch, workdir))
    print_table(f"Ledger, {args.entries:,} entries in batches of {args.batch:,}:", rows)


if __name__ == "__main__":
    main()
