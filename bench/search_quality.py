"""Search quality benchmark: judged buyer queries over the shared museum samples, scored with
recall@48 and nDCG@10 beside latency, on SQLite and PostgreSQL.

    python bench/search_quality.py [--backend sqlite postgresql] [--runs 5] [--per-query]

Builds a fresh, migrated database from ../shared/data with the project's own code: every
adapter reads and maps its sample, and `ingest_records` writes the records (ledger entries,
search rows and all). Records of sources whose images are not open (Tate, CMOA) are loaded by
their metadata (`describe`): production never offers them, but their titles, subjects and
media are the richest text in the samples, and search quality is about text. About 6,100
works in all.

Then every query of `search_quality_judgements.csv` (query, source, source_id, grade: 2 the
work is what was asked for, 1 it is related; unlisted works count 0) runs through the public
`search.search()` interface, as the catalog page calls it (first page of 48, facets and
totals included), so the figures measure whatever engine sits behind that interface. The
judgements were made by reading the records (see search_quality_judge.py), never by running
our search.

  recall@48  relevant works in the first page / min(relevant works, 48)
  nDCG@10    graded (2^grade - 1), log2 discount, against the ideal order of the judgements
  latency    p50 / p95 over every query, `--runs` times each after one warm-up pass

PostgreSQL comes from BENCH_POSTGRES_URL (default: the local trust-auth server); a scratch
database is created and dropped.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import statistics
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import database, print_table
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace import create_app
from marketplace.catalog import search
from marketplace.catalog.ingest import ingest_records
from marketplace.catalog.models import CatalogItem, StockRecord
from marketplace.catalog.sources import get_adapter
from marketplace.catalog.sources.base import Malformed, StockFields
from marketplace.db import get_database
from marketplace.migrate import upgrade

SHARED = Path(
    os.environ.get("MARKETPLACE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")
)
JUDGEMENTS = Path(__file__).with_name("search_quality_judgements.csv")
PAGE = 48  # the catalog's first page: recall is counted there
NDCG_DEPTH = 10
# Each source's sample files in ../shared/data (see its README).
SAMPLES: dict[str, tuple[str, ...]] = {
    "aic": ("aic_artworks.jsonl",),
    "cleveland": (
        "api_samples/clevelandmuseum/handle_response_data.json",
        "api_samples/clevelandmuseum/response_success.json",
    ),
    "met": (
        "api_samples/metropolitan_museum_of_art/sample_response.json",
        "api_samples/metropolitan_museum_of_art/sample_response_without_additional.json",
    ),
    "smithsonian": (
        "api_samples/smithsonian/actual_record_data.json",
        "api_samples/smithsonian/sub_provider_example.json",
    ),
    "tate": ("tate_artworks.jsonl",),
    "cmoa": ("cmoa_objects.jsonl",),
}

Key = tuple[str, str]  # (source, source_id)


def corpus(data: Path, sources: Iterable[str] = SAMPLES) -> Iterator[tuple[str, list[StockFields]]]:
    """(source, mapped records) for each sample: open records as `map` gives them, the rest by
    their metadata where the adapter can `describe` it; malformed ones left out."""
    for source in sources:
        adapter = get_adapter(source)
        describe = getattr(adapter, "describe", None)
        records: dict[str, StockFields] = {}
        for name in SAMPLES[source]:
            for item in adapter.read(data / name):
                if isinstance(item, Malformed):
                    continue
                outcome = adapter.map(item)
                if not isinstance(outcome, StockFields) and describe is not None:
                    outcome = describe(item)
                if isinstance(outcome, StockFields):
                    records.setdefault(outcome.source_id, outcome)
        yield source, list(records.values())


def load_judgements(path: Path = JUDGEMENTS) -> dict[str, dict[Key, int]]:
    """query -> {(source, source_id): grade}, queries in file order."""
    judged: dict[str, dict[Key, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            grades = judged.setdefault(row["query"], {})
            if int(row["grade"]) > 0:
                grades[(row["source"], row["source_id"])] = int(row["grade"])
    return judged


def recall_at(ranked: list[Key], relevant: Mapping[Key, int], k: int = PAGE) -> float:
    if not relevant:
        return 1.0
    found = sum(1 for key in ranked[:k] if key in relevant)
    return found / min(len(relevant), k)


def ndcg_at(ranked: list[Key], relevant: Mapping[Key, int], k: int = NDCG_DEPTH) -> float:
    if not relevant:
        return 1.0
    gains = [2 ** relevant.get(key, 0) - 1 for key in ranked[:k]]
    ideal = sorted((2**grade - 1 for grade in relevant.values()), reverse=True)[:k]
    dcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains))
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class QueryScore:
    query: str
    relevant: int
    returned: int
    recall: float
    ndcg: float
    latencies_ms: list[float] = field(default_factory=list)


def item_keys(session: Session) -> dict[int, Key]:
    """catalog item id -> (source, source_id) of its stock record."""
    rows = session.execute(
        select(CatalogItem.id, StockRecord.source, StockRecord.source_id).join(
            StockRecord, StockRecord.id == CatalogItem.stock_id
        )
    )
    return {item_id: (source, source_id) for item_id, source, source_id in rows}


def run_query(session: Session, q: str) -> tuple[list[int], float]:
    """The first page's item ids for `q` through the public search interface, and its time."""
    query = search.parse_query({"q": [q], "limit": [str(PAGE)]})
    started = time.perf_counter()
    result = search.search(session, query)
    elapsed = (time.perf_counter() - started) * 1000
    session.rollback()
    return [item.id for item in result.items], elapsed


def score_queries(
    session: Session, judged: Mapping[str, Mapping[Key, int]], runs: int = 1
) -> list[QueryScore]:
    """Each judged query scored on its first page, timed `runs` times after a warm-up."""
    keys = item_keys(session)
    scores = []
    for q, relevant in judged.items():
        ids, _warm = run_query(session, q)
        ranked = [keys[i] for i in ids if i in keys]
        score = QueryScore(
            q, len(relevant), len(ranked), recall_at(ranked, relevant), ndcg_at(ranked, relevant)
        )
        score.latencies_ms = [run_query(session, q)[1] for _ in range(runs)]
        scores.append(score)
    return scores


def build(app: Any, data: Path, sources: Iterable[str] = SAMPLES) -> int:
    """Load the samples into the app's (migrated) database; the number of works loaded."""
    loaded = 0
    with app.app_context():
        for source, records in corpus(data, sources):
            loaded += ingest_records(source, records).added
    return loaded


def bench_backend(name: str, url: str, args: argparse.Namespace, workdir: Path) -> tuple:
    app = create_app(
        {"DATABASE_URL": url, "REDIS_URL": None, "TESTING": True},
        instance_path=str(workdir / f"instance-{name}"),
    )
    upgrade(get_database(app).engine)
    started = time.perf_counter()
    loaded = build(app, SHARED / "data")
    build_seconds = time.perf_counter() - started
    judged = load_judgements()
    with app.app_context():
        session = get_database(app).sessions()
        scores = score_queries(session, judged, args.runs)
        session.close()
    get_database(app).engine.dispose()
    latencies = [ms for s in scores for ms in s.latencies_ms]
    summary = {
        "backend": name,
        "works": f"{loaded:,} ({build_seconds:.0f} s)",
        "queries": str(len(scores)),
        "recall@48": f"{statistics.mean(s.recall for s in scores):.3f}",
        "nDCG@10": f"{statistics.mean(s.ndcg for s in scores):.3f}",
        "zero-result queries": str(sum(1 for s in scores if s.returned == 0)),
        "p50": f"{statistics.median(latencies):.1f} ms",
        "p95": f"{percentile(latencies, 0.95):.1f} ms",
    }
    return summary, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each query")
    parser.add_argument(
        "--per-query", action="store_true", help="print every query's figures (else the worst)"
    )
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the app's per-chunk INFO lines would drown the tables
    if not (SHARED / "data").is_dir():
        raise SystemExit(f"{SHARED / 'data'} not found: set MARKETPLACE_SHARED_DIR")
    summaries, per_backend = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for backend in args.backend:
            with database(backend, workdir) as url:
                summary, scores = bench_backend(backend, url, args, workdir)
            summaries.append(summary)
            per_backend[backend] = scores
            print(summary, flush=True)
    rows = []
    first = per_backend[args.backend[0]]
    for position, score in enumerate(first):
        row = {"query": score.query, "relevant": str(score.relevant)}
        for backend in args.backend:
            other = per_backend[backend][position]
            row[f"{backend} returned"] = str(other.returned)
            row[f"{backend} recall@48"] = f"{other.recall:.2f}"
            row[f"{backend} nDCG@10"] = f"{other.ndcg:.2f}"
            row[f"{backend} p50"] = f"{statistics.median(other.latencies_ms):.1f} ms"
        rows.append(row)
    if not args.per_query:  # the 15 worst by recall on the first backend
        rows = sorted(rows, key=lambda r: float(r[f"{args.backend[0]} recall@48"]))[:15]
    print_table("Per query (recall@48 and nDCG@10 against the judgements):", rows)
    print()
    print_table(
        f"Search quality, {len(first)} judged queries over the shared museum samples "
        f"(first page of {PAGE}, facets included, {args.runs} timed runs each):",
        summaries,
    )


if __name__ == "__main__":
    main()
