"""RFC 6962 / RFC 9162 Merkle tree hashing and proofs: pure functions over bytes.

Section numbers refer to RFC 9162 (Certificate Transparency 2.0), whose tree is the RFC 6962 tree.
Leaf indices are 0-based. A perfect subtree is named by ``(level, index)``: level 0 is leaf
``index``; level ``L`` index ``k`` covers leaves ``[k * 2**L, (k + 1) * 2**L)``. The ledger stores
the leaf hashes and the hashes of perfect subtrees at every ``every``-th level only
(``append_leaf_hashes(every=...)``); ``SubtreeHashes`` rebuilds any other perfect subtree from
the stored ones below it (``stored_ranges`` says which to fetch), so proofs and roots never
touch more than ``2**(every - 1)`` stored hashes per node they need.

Proof builders raise ``ValueError`` for impossible arguments (the caller has a bug); verifiers
never raise and answer ``False`` for anything they cannot accept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

# The hashing and verifying halves live in the standalone verifier, so there is one copy of each.
from marketplace.ledger.verify import (
    _NODE_PREFIX,
    EMPTY_ROOT,
    HASH_SIZE,
    leaf_hash,
    node_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "leaf_hash",
    "node_hash",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

NodeId = tuple[int, int]


def _split_point(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2): where MTH splits a list (2.1.1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _require_hashes(hashes: Iterable[bytes], what: str) -> None:
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ValueError(f"every {what} must be {HASH_SIZE} bytes")


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the whole list by the RFC's recursive definition (2.1.1).

    The reference the incremental code is tested against; it touches every leaf, so it is only
    for tests and small trees.
    """
    _require_hashes(leaf_hashes, "leaf hash")

    def mth(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return leaf_hashes[lo]
        k = _split_point(hi - lo)
        return node_hash(mth(lo, lo + k), mth(lo + k, hi))

    return mth(0, len(leaf_hashes)) if leaf_hashes else EMPTY_ROOT


def range_node_ids(start: int, end: int) -> list[NodeId]:
    """Perfect subtrees, left to right and largest first, whose roots give MTH(D[start:end]).

    These are the subtrees the MTH recursion of 2.1.1 bottoms out in for the ranges that RFC proofs
    (2.1.3.1, 2.1.4.1) and tree heads use: ``start`` must be a multiple of the largest power of two
    not above ``end - start``. An empty range needs no node. Raises ValueError otherwise.
    """
    if not 0 <= start <= end:
        raise ValueError(f"not a leaf range: [{start}, {end})")
    width = end - start
    if width == 0:
        return []
    top_level = width.bit_length() - 1
    if start % (1 << top_level):
        raise ValueError(f"[{start}, {end}) is not a subtree of any Merkle tree")
    ids: list[NodeId] = []
    position = start
    for level in range(top_level, -1, -1):
        if width >> level & 1:
            ids.append((level, position >> level))
            position += 1 << level
    return ids


def frontier_ids(size: int) -> list[NodeId]:
    """The perfect subtrees whose roots make up a tree of ``size`` leaves, one per set bit (2.1.1).

    Their hashes are all an appender has to keep: see ``append_leaf_hashes``.
    """
    return range_node_ids(0, size)


def _fold_right(roots: Sequence[bytes]) -> bytes:
    """MTH of consecutive perfect subtrees, largest first: the right-leaning merge of 2.1.1."""
    if not roots:
        return EMPTY_ROOT
    acc = roots[-1]
    for left in reversed(roots[:-1]):
        acc = node_hash(left, acc)
    return acc


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """The tree head MTH(D[0:n]) (2.1.1) from the hashes of ``frontier_ids(n)``, in that order."""
    return _fold_right(frontier)


def range_hash(start: int, end: int, lookup: Mapping[NodeId, bytes]) -> bytes:
    """MTH(D[start:end]) (2.1.1) from stored perfect-subtree hashes.

    ``lookup`` must hold every id of ``range_node_ids(start, end)`` (KeyError otherwise).
    """
    return _fold_right([lookup[node_id] for node_id in range_node_ids(start, end)])


@dataclass(frozen=True)
class AppendResult:
    """The tree after a batch: its size and frontier, and every node (level >= 1) it completed."""

    size: int
    frontier: list[bytes]
    new_nodes: list[tuple[int, int, bytes]]


def append_leaf_hashes(
    size: int, frontier: Sequence[bytes], leaf_hashes: Sequence[bytes], *, every: int = 1
) -> AppendResult:
    """Append leaves to a tree known only by its frontier; O(batch + log size) hashing (2.1.1).

    ``new_nodes`` holds (level, index, hash) for each perfect subtree of level >= 1 that the batch
    completes and whose level is a multiple of ``every``, ordered by the leaf count at which it
    completes, then by level. Storing them, plus the leaf hashes as level 0, gives every hash that
    proofs and later appends need (through ``SubtreeHashes``). Raises ValueError if the frontier
    does not fit ``size``, a hash is not 32 bytes or ``every`` < 1.
    """
    if size < 0 or len(frontier) != size.bit_count():
        raise ValueError(f"a tree of {size} leaves has {max(size, 0).bit_count()} frontier hashes")
    if every < 1:
        raise ValueError("every must be at least 1")
    _require_hashes(frontier, "frontier hash")
    _require_hashes(leaf_hashes, "leaf hash")

    stack = list(frontier)
    new_nodes: list[tuple[int, int, bytes]] = []
    push, pop, record = stack.append, stack.pop, new_nodes.append
    sha256 = hashlib.sha256
    count = size
    mask = (1 << every) - 1  # a count divisible by 2**every completes a node worth storing
    for node in leaf_hashes:
        count += 1
        # Each trailing zero bit of the new leaf count closes one perfect subtree.
        if count & 1:
            push(node)
            continue
        remaining, level = count, 0
        store = not count & mask
        while not remaining & 1:
            node = sha256(_NODE_PREFIX + pop() + node).digest()
            remaining >>= 1
            level += 1
            if store and level % every == 0:
                record((level, remaining - 1, node))
        push(node)
    return AppendResult(size=count, frontier=stack, new_nodes=new_nodes)


def stored_level(level: int, every: int) -> int:
    """The level a perfect subtree of ``level`` is rebuilt from when every ``every``-th is kept."""
    return level - level % every


def stored_ranges(ids: Iterable[NodeId], every: int, slack: int = 0) -> dict[int, list[range]]:
    """The stored subtrees that ``SubtreeHashes`` reads to give the hashes of ``ids``.

    Per stored level (0: leaves), sorted index ranges; ranges less than ``slack`` apart are
    merged, since one range read of a few more rows costs less than another lookup.
    """
    wanted: dict[int, list[tuple[int, int]]] = {}
    for level, index in ids:
        base = stored_level(level, every)
        shift = level - base
        wanted.setdefault(base, []).append((index << shift, (index + 1) << shift))
    merged: dict[int, list[range]] = {}
    for base, spans in wanted.items():
        out: list[range] = []
        lo, hi = -1, -1
        for start, end in sorted(spans):
            if start <= hi + slack and out:
                hi = max(hi, end)
                out[-1] = range(lo, hi)
                continue
            lo, hi = start, end
            out.append(range(lo, hi))
        merged[base] = out
    return merged


class SubtreeHashes(Mapping[NodeId, bytes]):
    """Hashes of perfect subtrees, rebuilt on demand from the stored ones (2.1.1).

    ``stored`` holds leaf hashes (level 0) and subtrees whose level is a multiple of ``every``;
    any other level is hashed up from the stored level below it and remembered. A stored id that
    is missing is a KeyError, never a wrong hash.
    """

    def __init__(self, stored: Mapping[NodeId, bytes], every: int) -> None:
        self._known = dict(stored)
        self._every = every

    def __getitem__(self, node_id: NodeId) -> bytes:
        found = self._known.get(node_id)
        if found is not None:
            return found
        level, index = node_id
        if level <= 0 or level % self._every == 0:
            raise KeyError(node_id)
        digest = node_hash(self[level - 1, 2 * index], self[level - 1, 2 * index + 1])
        self._known[node_id] = digest
        return digest

    def __iter__(self) -> Iterator[NodeId]:
        return iter(self._known)

    def __len__(self) -> int:
        return len(self._known)


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTH make up PATH(index, D[0:size]), in proof order (2.1.3.1).

    Raises ValueError unless 0 <= index < size.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    top_down: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split_point(hi - lo)
        if index < mid:
            top_down.append((mid, hi))
            hi = mid
        else:
            top_down.append((lo, mid))
            lo = mid
    return top_down[::-1]


def consistency_proof_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTH make up PROOF(old_size, D[0:new_size]), in proof order (2.1.4.1).

    Equal sizes need an empty proof. Raises ValueError unless 0 < old_size <= new_size: a proof
    from the empty tree is meaningless, as in RFC 9162 and transparency-dev/merkle.
    """
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    top_down: list[tuple[int, int]] = []
    lo, hi = 0, new_size
    whole_old_tree = True  # SUBPROOF's flag b: is [lo, old_size) the entire old tree?
    while True:
        if old_size == hi:
            if not whole_old_tree:
                top_down.append((lo, hi))
            break
        mid = lo + _split_point(hi - lo)
        if old_size <= mid:
            top_down.append((mid, hi))
            hi = mid
        else:
            top_down.append((lo, mid))
            lo = mid
            whole_old_tree = False
    return top_down[::-1]


def proof_node_ids(ranges: Iterable[tuple[int, int]]) -> set[NodeId]:
    """Every perfect-subtree id needed to hash ``ranges``: the one query a proof has to make."""
    return {node_id for start, end in ranges for node_id in range_node_ids(start, end)}


def inclusion_proof(index: int, size: int, lookup: Mapping[NodeId, bytes]) -> list[bytes]:
    """PATH(index, D[0:size]) (2.1.3.1) from stored hashes (see ``proof_node_ids``)."""
    return [range_hash(s, e, lookup) for s, e in inclusion_proof_ranges(index, size)]


def inclusion_proof_from_leaves(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[0:n]) (2.1.3.1) of a small tree given all its leaf hashes (a chunk of
    stock records): each proof range hashed once, O(n) hashing in all. ValueError if ``index``
    is outside the tree."""
    _require_hashes(leaf_hashes, "leaf hash")
    return [
        tree_root(leaf_hashes[start:end])
        for start, end in inclusion_proof_ranges(index, len(leaf_hashes))
    ]


def consistency_proof(old_size: int, new_size: int, lookup: Mapping[NodeId, bytes]) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) (2.1.4.1) from stored hashes (see ``proof_node_ids``)."""
    return [range_hash(s, e, lookup) for s, e in consistency_proof_ranges(old_size, new_size)]
