"""The pHash index answers exactly as a linear scan does: random data, near-duplicate clusters,
every radius, ties by id."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.similarity.index import PHashIndex, brute_force

U64 = st.integers(min_value=0, max_value=2**64 - 1)


def _clustered(rng: np.random.Generator, centres: int, per_centre: int, spread: int) -> np.ndarray:
    """Hashes around a few centres, each a few random bit flips away (re-encoded copies)."""
    base = rng.integers(0, 2**64, centres, dtype=np.uint64, endpoint=False)
    hashes = []
    for centre in base.tolist():
        for _ in range(per_centre):
            flips = rng.choice(64, size=int(rng.integers(0, spread + 1)), replace=False)
            value = centre
            for bit in flips.tolist():
                value ^= 1 << bit
            hashes.append(value)
    return np.array(hashes, dtype=np.uint64)


@pytest.mark.parametrize("chunks", [4, 5, 8])
def test_index_equals_brute_force_on_random_and_clustered_hashes(chunks: int) -> None:
    rng = np.random.default_rng(20261203 + chunks)
    hashes = np.concatenate(
        [
            rng.integers(0, 2**64, 20_000, dtype=np.uint64, endpoint=False),
            _clustered(rng, centres=60, per_centre=40, spread=14),
            np.repeat(rng.integers(0, 2**64, 5, dtype=np.uint64, endpoint=False), 30),  # exact
        ]
    )
    ids = rng.permutation(len(hashes)).astype(np.int64) * 3 + 7  # unordered, gappy ids
    index = PHashIndex(ids, hashes, chunks=chunks)
    queries = [int(h) for h in hashes[rng.integers(0, len(hashes), 40)]]
    queries += [int(h) ^ (1 << int(b)) for h, b in zip(hashes[-200:-160], range(40), strict=True)]
    queries += [int(q) for q in rng.integers(0, 2**64, 10, dtype=np.uint64, endpoint=False)]
    for query in queries:
        for radius in (0, 1, 3, 4, 6, 7, 8, 10, 12, 16, 20, 64):
            expected = brute_force(ids, hashes, query, radius)
            assert index.query(query, radius) == expected, (query, radius)
            assert index.query(query, radius, 5) == expected[:5]


def test_ties_are_ordered_by_id_and_duplicates_all_returned() -> None:
    index = PHashIndex.build([(9, 0xFF), (2, 0xFF), (5, 0xFE), (4, 0xFF), (1, 0xF0)])
    assert index.query(0xFF, 4) == [(0, 2), (0, 4), (0, 9), (1, 5), (4, 1)]
    assert index.query(0xFF, 0, limit=2) == [(0, 2), (0, 4)]


def test_signed_storage_gives_the_same_index() -> None:
    unsigned = [2**64 - 1, 2**63, 5]
    signed = np.array([u - 2**64 if u >= 2**63 else u for u in unsigned], dtype=np.int64)
    index = PHashIndex.from_signed(np.arange(3, dtype=np.int64), signed)
    assert index.query(2**64 - 1, 63) == [(0, 0), (62, 2), (63, 1)]
    assert index.query(2**63, 0) == [(0, 1)]


def test_empty_index_and_bad_arguments() -> None:
    empty = PHashIndex.build([])
    assert len(empty) == 0
    assert empty.query(123, 10) == []
    index = PHashIndex.build([(1, 1)])
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        index.query(-1, 3)
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        index.query(2**64, 3)
    with pytest.raises(ValueError, match="max_distance"):
        index.query(1, -1)
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        PHashIndex.build([(1, 2**64)])
    with pytest.raises(ValueError, match="chunks"):
        PHashIndex.build([(1, 1)], chunks=3)


@settings(max_examples=150, deadline=None)
@given(
    hashes=st.lists(U64, max_size=60),
    query=U64,
    radius=st.integers(min_value=0, max_value=64),
    limit=st.none() | st.integers(min_value=0, max_value=10),
    chunks=st.sampled_from([4, 6, 8, 16]),
    near=st.lists(st.integers(min_value=0, max_value=63), max_size=8),
)
def test_index_equals_brute_force_for_any_small_input(
    hashes: list[int], query: int, radius: int, limit: int | None, chunks: int, near: list[int]
) -> None:
    for bit in near:  # some entries a few bits from the query, so small radii find something
        hashes.append(query ^ (1 << bit))
    ids = np.arange(len(hashes), dtype=np.int64)[::-1].copy()
    array = np.array(hashes, dtype=np.uint64)
    index = PHashIndex(ids, array, chunks=chunks)
    assert index.query(query, radius, limit) == brute_force(ids, array, query, radius, limit)


@pytest.mark.parametrize("radius", [0, 3, 6, 9])
def test_batched_queries_equal_brute_force_on_random_and_clustered_hashes(radius: int) -> None:
    from marketplace.similarity.index import query_many

    rng = np.random.default_rng(20261204 + radius)
    hashes = np.concatenate(
        [
            rng.integers(0, 2**64, 30_000, dtype=np.uint64, endpoint=False),
            _clustered(rng, centres=40, per_centre=30, spread=10),
        ]
    )
    ids = rng.permutation(len(hashes)).astype(np.int64) * 5 + 3
    index = PHashIndex(ids, hashes)
    queries = np.concatenate(
        [
            hashes[rng.choice(len(hashes), 300, replace=False)] ^ np.uint64(0b10010),
            rng.integers(0, 2**64, 300, dtype=np.uint64, endpoint=False),
        ]
    )
    owners, found_ids, distances = query_many(index, queries, radius, block=128)
    got: dict[int, list[tuple[int, int]]] = {}
    for owner, item, distance in zip(
        owners.tolist(), found_ids.tolist(), distances.tolist(), strict=True
    ):
        got.setdefault(owner, []).append((distance, item))
    for number, query in enumerate(queries.tolist()):
        assert got.get(number, []) == brute_force(ids, hashes, query, radius)
