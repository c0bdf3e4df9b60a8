"""Compliance benchmark: a 1,000,000-row manifest against 1,000,000 opt-out records.

    python bench/compliance_bench.py [--rows 1000000] [--records 1000000] [--phash-records ...]

The registry is built in memory the way the job builds it (`optout.snapshot.build` for the
address rules, `classifier.HashRules` for file hashes and pHashes): 40% exact URLs, 10%
domains, 5% URL prefixes, 25% SHA-256 and 20% pHash rules. The manifest is LAION-shaped: a URL
and a SHA-256 per row; 10% of the URLs are opted out exactly, 5% by domain, 2% by prefix, 5%
of the hashes are registered; a second manifest holds a pHash per row, 5% of them 1-4 bits
from a registered one. Timings are medians over batches of 20,000 rows (the job's batch).

- **exact checks**: `classifier.classify` on URL + SHA-256 batches (URL parsing included);
  floor: the same lookups in plain Python sets and dicts (the same URL parser, the host's
  suffixes in a set of domains, prefixes per host, hashes in a set), same run, same rows.
- **pHash near-duplicates** within 6 bits: `classify` on pHash batches against `--phash-records`
  pHash rules (multi-index hashing, batched); floor: numpy brute force (popcount of XOR over
  every rule) per row, timed on 200 rows.
- **whole job path**: the manifest written as CSV, then read (`ManifestReader`), classified
  and written as Parquet by the local engine (`engine.run`), as the job and the CLI do.

Times are this process's CPU time (`time.process_time`), not wall time: the bench machine is
shared, and a neighbour's load would count against us and the floor unevenly. Peak memory is
the process's peak RSS after each step (it only grows): the registry, the whole job path, our
runs, then the floor's sets (built last, so their growth shows apart).
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from common import print_table

from marketplace.artists.terms import PERMITTED_USES
from marketplace.compliance import engine
from marketplace.compliance.classifier import (
    RESULT_SCHEMA,
    HashRules,
    RegistrySnapshot,
    classify,
    empty_catalog,
)
from marketplace.compliance.manifest import BATCH_SCHEMA, ManifestReader
from marketplace.optout import snapshot as address_snapshot
from marketplace.optout.urls import BadUrl, host_suffixes, normalize_url
from marketplace.similarity.index import brute_force

BATCH = 20_000
USES = ["generative_training"]
WHEN = 1_764_000_000_000_000


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _digest(n: int) -> str:
    return hashlib.sha256(n.to_bytes(8, "little")).hexdigest()


def _counts(records: int) -> tuple[int, int, int, int]:
    urls, domains, prefixes = int(records * 0.40), int(records * 0.10), int(records * 0.05)
    return urls, domains, prefixes, records - urls - domains - prefixes - int(records * 0.20)


def _address_rows(records: int) -> Iterator[tuple[int, str, str, str, int, None]]:
    """The address rules as the registry's rows (id, kind, value, host, created, removed)."""
    urls, domains, prefixes, _ = _counts(records)
    rule = 0
    for i in range(urls):
        rule += 1
        host = f"site{i % 50_000}.example"
        yield (rule, "url", f"{host}/images/{i}.jpg", host, WHEN, None)
    for i in range(domains):
        rule += 1
        yield (rule, "domain", f"artist{i}.example", f"artist{i}.example", WHEN, None)
    for i in range(prefixes):
        rule += 1
        host = f"gallery{i}.example"
        yield (rule, "prefix", f"{host}/private/", host, WHEN, None)


def _registry(
    records: int, phash_records: int, rng: np.random.Generator
) -> tuple[RegistrySnapshot, np.ndarray]:
    urls, domains, prefixes, digests = _counts(records)
    addresses = address_snapshot.build(_address_rows(records), 1)
    first = urls + domains + prefixes + 1
    digest_rules = [(first + i, _digest(i), WHEN) for i in range(digests)]
    first += digests
    phashes = rng.integers(0, 2**64, phash_records, dtype=np.uint64, endpoint=False)
    phash_rules = [(first + i, int(h), WHEN) for i, h in enumerate(phashes.tolist())]
    hashes = HashRules.build(digest_rules, phash_rules)
    snapshot = RegistrySnapshot(addresses, hashes, empty_catalog(), None, 6, PERMITTED_USES)
    return snapshot, phashes


def _plain(records: int) -> dict[str, Any]:
    """The floor's registry: the same rules in Python sets and dicts."""
    plain: dict[str, Any] = {"urls": set(), "domains": set(), "prefixes": {}}
    for _, kind, value, host, _, _ in _address_rows(records):
        if kind == "url":
            plain["urls"].add(value)
        elif kind == "domain":
            plain["domains"].add(value)
        else:
            plain["prefixes"].setdefault(host, []).append(value)
    plain["digests"] = {_digest(i) for i in range(_counts(records)[3])}
    return plain


def _manifest(rows: int, records: int, seed: int) -> Iterator[pa.RecordBatch]:
    """The same batches on every call (made as they are used: the manifest is never whole
    in memory, as in the job)."""
    rng = np.random.default_rng(seed)
    urls_n, domains_n, prefixes_n, digests_n = _counts(records)
    for start in range(0, rows, BATCH):
        yield _manifest_batch(
            start, min(rows, start + BATCH), rng, urls_n, domains_n, prefixes_n, digests_n
        )


def _manifest_batch(
    start: int,
    stop: int,
    rng: np.random.Generator,
    urls_n: int,
    domains_n: int,
    prefixes_n: int,
    digests_n: int,
) -> pa.RecordBatch:
    kind = rng.random(stop - start).tolist()
    pick = rng.integers(0, 1 << 40, stop - start).tolist()
    share = rng.random(stop - start).tolist()
    urls, digests = [], []
    for offset, n in enumerate(range(start, stop)):
        k, p = kind[offset], pick[offset]
        if k < 0.10:
            i = p % urls_n
            urls.append(f"https://site{i % 50_000}.example/images/{i}.jpg")
        elif k < 0.15:
            urls.append(f"http://cdn.artist{p % domains_n}.example/photo/{n}.png")
        elif k < 0.17:
            urls.append(f"https://gallery{p % prefixes_n}.example/private/{n}.jpg")
        else:
            urls.append(f"https://img{p % 200_000}.laion.example/{n}/photo.jpg?size=large")
        digests.append(_digest(p % digests_n) if share[offset] < 0.05 else _digest(10**12 + n))
    return pa.RecordBatch.from_pydict(
        {
            "row": list(range(start + 1, stop + 1)),
            "url": urls,
            "caption": [None] * (stop - start),
            "sha256": digests,
            "phash": [None] * (stop - start),
        },
        schema=BATCH_SCHEMA,
    )


def _phash_manifest(rows: int, phashes: np.ndarray, seed: int) -> list[pa.RecordBatch]:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**64, rows, dtype=np.uint64, endpoint=False)
    near = rng.random(rows) < 0.05
    chosen = phashes[rng.integers(0, len(phashes), int(near.sum()))]
    flips = np.zeros(len(chosen), dtype=np.uint64)
    for _ in range(4):
        bits = rng.integers(0, 64, len(chosen)).astype(np.uint64)
        flips ^= np.where(rng.random(len(chosen)) < 0.7, np.uint64(1) << bits, np.uint64(0))
    values[near] = chosen ^ flips
    batches = []
    for start in range(0, rows, BATCH):
        stop = min(rows, start + BATCH)
        batches.append(
            pa.RecordBatch.from_pydict(
                {
                    "row": list(range(start + 1, stop + 1)),
                    "url": [None] * (stop - start),
                    "caption": [None] * (stop - start),
                    "sha256": [None] * (stop - start),
                    "phash": values[start:stop],
                },
                schema=BATCH_SCHEMA,
            )
        )
    return batches


def _floor_batch(batch: pa.RecordBatch, plain: dict[str, Any]) -> int:
    """The same lookups in plain sets and dicts: how many rows are opted out."""
    urls, domains = plain["urls"], plain["domains"]
    prefixes, digests = plain["prefixes"], plain["digests"]
    hits = 0
    for url, digest in zip(
        batch.column("url").to_pylist(), batch.column("sha256").to_pylist(), strict=True
    ):
        found = digest in digests
        try:
            host, key = normalize_url(url)
        except BadUrl:
            hits += found
            continue
        found = found or key in urls
        found = found or any(s in domains for s in host_suffixes(host))
        found = found or any(key.startswith(p) for p in prefixes.get(host, ()))
        hits += found
    return hits


def _rate(timings: list[float]) -> float:
    return BATCH / statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--phash-records", type=int, default=None, help="default: 20%% of --records"
    )
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    phash_records = args.phash_records or int(args.records * 0.20)
    rng = np.random.default_rng(args.seed)

    started = time.perf_counter()
    snapshot, phashes = _registry(args.records, phash_records, rng)
    built = time.perf_counter() - started
    registry_mb = _peak_mb()
    manifest_seed = args.seed + 1

    with tempfile.TemporaryDirectory() as folder:
        manifest = Path(folder) / "manifest.csv"
        with pacsv.CSVWriter(str(manifest), BATCH_SCHEMA) as writer:
            for batch in _manifest(args.rows, args.records, manifest_seed):
                writer.write_batch(batch)
        out = Path(folder) / "rows.parquet"
        started = time.process_time()
        with pq.ParquetWriter(str(out), RESULT_SCHEMA) as sink:
            summary = engine.run(
                ManifestReader(manifest, batch_rows=BATCH), snapshot, USES, sink.write_batch
            )
        whole = time.process_time() - started
        size_mb = manifest.stat().st_size / 1e6
    whole_mb = _peak_mb()
    assert summary.rows == args.rows

    ours, opted, batches = [], 0, 0
    for batch in _manifest(args.rows, args.records, manifest_seed):
        started = time.process_time()
        result = classify(batch, snapshot, USES)
        ours.append(time.process_time() - started)
        opted += result.column("class").to_pylist().count("opted_out")
        batches += 1
    exact_mb = _peak_mb()
    assert summary.counts["opted_out"] == opted, (summary.counts, opted)

    phash_batches = _phash_manifest(args.rows, phashes, args.seed + 2)
    near_times, near_hits = [], 0
    for batch in phash_batches:
        started = time.process_time()
        result = classify(batch, snapshot, USES)
        near_times.append(time.process_time() - started)
        near_hits += result.column("class").to_pylist().count("opted_out")
    near_mb = _peak_mb()

    plain = _plain(args.records)
    floor, floor_opted = [], 0
    for batch in _manifest(args.rows, args.records, manifest_seed):
        started = time.process_time()
        floor_opted += _floor_batch(batch, plain)
        floor.append(time.process_time() - started)
    assert floor_opted == opted, (floor_opted, opted)
    floor_mb = _peak_mb()

    sample = [int(v) for v in phash_batches[0].column("phash").to_pylist()[:200]]
    ids, hashes = snapshot.hashes.phashes.ids, snapshot.hashes.phashes.hashes
    scan = []
    for value in sample:
        started = time.process_time()
        brute_force(ids, hashes, value, 6)
        scan.append(time.process_time() - started)
    scan_rate = 1 / statistics.median(scan)

    exact_rate, floor_rate = _rate(ours), _rate(floor)
    near_rate = _rate(near_times)
    print_table(
        f"Compliance classifier, {args.rows:,}-row manifests against {args.records:,} opt-out "
        f"records ({phash_records:,} of them pHashes); registry built in {built:.1f} s; "
        f"CPU-time medians over {batches} batches of {BATCH:,} rows",
        [
            {
                "check": f"exact: URL, prefix, domain, SHA-256 ({opted:,} rows opted out)",
                "project rows/s": f"{exact_rate:,.0f}",
                "floor rows/s": f"{floor_rate:,.0f} (Python sets/dicts, same URL parser)",
                "ratio": f"{exact_rate / floor_rate:.2f}",
                "target": "≥ 100,000",
                "peak RSS": f"{exact_mb:,.0f} MB (registry alone {registry_mb:,.0f} MB; "
                f"after the floor's sets {floor_mb:,.0f} MB)",
            },
            {
                "check": f"pHash within 6 bits ({near_hits:,} rows near a rule)",
                "project rows/s": f"{near_rate:,.0f}",
                "floor rows/s": f"{scan_rate:,.0f} (numpy brute force per row)",
                "ratio": f"{near_rate / scan_rate:.1f}",
                "target": "≥ 20,000",
                "peak RSS": f"{near_mb:,.0f} MB",
            },
            {
                "check": f"whole job path: CSV file ({size_mb:,.0f} MB) → classify → Parquet",
                "project rows/s": f"{args.rows / whole:,.0f}",
                "floor rows/s": "-",
                "ratio": "-",
                "target": "-",
                "peak RSS": f"{whole_mb:,.0f} MB",
            },
        ],
    )


if __name__ == "__main__":
    main()
