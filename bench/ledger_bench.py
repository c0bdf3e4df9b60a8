"""Ledger benchmark: batched appends against their floor, proof latency, full verification.

    python bench/ledger_bench.py [--entries 1000000] [--batch 10000] [--runs 3]
                                 [--backend sqlite postgresql]

Prints a Markdown table for the README's performance section: medians of `--runs` runs, each on
a fresh database. Targets (issue #14, 2-core machine): appends >= 0.8x the floor and >= 50,000
entries/s on SQLite, >= 30,000 entries/s on PostgreSQL; inclusion proof p95 < 2 ms at 1M entries.

The append floor is measured in the same run on the same database, from the same generated
entries, in the same batches: the JSON of each entry (sorted keys, compact), a SHA-256 leaf hash
for each and a SHA-256 for each interior node (as many as the tree has: one per leaf), and one
`executemany` of plain INSERTs per batch into a table with a primary key and one secondary
index, then a commit. It does what any Merkle log on this database must do and nothing else: no
canonical-form checks, no stored nodes, no triggers, no lock, no signed checkpoint. The floor's
batches alternate with the ledger's (ledger first on even batches, floor first on odd ones), so
both meet the same load on a shared machine; each is timed by the clock and by this process's
CPU time (on SQLite all of the work; on PostgreSQL the client's side only). Proofs sit beside a
plain indexed read of one leaf; "verify all" beside reading every entry and hashing it once.
PostgreSQL is taken from BENCH_POSTGRES_URL (default: the local trust-auth server).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
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


class Floor:
    """The issue's floor (see the module docstring), one batch at a time."""

    def __init__(self, session) -> None:
        self.session = session
        sqlite = session.get_bind().dialect.name == "sqlite"
        blob, marker = ("BLOB", "?") if sqlite else ("BYTEA", "%s")
        connection = session.connection()
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        connection.exec_driver_sql(
            f"CREATE TABLE {FLOOR_TABLE} (seq BIGINT PRIMARY KEY, created_at VARCHAR(32), "
            f"kind VARCHAR(48), entry {blob}, leaf_hash {blob})"
        )
        connection.exec_driver_sql(f"CREATE INDEX ix_{FLOOR_TABLE}_kind ON {FLOOR_TABLE} (kind)")
        session.commit()
        self.insert = f"INSERT INTO {FLOOR_TABLE} VALUES ({', '.join([marker] * 5)})"

    def append(self, start: int, n: int) -> None:
        sha256, dumps = hashlib.sha256, json.dumps
        stamp = datetime.now(UTC).isoformat()
        rows, level = [], []
        for seq, e in zip(range(start, start + n), entries(start, n), strict=True):
            data = dumps(
                {
                    "v": 1,
                    "seq": seq,
                    "timestamp": stamp,
                    "kind": e.kind.value,
                    "subject": e.subject,
                    "payload": e.payload,
                },
                sort_keys=True,
                separators=(",", ":"),
            ).encode()
            leaf = sha256(b"\x00" + data).digest()
            level.append(leaf)
            rows.append((seq, stamp, e.kind.value, data, leaf))
        while len(level) > 1:  # one interior node per leaf, as the tree has
            level = [
                sha256(b"\x01" + level[i] + level[i + 1]).digest()
                for i in range(0, len(level) - 1, 2)
            ] + level[len(level) & ~1 :]
        self.session.connection().exec_driver_sql(self.insert, rows)
        self.session.commit()

    def drop(self) -> None:
        self.session.connection().exec_driver_sql(f"DROP TABLE {FLOOR_TABLE}")
        self.session.commit()


class Clock:
    """Seconds by the clock and by this process's CPU time, summed over timed blocks."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def time(self, step, *args) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        step(*args)
        self.wall += time.perf_counter() - t0
        self.cpu += time.process_time() - c0


def floor_hash_all(session) -> float:
    """Seconds to read every entry and hash it once with hashlib."""
    t0 = time.perf_counter()
    for (entry,) in session.execute(text("SELECT entry FROM ledger_entries ORDER BY seq")):
        hashlib.sha256(b"\x00" + bytes(entry)).digest()
    session.rollback()
    return time.perf_counter() - t0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def one_run(url: str, total: int, batch: int, instance: Path, verify: bool) -> dict[str, float]:
    """Append `total` entries to a fresh ledger, then time the floor and the proofs there."""
    app = create_app(
        {"DATABASE_URL": url, "REDIS_URL": None, "TESTING": True}, instance_path=str(instance)
    )
    upgrade(get_database(app).engine)
    session = get_database(app).sessions()
    figures: dict[str, float] = {}
    with app.app_context():
        floor, ours, theirs = Floor(session), Clock(), Clock()

        def append(start: int, n: int) -> None:
            with transaction(session):
                ledger.append_many(session, entries(start, n))

        for number, start in enumerate(range(0, total, batch)):
            n = min(batch, total - start)
            steps = [(ours, append), (theirs, floor.append)]
            for clock, step in steps if number % 2 == 0 else steps[::-1]:
                clock.time(step, start, n)
        floor.drop()
        figures["append"], figures["append cpu"] = total / ours.wall, total / ours.cpu
        figures["floor"], figures["floor cpu"] = total / theirs.wall, total / theirs.cpu

        size = ledger.tree_size(session)
        root = ledger.root_hash(session, size)
        rng = random.Random(7)
        inclusion, reads = [], []
        inclusion_cpu = []
        for seq in rng.sample(range(size), 500):
            t0, c0 = time.perf_counter(), time.process_time()
            proof = ledger.inclusion_proof(session, seq, size)
            inclusion.append((time.perf_counter() - t0) * 1000)
            inclusion_cpu.append((time.process_time() - c0) * 1000)
            t0 = time.perf_counter()
            leaf = session.execute(
                text("SELECT leaf_hash FROM ledger_entries WHERE seq = :s"), {"s": seq}
            ).scalar_one()
            reads.append((time.perf_counter() - t0) * 1000)
            assert merkle.verify_inclusion(bytes(leaf), seq, size, proof, root)
        published = list(range(batch, size, batch))
        consistency = []
        for old in rng.choices(published, k=200):
            t0 = time.perf_counter()
            proof = ledger.consistency_proof(session, old, size)
            consistency.append((time.perf_counter() - t0) * 1000)
            old_root = ledger.get_checkpoint(session, old).root_hash
            assert merkle.verify_consistency(old, size, proof, old_root, root)
        session.rollback()
        figures |= {
            "inclusion p50": statistics.median(inclusion),
            "inclusion p95": percentile(inclusion, 0.95),
            "inclusion cpu p95": percentile(inclusion_cpu, 0.95),
            "leaf read p50": statistics.median(reads),
            "consistency p95": percentile(consistency, 0.95),
        }
        if verify:
            figures["hash all"] = floor_hash_all(session)
            t0 = time.perf_counter()
            report = verify_all(session)
            figures["verify all"] = time.perf_counter() - t0
            assert report.ok, report.summary()
    session.close()
    get_database(app).engine.dispose()
    return figures


def ratio(ours: float, floor: float) -> str:
    return f"{ours / floor:.2f}x" if floor else "-"


def bench_backend(name: str, total: int, batch: int, runs: int, workdir: Path) -> dict[str, str]:
    results = []
    for run in range(runs):
        with database(name, workdir) as url:
            results.append(
                one_run(url, total, batch, workdir / f"instance-{name}", verify=run == runs - 1)
            )
        figures = ", ".join(f"{key} {value:,.2f}" for key, value in results[-1].items())
        print(f"{name} run {run + 1}/{runs}: {figures}", file=sys.stderr, flush=True)

    def median(key: str) -> float:
        return statistics.median(r[key] for r in results)

    append, floor = median("append"), median("floor")
    last = results[-1]
    return {
        "backend": name,
        "entries": f"{total:,}",
        "append": f"{append:,.0f}/s",
        "floor": f"{floor:,.0f}/s",
        "append / floor": f"{statistics.median(r['append'] / r['floor'] for r in results):.2f}",
        "by CPU time: append, floor, ratio": f"{median('append cpu'):,.0f}/s, "
        f"{median('floor cpu'):,.0f}/s, "
        f"{statistics.median(r['append cpu'] / r['floor cpu'] for r in results):.2f}",
        "inclusion p50 / p95": f"{median('inclusion p50'):.2f} / {median('inclusion p95'):.2f} ms",
        "inclusion p95 by CPU time": f"{median('inclusion cpu p95'):.2f} ms",
        "leaf read p50": f"{median('leaf read p50'):.2f} ms",
        "consistency p95": f"{median('consistency p95'):.2f} ms",
        "verify all": f"{last['verify all']:.1f} s",
        "read + hash floor": f"{last['hash all']:.1f} s "
        f"({ratio(last['verify all'], last['hash all'])})",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--backend", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backend:
            rows.append(bench_backend(backend, args.entries, args.batch, args.runs, Path(tmp)))
    print_table(
        f"Ledger, {args.entries:,} entries in batches of {args.batch:,}, "
        f"medians of {args.runs} runs:",
        rows,
    )


if __name__ == "__main__":
    main()
