"""RFC 6962 / 9162 Merkle trees: published vectors, upstream probes, mutants of our proofs."""

from __future__ import annotations

import base64
import hashlib
import random
from functools import cache
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.ledger import merkle
from marketplace.ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    SubtreeHashes,
    append_leaf_hashes,
    consistency_proof,
    consistency_proof_ranges,
    frontier_ids,
    inclusion_proof,
    inclusion_proof_ranges,
    leaf_hash,
    node_hash,
    proof_node_ids,
    range_hash,
    range_node_ids,
    root_from_frontier,
    root_from_leaf_hashes,
    stored_ranges,
    verify_consistency,
    verify_inclusion,
)

Lookup = dict[tuple[int, int], bytes]


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _proof(values: list[str] | None) -> list[bytes]:
    return [_b64(v) for v in values or []]


def _flip_bit(value: bytes, bit: int) -> bytes:
    flipped = bytearray(value)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def _store(leaf_hashes: list[bytes], batch_sizes: list[int] | None = None) -> Lookup:
    """Append in batches as the app does, keeping what it would store: leaves plus new nodes."""
    lookup: Lookup = {(0, i): h for i, h in enumerate(leaf_hashes)}
    size, frontier = 0, []
    for count in batch_sizes or [len(leaf_hashes)]:
        result = append_leaf_hashes(size, frontier, leaf_hashes[size : size + count])
        lookup.update({(level, index): h for level, index, h in result.new_nodes})
        size, frontier = result.size, result.frontier
    return lookup


# --- Published RFC 6962 vectors -------------------------------------------------------------


@pytest.fixture(scope="module")
def rfc(ledger_vectors: dict[str, Any]) -> dict[str, Any]:
    section: dict[str, Any] = ledger_vectors["rfc6962"]
    return section


@pytest.fixture(scope="module")
def rfc_leaf_hashes(rfc: dict[str, Any]) -> list[bytes]:
    return [leaf_hash(bytes.fromhex(leaf)) for leaf in rfc["leaves_hex"]]


@pytest.fixture(scope="module")
def rfc_lookup(rfc_leaf_hashes: list[bytes]) -> Lookup:
    return _store(rfc_leaf_hashes)


def test_empty_tree_root_is_sha256_of_nothing(rfc: dict[str, Any]) -> None:
    assert EMPTY_ROOT.hex() == rfc["roots_hex"][0] == hashlib.sha256(b"").hexdigest()
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert root_from_frontier([]) == EMPTY_ROOT
    assert frontier_ids(0) == []


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = bytes(range(32)), bytes(range(32, 64))
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert leaf_hash(left + right) != node_hash(left, right)


def test_every_prefix_of_the_rfc_input_has_the_published_root(
    rfc: dict[str, Any], rfc_leaf_hashes: list[bytes], rfc_lookup: Lookup
) -> None:
    for size, expected in enumerate(rfc["roots_hex"]):
        prefix = rfc_leaf_hashes[:size]
        assert root_from_leaf_hashes(prefix).hex() == expected, size
        appended = append_leaf_hashes(0, [], prefix)
        assert root_from_frontier(appended.frontier).hex() == expected, size
        assert range_hash(0, size, rfc_lookup).hex() == expected, size


def test_stored_nodes_match_the_published_node_hashes(
    rfc: dict[str, Any], rfc_lookup: Lookup
) -> None:
    expected = {
        (level, index): bytes.fromhex(h)
        for level, row in enumerate(rfc["node_hashes_hex"])
        for index, h in enumerate(row)
    }
    assert rfc_lookup == expected


def test_published_inclusion_proofs_are_built_and_verified(
    rfc: dict[str, Any], rfc_leaf_hashes: list[bytes], rfc_lookup: Lookup
) -> None:
    assert rfc["inclusion_proofs"]
    for case in rfc["inclusion_proofs"]:
        index, size = case["leaf_index"], case["tree_size"]
        published = [bytes.fromhex(h) for h in case["proof_hex"]]
        root = bytes.fromhex(rfc["roots_hex"][size])
        assert inclusion_proof(index, size, rfc_lookup) == published, case
        assert verify_inclusion(rfc_leaf_hashes[index], index, size, published, root), case


def test_published_consistency_proofs_are_built_and_verified(
    rfc: dict[str, Any], rfc_lookup: Lookup
) -> None:
    assert rfc["consistency_proofs"]
    for case in rfc["consistency_proofs"]:
        old_size, new_size = case["size1"], case["size2"]
        published = [bytes.fromhex(h) for h in case["proof_hex"]]
        old_root = bytes.fromhex(rfc["roots_hex"][old_size])
        new_root = bytes.fromhex(rfc["roots_hex"][new_size])
        assert consistency_proof(old_size, new_size, rfc_lookup) == published, case
        assert verify_consistency(old_size, new_size, published, old_root, new_root), case


def test_upstream_inclusion_probes_pass_or_fail_as_published(
    ledger_vectors: dict[str, Any],
) -> None:
    probes = ledger_vectors["transparency_dev_probes"]["inclusion"]
    assert len(probes) > 90
    assert sum(not p["wantErr"] for p in probes) >= 5  # some must pass, not only fail
    wrong = [
        f"{p['file']}: {p['desc']}"
        for p in probes
        if verify_inclusion(
            _b64(p["leafHash"]), p["leafIdx"], p["treeSize"], _proof(p["proof"]), _b64(p["root"])
        )
        is p["wantErr"]
    ]
    assert wrong == []


def test_upstream_consistency_probes_pass_or_fail_as_published(
    ledger_vectors: dict[str, Any],
) -> None:
    probes = ledger_vectors["transparency_dev_probes"]["consistency"]
    assert len(probes) > 90
    assert sum(not p["wantErr"] for p in probes) >= 5
    wrong = [
        f"{p['file']}: {p['desc']}"
        for p in probes
        if verify_consistency(
            p["size1"], p["size2"], _proof(p["proof"]), _b64(p["root1"]), _b64(p["root2"])
        )
        is p["wantErr"]
    ]
    assert wrong == []


# --- Node ids and ranges --------------------------------------------------------------------


def test_frontier_is_one_perfect_subtree_per_set_bit_largest_first() -> None:
    assert frontier_ids(1) == [(0, 0)]
    assert frontier_ids(8) == [(3, 0)]
    assert frontier_ids(13) == [(3, 0), (2, 2), (0, 12)]
    assert range_node_ids(4, 7) == [(1, 2), (0, 6)]
    assert range_node_ids(5, 5) == []


@pytest.mark.parametrize(("start", "end"), [(1, 3), (2, 6), (-1, 0), (5, 4), (3, 7)])
def test_ranges_that_are_no_subtree_are_refused(start: int, end: int) -> None:
    with pytest.raises(ValueError, match=r"leaf range|not a subtree"):
        range_node_ids(start, end)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (3, 3), (-1, 4)])
def test_inclusion_proof_of_a_leaf_outside_the_tree_is_refused(index: int, size: int) -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof_ranges(index, size)


@pytest.mark.parametrize(("old_size", "new_size"), [(0, 0), (0, 5), (6, 5), (-1, 2)])
def test_consistency_proof_needs_a_nonempty_older_tree(old_size: int, new_size: int) -> None:
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof_ranges(old_size, new_size)


def test_missing_stored_node_is_a_key_error_not_a_wrong_proof() -> None:
    lookup = _store([leaf_hash(bytes([i])) for i in range(6)])
    del lookup[(1, 1)]
    with pytest.raises(KeyError):
        inclusion_proof(0, 6, lookup)


# --- Incremental appends against the reference MTH ------------------------------------------

SMALL_TREE = 40


def _leaves(count: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(count)]


def _random_batches(total: int, rng: random.Random) -> list[int]:
    batches = []
    while total:
        batch = rng.randint(1, total)
        batches.append(batch)
        total -= batch
    return batches


def _completes_at(node: tuple[int, int, bytes]) -> tuple[int, int]:
    level, index, _ = node
    return ((index + 1) << level, level)


def test_first_eight_appends_complete_nodes_in_order() -> None:
    result = append_leaf_hashes(0, [], _leaves(8))
    assert [(level, index) for level, index, _ in result.new_nodes] == [
        (1, 0),
        (1, 1),
        (2, 0),
        (1, 2),
        (1, 3),
        (2, 1),
        (3, 0),
    ]


@pytest.mark.parametrize("size", range(1, SMALL_TREE + 1))
def test_batched_appends_store_every_subtree_and_track_every_root(size: int) -> None:
    leaf_hashes = _leaves(size)
    rng = random.Random(size)
    lookup: Lookup = {(0, i): h for i, h in enumerate(leaf_hashes)}
    done, frontier = 0, []
    for count in _random_batches(size, rng):
        result = append_leaf_hashes(done, frontier, leaf_hashes[done : done + count])
        assert result.size == done + count
        assert result.new_nodes == sorted(result.new_nodes, key=_completes_at)
        for level, index, h in result.new_nodes:
            assert level >= 1
            assert (level, index) not in lookup, "a node completes once"
            assert done < (index + 1) << level <= result.size, "completed by this batch"
            assert h == root_from_leaf_hashes(leaf_hashes[index << level : (index + 1) << level])
            lookup[(level, index)] = h
        done, frontier = result.size, result.frontier
        assert frontier == [lookup[node_id] for node_id in frontier_ids(done)]
        assert root_from_frontier(frontier) == root_from_leaf_hashes(leaf_hashes[:done])
    # Every perfect subtree of level >= 1 inside the tree, and nothing else.
    assert len(lookup) - size == size - size.bit_count()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 20), max_size=12), st.binary(max_size=4))
def test_any_batch_split_gives_the_reference_root(batches: list[int], salt: bytes) -> None:
    leaf_hashes = _leaves(sum(batches), salt)
    lookup = _store(leaf_hashes, batches)
    size = len(leaf_hashes)
    assert range_hash(0, size, lookup) == root_from_leaf_hashes(leaf_hashes)


def test_append_refuses_a_frontier_that_does_not_fit_the_size() -> None:
    result = append_leaf_hashes(0, [], _leaves(5))
    with pytest.raises(ValueError, match="frontier"):
        append_leaf_hashes(7, result.frontier, _leaves(1))
    with pytest.raises(ValueError, match="frontier"):
        append_leaf_hashes(-1, [], _leaves(1))
    with pytest.raises(ValueError, match="32 bytes"):
        append_leaf_hashes(5, result.frontier, [b"short"])
    with pytest.raises(ValueError, match="32 bytes"):
        append_leaf_hashes(5, [b"x" * 31, *result.frontier[1:]], _leaves(1))


def test_empty_batch_changes_nothing() -> None:
    result = append_leaf_hashes(0, [], _leaves(11))
    again = append_leaf_hashes(11, result.frontier, [])
    assert (again.size, again.frontier, again.new_nodes) == (11, result.frontier, [])


# --- Every proof of a small tree, exhaustively ----------------------------------------------


@pytest.fixture(scope="module")
def small_tree() -> tuple[list[bytes], Lookup]:
    leaf_hashes = _leaves(SMALL_TREE, b"small")
    return leaf_hashes, _store(leaf_hashes, _random_batches(SMALL_TREE, random.Random(7)))


def test_every_inclusion_proof_of_a_small_tree_verifies(
    small_tree: tuple[list[bytes], Lookup],
) -> None:
    leaf_hashes, lookup = small_tree
    for size in range(1, SMALL_TREE + 1):
        root = root_from_leaf_hashes(leaf_hashes[:size])
        for index in range(size):
            ranges = inclusion_proof_ranges(index, size)
            proof = inclusion_proof(index, size, lookup)
            assert proof == [root_from_leaf_hashes(leaf_hashes[s:e]) for s, e in ranges]
            assert verify_inclusion(leaf_hashes[index], index, size, proof, root)


def test_every_consistency_proof_of_a_small_tree_verifies(
    small_tree: tuple[list[bytes], Lookup],
) -> None:
    leaf_hashes, lookup = small_tree
    roots = [root_from_leaf_hashes(leaf_hashes[:size]) for size in range(SMALL_TREE + 1)]
    for new_size in range(1, SMALL_TREE + 1):
        for old_size in range(1, new_size + 1):
            ranges = consistency_proof_ranges(old_size, new_size)
            proof = consistency_proof(old_size, new_size, lookup)
            assert proof == [root_from_leaf_hashes(leaf_hashes[s:e]) for s, e in ranges]
            assert verify_consistency(old_size, new_size, proof, roots[old_size], roots[new_size])


def test_one_query_of_proof_node_ids_is_enough(small_tree: tuple[list[bytes], Lookup]) -> None:
    _, lookup = small_tree
    for size in (1, 2, 7, 31, SMALL_TREE):
        for index in range(size):
            ranges = inclusion_proof_ranges(index, size)
            fetched = {node_id: lookup[node_id] for node_id in proof_node_ids(ranges)}
            assert inclusion_proof(index, size, fetched) == inclusion_proof(index, size, lookup)
        for old_size in range(1, size + 1):
            ranges = consistency_proof_ranges(old_size, size)
            fetched = {node_id: lookup[node_id] for node_id in proof_node_ids(ranges)}
            assert consistency_proof(old_size, size, fetched) == consistency_proof(
                old_size, size, lookup
            )


# --- Sparse storage: every 4th level kept, the rest rebuilt ----------------------------------


def _sparse(leaf_hashes: list[bytes], batch_sizes: list[int], every: int) -> Lookup:
    """What the ledger stores: the leaves and the nodes append_leaf_hashes(every=...) returns."""
    lookup: Lookup = {(0, i): h for i, h in enumerate(leaf_hashes)}
    size, frontier = 0, []
    for count in batch_sizes:
        result = append_leaf_hashes(size, frontier, leaf_hashes[size : size + count], every=every)
        assert all(level % every == 0 for level, _, _ in result.new_nodes)
        lookup.update({(level, index): h for level, index, h in result.new_nodes})
        size, frontier = result.size, result.frontier
    return lookup


def _read(stored: Lookup, ids: set[tuple[int, int]], every: int) -> SubtreeHashes:
    """Only the stored hashes that stored_ranges names, as the ledger's one query reads them."""
    fetched = {
        (level, index): stored[level, index]
        for level, spans in stored_ranges(ids, every, slack=16).items()
        for span in spans
        for index in span
        if (level, index) in stored
    }
    return SubtreeHashes(fetched, every)


@pytest.mark.parametrize("every", [2, 3, 4])
def test_sparse_appends_keep_exactly_the_levels_asked_for(every: int) -> None:
    leaf_hashes = _leaves(600, b"sparse")
    batches = _random_batches(600, random.Random(every))
    full = _store(leaf_hashes, batches)
    sparse = _sparse(leaf_hashes, batches, every)
    assert sparse == {
        node_id: h for node_id, h in full.items() if node_id[0] == 0 or node_id[0] % every == 0
    }


@pytest.mark.parametrize("every", [2, 4])
def test_proofs_from_sparse_storage_equal_the_straightforward_ones(every: int) -> None:
    """Every inclusion and consistency proof of trees up to 300 leaves, power of two or not,
    built from the stored levels alone (and only the ranges one query reads)."""
    leaf_hashes, full, _ = _big_tree()
    stored = _sparse(leaf_hashes, [1, 2, 97, 3, 64, 133], every)
    rng = random.Random(every)
    for size in range(1, BIG_TREE + 1):
        for index in {0, size - 1, *rng.sample(range(size), min(size, 6))}:
            ranges = inclusion_proof_ranges(index, size)
            lookup = _read(stored, proof_node_ids(ranges), every)
            assert inclusion_proof(index, size, lookup) == [
                root_from_leaf_hashes(leaf_hashes[s:e]) for s, e in ranges
            ]
        for old_size in {1, size, *rng.sample(range(1, size + 1), min(size, 4))}:
            ranges = consistency_proof_ranges(old_size, size)
            lookup = _read(stored, proof_node_ids(ranges), every)
            assert consistency_proof(old_size, size, lookup) == consistency_proof(
                old_size, size, full
            )
        frontier = _read(stored, set(frontier_ids(size)), every)
        assert root_from_frontier([frontier[i] for i in frontier_ids(size)]) == (
            root_from_leaf_hashes(leaf_hashes[:size])
        )


def test_sparse_lookup_refuses_a_missing_stored_node() -> None:
    stored = _sparse(_leaves(40), [40], 4)
    del stored[(0, 3)]
    with pytest.raises(KeyError):
        SubtreeHashes(stored, 4)[2, 0]
    del stored[(4, 1)]
    with pytest.raises(KeyError):
        SubtreeHashes(stored, 4)[4, 1]
    assert SubtreeHashes(stored, 4)[2, 1] == root_from_leaf_hashes(_leaves(40)[4:8])


def test_stored_ranges_merge_neighbours_and_stay_within_the_slack() -> None:
    ranges = stored_ranges({(3, 0), (2, 2), (0, 13), (4, 1), (6, 2), (5, 5)}, 4, slack=2)
    assert ranges == {0: [range(0, 14)], 4: [range(1, 2), range(8, 12)]}
    assert stored_ranges({(0, 0), (0, 10)}, 4, slack=2) == {0: [range(0, 1), range(10, 11)]}


# --- Properties: our proofs verify; every mutant of them fails ------------------------------

BIG_TREE = 300


@cache
def _big_tree() -> tuple[list[bytes], Lookup, list[bytes]]:
    leaf_hashes = _leaves(BIG_TREE, b"big")
    lookup = _store(leaf_hashes, [1, 2, 97, 3, 64, 133])
    roots = [range_hash(0, size, lookup) for size in range(BIG_TREE + 1)]
    assert roots[BIG_TREE] == root_from_leaf_hashes(leaf_hashes)
    return leaf_hashes, lookup, roots


@st.composite
def leaf_in_tree(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, BIG_TREE))
    return draw(st.integers(0, size - 1)), size


@st.composite
def tree_pair(draw: st.DrawFn) -> tuple[int, int]:
    new_size = draw(st.integers(1, BIG_TREE))
    return draw(st.integers(1, new_size)), new_size


def _shape(index: int, size: int) -> list[bool]:
    """Which side each proof hash goes on: all that verification does with index and size."""
    return [start < index for start, _ in inclusion_proof_ranges(index, size)]


@settings(max_examples=150, deadline=None)
@given(leaf_in_tree(), st.data())
def test_inclusion_proof_fails_after_any_single_bit_flip(
    leaf: tuple[int, int], data: st.DataObject
) -> None:
    leaf_hashes, lookup, roots = _big_tree()
    index, size = leaf
    proof = inclusion_proof(index, size, lookup)
    args = [leaf_hashes[index], index, size, proof, roots[size]]
    assert verify_inclusion(*args)

    target = data.draw(st.integers(-2, len(proof) - 1), label="target")  # -2 leaf, -1 root
    bit = data.draw(st.integers(0, HASH_SIZE * 8 - 1), label="bit")
    if target == -2:
        args[0] = _flip_bit(leaf_hashes[index], bit)
    elif target == -1:
        args[4] = _flip_bit(roots[size], bit)
    else:
        args[3] = [*proof[:target], _flip_bit(proof[target], bit), *proof[target + 1 :]]
    assert not verify_inclusion(*args)


@settings(max_examples=150, deadline=None)
@given(leaf_in_tree(), st.integers(0, 2 * BIG_TREE), st.integers(0, 2 * BIG_TREE))
def test_inclusion_proof_is_for_one_index_and_size_shape(
    leaf: tuple[int, int], other_index: int, other_size: int
) -> None:
    leaf_hashes, lookup, roots = _big_tree()
    index, size = leaf
    proof = inclusion_proof(index, size, lookup)
    root = roots[size]
    if other_index != index:
        assert not verify_inclusion(leaf_hashes[index], other_index, size, proof, root)
    if other_size != size:
        # The root alone binds the size: another size passes only if it asks for the very same
        # hashing steps, and then it still proves nothing but membership under this root.
        same_steps = index < other_size and _shape(index, other_size) == _shape(index, size)
        assert verify_inclusion(leaf_hashes[index], index, other_size, proof, root) is same_steps


@settings(max_examples=100, deadline=None)
@given(leaf_in_tree(), st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE))
def test_truncated_or_extended_inclusion_proof_fails(leaf: tuple[int, int], extra: bytes) -> None:
    leaf_hashes, lookup, roots = _big_tree()
    index, size = leaf
    proof = inclusion_proof(index, size, lookup)
    root = roots[size]
    for mutant in ([*proof, extra], [extra, *proof], [*proof, root], [*proof, b""]):
        assert not verify_inclusion(leaf_hashes[index], index, size, mutant, root)
    if proof:
        assert not verify_inclusion(leaf_hashes[index], index, size, proof[:-1], root)
        assert not verify_inclusion(leaf_hashes[index], index, size, proof[1:], root)


@settings(max_examples=150, deadline=None)
@given(tree_pair(), st.data())
def test_consistency_proof_fails_after_any_single_bit_flip(
    sizes: tuple[int, int], data: st.DataObject
) -> None:
    _, lookup, roots = _big_tree()
    old_size, new_size = sizes
    proof = consistency_proof(old_size, new_size, lookup)
    args = [old_size, new_size, proof, roots[old_size], roots[new_size]]
    assert verify_consistency(*args)

    target = data.draw(st.integers(-2, len(proof) - 1), label="target")  # -2 old, -1 new root
    bit = data.draw(st.integers(0, HASH_SIZE * 8 - 1), label="bit")
    if target == -2:
        args[3] = _flip_bit(roots[old_size], bit)
    elif target == -1:
        args[4] = _flip_bit(roots[new_size], bit)
    else:
        args[2] = [*proof[:target], _flip_bit(proof[target], bit), *proof[target + 1 :]]
    assert not verify_consistency(*args)


@settings(max_examples=150, deadline=None)
@given(tree_pair(), st.integers(0, 2 * BIG_TREE), st.integers(0, 2 * BIG_TREE))
def test_consistency_proof_is_for_one_old_size(
    sizes: tuple[int, int], other_old: int, other_new: int
) -> None:
    _, lookup, roots = _big_tree()
    old_size, new_size = sizes
    proof = consistency_proof(old_size, new_size, lookup)
    old_root, new_root = roots[old_size], roots[new_size]
    if other_old != old_size:
        assert not verify_consistency(other_old, new_size, proof, old_root, new_root)
    if other_new != new_size and (
        other_new < old_size or len(consistency_proof_ranges(old_size, other_new)) != len(proof)
    ):
        assert not verify_consistency(old_size, other_new, proof, old_root, new_root)
    assert not verify_consistency(old_size, new_size, proof, new_root, old_root) or (
        old_root == new_root
    )


@settings(max_examples=100, deadline=None)
@given(tree_pair(), st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE))
def test_truncated_or_extended_consistency_proof_fails(
    sizes: tuple[int, int], extra: bytes
) -> None:
    _, lookup, roots = _big_tree()
    old_size, new_size = sizes
    proof = consistency_proof(old_size, new_size, lookup)
    old_root, new_root = roots[old_size], roots[new_size]
    for mutant in ([*proof, extra], [extra, *proof], [*proof, old_root], [new_root, *proof]):
        assert not verify_consistency(old_size, new_size, mutant, old_root, new_root)
    if proof:
        assert not verify_consistency(old_size, new_size, proof[:-1], old_root, new_root)
        assert not verify_consistency(old_size, new_size, proof[1:], old_root, new_root)


def test_consistency_from_the_empty_tree_is_never_accepted() -> None:
    _, _, roots = _big_tree()
    assert not verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    assert not verify_consistency(0, 5, [], EMPTY_ROOT, roots[5])


hash_like = st.one_of(st.binary(max_size=40), st.binary(min_size=32, max_size=32))


@settings(max_examples=200, deadline=None)
@given(
    hash_like,
    st.integers(-(2**65), 2**65),
    st.integers(-(2**65), 2**65),
    st.one_of(st.none(), st.text(max_size=3), st.lists(hash_like, max_size=70)),
    hash_like,
)
def test_verifiers_answer_false_and_never_raise_on_garbage(
    leaf: bytes, first: int, second: int, proof: Any, root: bytes
) -> None:
    assert verify_inclusion(leaf, first, second, proof, root) in (True, False)
    assert verify_consistency(first, second, proof, leaf, root) in (True, False)
    if first < 0 or second <= 0 or proof is None:
        assert verify_inclusion(leaf, first, second, proof, root) is False
        assert verify_consistency(first, second, proof, leaf, root) is False


def test_verifiers_refuse_non_integer_sizes() -> None:
    _, lookup, roots = _big_tree()
    leaf_hashes = _big_tree()[0]
    proof = inclusion_proof(3, 10, lookup)
    assert not verify_inclusion(leaf_hashes[3], 3.0, 10, proof, roots[10])  # type: ignore[arg-type]
    assert not verify_inclusion(leaf_hashes[3], 3, "10", proof, roots[10])  # type: ignore[arg-type]
    assert not verify_consistency(True, 1, [], roots[1], roots[1])


def test_merkle_core_imports_only_hashlib() -> None:
    """The standalone verifier imports this module alone: no Flask, SQLAlchemy or app code."""
    imported = {name for name, value in vars(merkle).items() if isinstance(value, ModuleType)}
    assert imported == {"hashlib"}
