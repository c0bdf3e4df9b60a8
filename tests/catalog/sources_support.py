"""Helpers for the source adapter tests: run an adapter over a file and label what came out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from marketplace.catalog.sources.base import Adapter, Malformed, Skipped, StockFields
from tests.conftest import shared_path

FIXTURES = Path(__file__).parent / "fixtures"
Outcome = StockFields | Skipped | Malformed


def shared_data() -> Path:
    """The shared sample folder, read in place; the test is skipped when it is absent."""
    return shared_path("data")


def outcomes(adapter: Adapter, *paths: Path) -> Iterator[tuple[int, Outcome]]:
    """(line, outcome) for every record of `paths`, as the ingest service sees them."""
    for path in paths:
        for item in adapter.read(path):
            if isinstance(item, Malformed):
                yield item.line, item
            else:
                yield item.line, adapter.map(item)


def label(outcome: Outcome) -> str:
    if isinstance(outcome, StockFields):
        return "mapped"
    if isinstance(outcome, Skipped):
        return f"skipped: {outcome.reason}"
    return f"malformed: {outcome.reason}"


def tally(results: Iterable[tuple[int, Outcome]]) -> Counter[str]:
    return Counter(label(outcome) for _, outcome in results)


def labelled(adapter: Adapter, path: Path) -> list[tuple[int, str]]:
    return [(line, label(outcome)) for line, outcome in outcomes(adapter, path)]


def mapped(adapter: Adapter, *paths: Path) -> dict[str, StockFields]:
    """The mapped records of `paths` by source id."""
    return {
        outcome.source_id: outcome
        for _, outcome in outcomes(adapter, *paths)
        if isinstance(outcome, StockFields)
    }
