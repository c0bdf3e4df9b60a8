"""The classifier: a pure function from a manifest record batch and a registry snapshot to one
class and its evidence per row.

`classify(batch, snapshot, intended_uses)` reads nothing but its arguments (no database, no
Flask, no clock), so the web job, the CLI and a distributed engine (one task per partition,
the snapshot broadcast) give the same rows for the same input. A row's class is the first that
applies, consent first:

1. `opted_out`: the opt-out registry matches its URL (exact address, prefix, domain), its
   SHA-256, or its pHash within `phash_distance` bits (multi-index hashing, never a scan);
2. `reserved`: a machine-readable reservation on record covers its URL (TDMRep, ai.txt,
   robots rules for AI crawlers: `marketplace.reservations`' index);
3. `licensable`: it is (by URL, SHA-256 or pHash) a catalog work licensed under terms that
   permit every intended use, at the price in the evidence;
4. `public_domain`: it is museum stock in the public domain or a work its artist donated (CC0);
5. `unknown`: nothing on record says either way.

Evidence lists every match found, not only the deciding one (a licensable work whose URL is
also opted out shows both). A licensed work whose terms refuse an intended use is evidence,
not a class: the row stays `unknown` unless something else decides it.

The snapshot pickles, but the opt-out address tables key rules by Python's `hash()` of their
text, which is seeded per process: a copy unpickled where the seed differs refuses to load
(`SnapshotNotPortable`) rather than match nothing. A distributed engine runs its workers with
one `PYTHONHASHSEED`, or rebuilds the snapshot per worker.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from marketplace.ledger.canonical import format_timestamp
from marketplace.optout.snapshot import Snapshot as AddressRules
from marketplace.optout.snapshot import from_micros
from marketplace.optout.urls import BadUrl, normalize_url
from marketplace.similarity.index import PHashIndex, query_many

CLASSES = ("opted_out", "reserved", "licensable", "public_domain", "unknown")
CLASS_LABELS = {
    "opted_out": "Opted out",
    "reserved": "Reserved by its site",
    "licensable": "Licensable here",
    "public_domain": "Public domain or donated",
    "unknown": "Unknown",
}
OPTED_OUT, RESERVED, LICENSABLE, PUBLIC_DOMAIN, UNKNOWN = range(5)
LICENCES = ("public_domain", "cc0", "licensed")
RESULT_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("url", pa.string()),
        ("class", pa.string()),
        ("evidence", pa.string()),  # a JSON array of matches
        ("problem", pa.string()),
    ]
)
_PROBE = "marketplace.compliance.snapshot"
_EMPTY_I64 = np.empty(0, dtype=np.int64)


class SnapshotNotPortable(RuntimeError):
    """A snapshot unpickled in a process whose string hashes differ from its maker's."""


class Reservations(Protocol):
    """What the classifier needs of `marketplace.reservations.matching.ReservationIndex`:
    the reservation covering a URL already normalised by `optout.urls.normalize_url`."""

    def match_normalized(self, host: str, key: str) -> Any: ...


def _digest_key(hexdigest: str) -> int:
    """The digest's first 64 bits as a signed integer (the sort key; equal keys are then
    compared in full)."""
    value = int(hexdigest[:16], 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def _sorted_digests(hexes: Sequence[str]) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
    """SHA-256 digests sorted by their first 64 bits, as (keys, full digests as 32-byte
    values) stacked in one record array, with the order that sorted them."""
    keys = np.fromiter(map(_digest_key, hexes), dtype=np.int64, count=len(hexes))
    order = np.argsort(keys, kind="stable")
    table = np.empty(len(hexes), dtype=[("key", np.int64), ("digest", "S32")])
    table["key"] = keys[order]
    table["digest"] = np.array([bytes.fromhex(hexes[i]) for i in order.tolist()], dtype="S32")
    return table, order.astype(np.int64)


def _find_digests(table: npt.NDArray[Any], hexes: list[str]) -> tuple[list[int], list[int]]:
    """(query index, table position) of each query digest present in `table`."""
    if not len(table) or not hexes:
        return [], []
    keys = np.fromiter(map(_digest_key, hexes), dtype=np.int64, count=len(hexes))
    order = np.argsort(keys)
    positions = np.empty(len(keys), dtype=np.intp)
    positions[order] = np.searchsorted(table["key"], keys[order])
    positions = np.minimum(positions, len(table) - 1)
    candidates = np.flatnonzero(table["key"][positions] == keys)
    found, where = [], []
    digests = table["digest"]
    for q in candidates.tolist():
        wanted = bytes.fromhex(hexes[q])
        position = int(positions[q])
        # Rare: several digests share their first 64 bits; walk the run of equal keys.
        while position < len(table) and table["key"][position] == keys[q]:
            if bytes(digests[position]).ljust(32, b"\0") == wanted:  # numpy drops end NULs
                found.append(q)
                where.append(position)
                break
            position += 1
    return found, where


@dataclass(frozen=True)
class HashRules:
    """The registry's live file-hash and pHash rules."""

    digests: npt.NDArray[Any]  # sorted S32
    digest_rules: npt.NDArray[np.int64]  # rule id per digest
    digest_created: npt.NDArray[np.int64]  # microseconds since 1970
    phashes: PHashIndex  # ids are rule ids
    phash_rules: npt.NDArray[np.int64]  # sorted rule ids of `phashes`...
    phash_created: npt.NDArray[np.int64]  # ...and their registration times

    @classmethod
    def build(
        cls,
        digests: Sequence[tuple[int, str, int]],
        phashes: Sequence[tuple[int, int, int]],
    ) -> HashRules:
        """From (rule id, sha256 hex, created) and (rule id, unsigned pHash, created)."""
        table, order = _sorted_digests([d for _, d, _ in digests])
        ids = np.array([i for i, _, _ in digests], dtype=np.int64)[order]
        created = np.array([c for _, _, c in digests], dtype=np.int64)[order]
        phash_ids = np.array([i for i, _, _ in phashes], dtype=np.int64)
        index = PHashIndex(phash_ids, np.array([h for _, h, _ in phashes], dtype=np.uint64))
        by_id = np.argsort(phash_ids, kind="stable")
        when = np.array([c for _, _, c in phashes], dtype=np.int64)
        return cls(table, ids, created, index, phash_ids[by_id], when[by_id])

    def created_of_phash(self, rule_id: int) -> int:
        return int(self.phash_created[int(np.searchsorted(self.phash_rules, rule_id))])


@dataclass(frozen=True)
class CatalogEntry:
    item_id: int
    licence: str  # LICENCES
    price_minor: int
    currency: str
    uses_mask: int  # artists.terms.PERMITTED_USES bits


@dataclass(frozen=True)
class CatalogIndex:
    """Available catalog items by image URL, SHA-256 and pHash (positions into `entries`)."""

    entries: tuple[CatalogEntry, ...]
    urls: dict[str, int]  # normalized address key -> entry position
    digests: npt.NDArray[Any]
    digest_positions: npt.NDArray[np.int64]
    phashes: PHashIndex  # ids are entry positions

    @classmethod
    def build(
        cls,
        entries: Sequence[CatalogEntry],
        urls: Sequence[tuple[int, str]],
        digests: Sequence[tuple[int, str]],
        phashes: Sequence[tuple[int, int]],
    ) -> CatalogIndex:
        """`urls`, `digests`, `phashes`: (entry position, URL / sha256 hex / unsigned pHash).
        URLs that do not parse are left out."""
        by_url: dict[str, int] = {}
        for position, url in urls:
            try:
                by_url.setdefault(normalize_url(url).key, position)
            except BadUrl:
                continue
        table, order = _sorted_digests([d for _, d in digests])
        positions = np.array([p for p, _ in digests], dtype=np.int64)[order]
        index = PHashIndex(
            np.array([p for p, _ in phashes], dtype=np.int64),
            np.array([h for _, h in phashes], dtype=np.uint64),
        )
        return cls(tuple(entries), by_url, table, positions, index)


def empty_catalog() -> CatalogIndex:
    return CatalogIndex.build([], [], [], [])


@dataclass(frozen=True)
class RegistrySnapshot:
    """Everything the classifier compares rows with, as of one moment. Picklable."""

    addresses: AddressRules
    hashes: HashRules
    catalog: CatalogIndex
    reservations: Reservations | None
    phash_distance: int
    uses: tuple[str, ...]  # artists.terms.PERMITTED_USES, in bit order
    hash_probe: int = field(default_factory=lambda: hash(_PROBE))

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("hash_probe") != hash(_PROBE):
            raise SnapshotNotPortable(
                "This registry snapshot was built in a process with another string hash seed; "
                "run every worker with the same PYTHONHASHSEED, or build the snapshot there."
            )
        for name, value in state.items():
            object.__setattr__(self, name, value)

    def uses_mask(self, intended_uses: Sequence[str]) -> int:
        unknown = [u for u in intended_uses if u not in self.uses]
        if unknown:
            raise ValueError(f"unknown intended use: {', '.join(unknown)}")
        return sum(1 << self.uses.index(u) for u in intended_uses)


@functools.lru_cache(maxsize=65536)
def _when(micros: int) -> str:
    return format_timestamp(from_micros(micros))


def classify(
    batch: pa.RecordBatch, snapshot: RegistrySnapshot, intended_uses: Sequence[str]
) -> pa.RecordBatch:
    """One RESULT_SCHEMA row per input row (manifest.BATCH_SCHEMA), in input order."""
    wanted = snapshot.uses_mask(intended_uses)
    n = batch.num_rows
    urls: list[str | None] = batch.column("url").to_pylist()
    digests: list[str | None] = batch.column("sha256").to_pylist()
    phash_column = batch.column("phash")
    valid: list[bool] = phash_column.is_valid().to_pylist()
    ranks = [UNKNOWN] * n
    evidence: list[list[dict[str, Any]] | None] = [None] * n
    problems: list[str | None] = [None] * n

    def add(i: int, rank: int, item: dict[str, Any]) -> None:
        found = evidence[i]
        if found is None:
            found = evidence[i] = []
        found.append(item)
        if rank < ranks[i]:
            ranks[i] = rank

    # Addresses.
    normalized: list[tuple[str, str]] = []
    where: list[int] = []
    for i, url in enumerate(urls):
        if url is None:
            if digests[i] is None and not valid[i]:
                problems[i] = "no URL and no hash: nothing to check"
            continue
        try:
            parsed = normalize_url(url)
        except BadUrl as exc:
            problems[i] = f"malformed URL: {exc}"
            continue
        normalized.append(parsed)
        where.append(i)
    for position, matches in snapshot.addresses.match(normalized).items():
        i = where[position]
        for kind, rule_id, when in matches:
            add(
                i,
                OPTED_OUT,
                {"source": "optout", "kind": kind, "rule": rule_id, "registered_at": _when(when)},
            )

    # File hashes.
    hashed = [i for i, d in enumerate(digests) if d is not None]
    hexes = [digests[i] for i in hashed]
    hashes = snapshot.hashes
    for q, position in zip(*_find_digests(hashes.digests, hexes), strict=True):  # type: ignore[arg-type]
        add(
            hashed[q],
            OPTED_OUT,
            {
                "source": "optout",
                "kind": "sha256",
                "rule": int(hashes.digest_rules[position]),
                "registered_at": _when(int(hashes.digest_created[position])),
            },
        )

    # Perceptual hashes: the nearest rule per row.
    looked = np.flatnonzero(np.array(valid, dtype=bool))
    values = np.asarray(phash_column.fill_null(0), dtype=np.uint64)[looked]
    distance = snapshot.phash_distance
    owners, ids, distances = (
        query_many(hashes.phashes, values, distance) if len(looked) else (_EMPTY_I64,) * 3
    )
    last = -1
    for owner, rule_id, dist in zip(owners.tolist(), ids.tolist(), distances.tolist(), strict=True):
        if owner == last:
            continue  # nearest first: one rule is evidence enough
        last = owner
        add(
            int(looked[owner]),
            OPTED_OUT,
            {
                "source": "optout",
                "kind": "phash",
                "rule": rule_id,
                "distance": dist,
                "registered_at": _when(hashes.created_of_phash(rule_id)),
            },
        )

    # Reservations, for rows the registry has not already decided.
    reservations = snapshot.reservations
    if reservations is not None:
        for i, (host, key) in zip(where, normalized, strict=True):
            if ranks[i] > RESERVED:
                hit = reservations.match_normalized(host, key)
                if hit is not None:
                    add(
                        i,
                        RESERVED,
                        {
                            "source": "reservation",
                            "kind": hit.kind,
                            "domain": hit.domain,
                            "rule": hit.rule,
                            "policy_url": hit.policy_url,
                        },
                    )

    # The catalog: each row's matching items, exact matches before near ones.
    catalog = snapshot.catalog
    found: dict[int, dict[int, tuple[str, int]]] = {}  # row -> entry -> (how, distance)
    if catalog.urls:
        for i, (_, key) in zip(where, normalized, strict=True):
            at = catalog.urls.get(key)
            if at is not None:
                found.setdefault(i, {})[at] = ("url", 0)
    for q, position in zip(*_find_digests(catalog.digests, hexes), strict=True):  # type: ignore[arg-type]
        found.setdefault(hashed[q], {}).setdefault(
            int(catalog.digest_positions[position]), ("sha256", 0)
        )
    if len(looked) and len(catalog.phashes):
        owners, ids, distances = query_many(catalog.phashes, values, distance)
        for owner, position, dist in zip(
            owners.tolist(), ids.tolist(), distances.tolist(), strict=True
        ):
            found.setdefault(int(looked[owner]), {}).setdefault(position, ("phash", dist))
    for i, items in found.items():
        for position, (how, dist) in items.items():
            entry = catalog.entries[position]
            item: dict[str, Any] = {
                "source": "catalog",
                "item": entry.item_id,
                "licence": entry.licence,
                "match": how,
            }
            if how == "phash":
                item["distance"] = dist
            if entry.licence == "licensed":
                item["price_minor"] = entry.price_minor
                item["currency"] = entry.currency
                missing = wanted & ~entry.uses_mask
                if missing:
                    item["uses_not_permitted"] = [
                        use for bit, use in enumerate(snapshot.uses) if missing & (1 << bit)
                    ]
                    add(i, UNKNOWN, item)
                else:
                    add(i, LICENSABLE, item)
            else:
                add(i, PUBLIC_DOMAIN, item)

    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    return pa.RecordBatch.from_arrays(
        [
            batch.column("row"),
            batch.column("url"),
            pa.array([CLASSES[r] for r in ranks], pa.string()),
            pa.array(["[]" if e is None else dumps(e) for e in evidence], pa.string()),
            pa.array(problems, pa.string()),
        ],
        schema=RESULT_SCHEMA,
    )
