"""The search-quality benchmark's parts on the test database: a subset of its judged queries over
the open museum samples, so that bench/search_quality.py cannot rot unnoticed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
OPEN_SOURCES = ("aic", "cleveland", "met", "smithsonian")  # 115 works: quick to load
QUERIES = (
    "portrait",
    "van gogh",
    "cezanne",
    "saint remy",
    "tannhauser",
    "oil on canvas",
    "virgin and child",
    "storm at sea",
    "Qing dynasty",  # found through the Met's period, a descriptive field
    "Edo period",
)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # the bench scripts import their `common` module
    try:
        spec = importlib.util.spec_from_file_location("search_quality", BENCH / "search_quality.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up by name
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_recall_and_ndcg_are_counted_as_documented(bench):
    relevant = {("a", "1"): 2, ("a", "2"): 1, ("a", "3"): 1}
    assert bench.recall_at([("a", "1"), ("b", "9"), ("a", "3")], relevant) == pytest.approx(2 / 3)
    assert bench.recall_at([("a", "1")], {("a", "1"): 1}, k=1) == 1.0
    # more relevant works than the page holds: recall is counted against the page
    assert bench.recall_at([("a", "1")], relevant, k=1) == 1.0
    assert bench.ndcg_at([("a", "1"), ("a", "2"), ("a", "3")], relevant) == pytest.approx(1.0)
    assert bench.ndcg_at([("a", "2"), ("a", "1")], relevant) < 1.0
    assert bench.ndcg_at([("b", "9")], relevant) == 0.0


def test_every_judged_query_names_works_of_the_samples(bench, shared_dir):
    judged = bench.load_judgements()
    assert len(judged) >= 40
    assert all(judged.values()), "a query without any relevant work"
    known = {
        (source, record.source_id)
        for source, records in bench.corpus(shared_dir / "data")
        for record in records
    }
    assert {key for grades in judged.values() for key in grades} <= known


def test_judged_queries_run_through_the_public_search(bench, app, db, shared_dir):
    loaded = bench.build(app, shared_dir / "data", OPEN_SOURCES)
    assert loaded == 115
    judged = {
        q: {key: grade for key, grade in grades.items() if key[0] in OPEN_SOURCES}
        for q, grades in bench.load_judgements().items()
        if q in QUERIES
    }
    assert all(judged.values())
    with app.app_context():  # the search engine reads the app's settings
        scores = {score.query: score for score in bench.score_queries(db, judged)}
    assert sorted(scores) == sorted(QUERIES)
    for score in scores.values():
        assert 0.0 <= score.recall <= 1.0
        assert 0.0 <= score.ndcg <= 1.0
        assert score.latencies_ms
        assert score.latencies_ms[0] > 0
    # Whatever the engine, a query that spells the words of its works finds them all.
    for q in ("van gogh", "tannhauser", "Qing dynasty", "Edo period", "oil on canvas"):
        assert scores[q].recall == 1.0, q
