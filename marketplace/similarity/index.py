"""Multi-index hashing (Norouzi, Punjani and Fleet, "Fast Search in Hamming Space with
Multi-Index Hashing", CVPR 2012) over 64-bit pHashes.

The hash is cut into `chunks` contiguous pieces. By pigeonhole, a hash within Hamming distance
r of the query differs from it in at most floor(r / chunks) bits on at least one piece, so the
candidates are the entries whose piece equals the query's piece with up to that many bits
flipped. Per piece, the entries' positions are sorted by the piece's value and an offsets table
(one slot per possible value, at most 2**16) gives each value's run: a probe is two array
reads, and the whole query is a handful of vectorised numpy calls. Every candidate's exact
distance is then checked, so the answer equals a linear scan's; when the probes would touch a
large share of the entries anyway (a wide radius), the index does the linear scan instead.

Each piece also keeps the hashes in its own order, so a probe's candidates are read as one
contiguous run rather than gathered from all over memory. Building is one stable 16-bit sort per
piece (0.26 s per million entries on the 2-core bench machine); memory is 16 bytes per entry plus 12
per piece (64 bytes per entry with four pieces: 64 MB for a million).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

HASH_BITS = 64
DEFAULT_CHUNKS = 4  # 16-bit pieces: ~15 entries per value at 1M, ~150 at 10M
MAX_CHUNK_BITS = 16  # the offsets table has 2**bits + 1 slots per piece
# Probing stops paying when the runs it reads hold more than this share of all entries.
SCAN_SHARE = 0.1

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


def _chunk_layout(chunks: int) -> list[tuple[int, int]]:
    """(shift, width) of each piece, most significant first; widths differ by at most one."""
    if not HASH_BITS / MAX_CHUNK_BITS <= chunks <= HASH_BITS:
        raise ValueError(f"chunks must be between {HASH_BITS // MAX_CHUNK_BITS} and {HASH_BITS}")
    base, extra = divmod(HASH_BITS, chunks)
    widths = [base + (1 if i < extra else 0) for i in range(chunks)]
    layout, shift = [], HASH_BITS
    for width in widths:
        shift -= width
        layout.append((shift, width))
    return layout


@functools.lru_cache(maxsize=64)
def _flip_masks(width: int, radius: int) -> npt.NDArray[np.int64]:
    """Every `width`-bit value with at most `radius` bits set: XOR a piece with these."""
    values = np.arange(1 << width, dtype=np.int64)
    masks = values[np.bitwise_count(values) <= radius]
    masks.flags.writeable = False
    return masks


def _ranges(starts: I64, lengths: I64) -> I64:
    """The concatenation of arange(start, start + length) for each pair, without a loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    ends = np.cumsum(lengths)
    steps = np.ones(total, dtype=np.int64)
    steps[0] = starts[0]
    steps[ends[:-1]] = starts[1:] - (starts[:-1] + lengths[:-1]) + 1
    return np.cumsum(steps)


@dataclass(frozen=True)
class _Piece:
    shift: int
    mask: int
    width: int
    table: int  # where this piece's offsets start in PHashIndex._offsets


class PHashIndex:
    """An immutable index of (id, pHash) pairs answering "which ids lie within distance r"."""

    def __init__(self, ids: I64, hashes: U64, *, chunks: int = DEFAULT_CHUNKS) -> None:
        """`ids` (int64) and `hashes` (uint64, unsigned pHashes) of equal length; see `build`.

        The pieces share three flat arrays, so that a query is one gather over all of them:
        `_offsets` (each piece's table, its runs shifted by the piece's number times n),
        `_positions` (entry positions sorted by piece value, piece after piece) and `_sorted`
        (the hashes in that same order)."""
        if ids.shape != hashes.shape or ids.ndim != 1:
            raise ValueError("ids and hashes must be 1-D arrays of the same length")
        self.ids = np.ascontiguousarray(ids, dtype=np.int64)
        self.hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        self.chunks = chunks
        count = len(self.ids)
        index_type = np.int32 if count < 2**31 else np.int64
        self._pieces: list[_Piece] = []
        tables, positions = [], []
        table = 0
        for number, (shift, width) in enumerate(_chunk_layout(chunks)):
            mask = (1 << width) - 1
            values = ((self.hashes >> np.uint64(shift)) & np.uint64(mask)).astype(np.uint16)
            offsets = np.zeros((1 << width) + 1, dtype=np.int64)
            np.cumsum(np.bincount(values, minlength=1 << width), out=offsets[1:])
            tables.append(offsets + number * count)
            # A stable sort keeps equal pieces in position order; numpy radix-sorts 16-bit keys.
            positions.append(np.argsort(values, kind="stable").astype(index_type))
            self._pieces.append(_Piece(shift, mask, width, table))
            table += len(offsets)
        self._offsets = np.concatenate(tables)
        self._positions = np.concatenate(positions) if positions else np.empty(0, index_type)
        self._sorted = self.hashes[self._positions]

    @property
    def nbytes(self) -> int:
        """Memory held by the index's arrays."""
        arrays = (self.ids, self.hashes, self._offsets, self._positions, self._sorted)
        return sum(array.nbytes for array in arrays)

    @classmethod
    def build(cls, pairs: Iterable[tuple[int, int]], *, chunks: int = DEFAULT_CHUNKS) -> PHashIndex:
        """From (id, unsigned pHash) pairs; ValueError for a hash outside 0 .. 2**64 - 1."""
        ids: list[int] = []
        hashes: list[int] = []
        for item_id, phash in pairs:
            if not 0 <= phash < 1 << HASH_BITS:
                raise ValueError(f"pHash of {item_id} is not an unsigned 64-bit value")
            ids.append(item_id)
            hashes.append(phash)
        return cls(np.array(ids, dtype=np.int64), np.array(hashes, dtype=np.uint64), chunks=chunks)

    @classmethod
    def from_signed(
        cls, ids: I64, signed_hashes: I64, *, chunks: int = DEFAULT_CHUNKS
    ) -> PHashIndex:
        """From hashes as stored in signed BIGINT columns (imaging.to_signed64): same bits."""
        signed = np.ascontiguousarray(signed_hashes, dtype=np.int64)
        return cls(ids, signed.view(np.uint64), chunks=chunks)

    def __len__(self) -> int:
        return len(self.ids)

    def query(
        self, phash: int, max_distance: int, limit: int | None = None
    ) -> list[tuple[int, int]]:
        """(distance, id) of every entry within `max_distance` of `phash`, nearest first, ties
        by id; at most `limit` of them. The same answer as a linear scan, always."""
        positions, distances = self._matches(phash, max_distance)
        order = np.lexsort((self.ids[positions], distances))
        if limit is not None:
            if limit < 0:
                raise ValueError("limit must not be negative")
            order = order[:limit]
        return list(
            zip(distances[order].tolist(), self.ids[positions[order]].tolist(), strict=True)
        )

    def _matches(self, phash: int, max_distance: int) -> tuple[I64, I64]:
        """Positions (each once) and distances of the entries within `max_distance`."""
        if not 0 <= phash < 1 << HASH_BITS:
            raise ValueError("the query is not an unsigned 64-bit pHash")
        if max_distance < 0:
            raise ValueError("max_distance must not be negative")
        query = np.uint64(phash)
        radius = max_distance // self.chunks
        masks = [_flip_masks(piece.width, min(radius, piece.width)) for piece in self._pieces]
        # The share of entries the probes would read, on evenly spread hashes: past
        # SCAN_SHARE, reading them all in order is cheaper than gathering the runs.
        share = sum(
            len(m) / (1 << piece.width) for m, piece in zip(masks, self._pieces, strict=True)
        )
        if max_distance >= HASH_BITS or share > SCAN_SHARE:
            distances = np.bitwise_count(self.hashes ^ query).astype(np.int64)
            positions = np.flatnonzero(distances <= max_distance)
            return positions, distances[positions]
        probes = np.concatenate(
            [
                (flips ^ ((phash >> piece.shift) & piece.mask)) + piece.table
                for flips, piece in zip(masks, self._pieces, strict=True)
            ]
        )
        starts = self._offsets[probes]
        lengths = self._offsets[probes + 1] - starts
        slots = _ranges(starts, lengths)
        distances = np.bitwise_count(self._sorted[slots] ^ query)
        near = np.flatnonzero(distances <= max_distance)
        # An entry close enough on several pieces is found by each of them: keep it once.
        positions, first = np.unique(self._positions[slots[near]], return_index=True)
        return positions.astype(np.int64), distances[near][first].astype(np.int64)


def brute_force(
    ids: I64, hashes: U64, phash: int, max_distance: int, limit: int | None = None
) -> list[tuple[int, int]]:
    """The linear scan the index must agree with (tests and the benchmark's floor)."""
    distances = np.bitwise_count(hashes ^ np.uint64(phash)).astype(np.int64)
    positions = np.flatnonzero(distances <= max_distance)
    order = np.lexsort((ids[positions], distances[positions]))[:limit]
    return list(
        zip(distances[positions[order]].tolist(), ids[positions[order]].tolist(), strict=True)
    )


def query_many(
    index: PHashIndex, phashes: U64, max_distance: int, *, block: int = 2048
) -> tuple[I64, I64, I64]:
    """Every (query position, entry id, distance) within `max_distance`, for many queries at
    once: the probes of `block` queries are gathered together, so the per-query cost is a share
    of a few numpy calls rather than a Python call each (the compliance check's near-duplicate
    pass). Sorted by query position, then distance, then id; each entry once per query. The
    same pairs as `query` (and a linear scan) for each hash."""
    phashes = np.ascontiguousarray(phashes, dtype=np.uint64)
    if max_distance < 0:
        raise ValueError("max_distance must not be negative")
    empty = np.empty(0, dtype=np.int64)
    if len(phashes) == 0 or len(index) == 0:
        return empty, empty, empty
    radius = max_distance // index.chunks
    pieces = index._pieces
    masks = [_flip_masks(piece.width, min(radius, piece.width)) for piece in pieces]
    share = sum(len(m) / (1 << piece.width) for m, piece in zip(masks, pieces, strict=True))
    if max_distance >= HASH_BITS or share > SCAN_SHARE:  # as `query` does: scan each
        found = [
            (number, item, distance)
            for number, phash in enumerate(phashes.tolist())
            for distance, item in index.query(phash, max_distance)
        ]
        if not found:
            return empty, empty, empty
        columns = np.array(found, dtype=np.int64)
        return columns[:, 0].copy(), columns[:, 1].copy(), columns[:, 2].copy()
    parts: list[tuple[I64, I64, I64]] = []
    for start in range(0, len(phashes), block):
        queries = phashes[start : start + block]
        probes_per_query = []
        for flips, piece in zip(masks, pieces, strict=True):
            values = ((queries >> np.uint64(piece.shift)) & np.uint64(piece.mask)).astype(np.int64)
            probes_per_query.append((values[:, None] ^ flips[None, :]) + piece.table)
        probes = np.concatenate(probes_per_query, axis=1)  # one row of probes per query
        owners = np.repeat(np.arange(len(queries), dtype=np.int64), probes.shape[1])
        probes = probes.ravel()
        starts = index._offsets[probes]
        lengths = index._offsets[probes + 1] - starts
        slots = _ranges(starts, lengths)
        owners = np.repeat(owners, lengths)
        distances = np.bitwise_count(index._sorted[slots] ^ queries[owners]).astype(np.int64)
        near = np.flatnonzero(distances <= max_distance)
        positions = index._positions[slots[near]].astype(np.int64)
        owners, distances = owners[near], distances[near]
        # An entry close on several pieces is found by each: keep each (query, entry) once.
        pairs = owners * len(index) + positions
        pairs, first = np.unique(pairs, return_index=True)
        owners, positions, distances = owners[first], positions[first], distances[first]
        ids = index.ids[positions]
        order = np.lexsort((ids, distances, owners))
        parts.append((owners[order] + start, ids[order], distances[order]))
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )
