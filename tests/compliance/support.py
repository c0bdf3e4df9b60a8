"""Manifests and registry snapshots for the compliance tests, built in memory."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from marketplace.artists.terms import PERMITTED_USES
from marketplace.compliance.classifier import (
    CatalogEntry,
    CatalogIndex,
    HashRules,
    RegistrySnapshot,
    empty_catalog,
)
from marketplace.compliance.manifest import BATCH_SCHEMA
from marketplace.optout import snapshot as address_snapshot

WHEN = 1_764_000_000_000_000  # 2025-11-24, microseconds


def snapshot(
    *,
    addresses: Sequence[tuple[int, str, str, str]] = (),
    digests: Sequence[tuple[int, str]] = (),
    phashes: Sequence[tuple[int, int]] = (),
    catalog: CatalogIndex | None = None,
    reservations: Any = None,
    distance: int = 6,
) -> RegistrySnapshot:
    """`addresses`: (rule id, kind, value, host) as the registry normalizes them."""
    rules = address_snapshot.build(
        [(i, kind, value, host, WHEN, None) for i, kind, value, host in addresses], 1
    )
    return RegistrySnapshot(
        addresses=rules,
        hashes=HashRules.build(
            [(i, d, WHEN) for i, d in digests], [(i, h, WHEN) for i, h in phashes]
        ),
        catalog=catalog or empty_catalog(),
        reservations=reservations,
        phash_distance=distance,
        uses=PERMITTED_USES,
    )


def catalog(
    entries: Sequence[tuple[CatalogEntry, str | None, str | None, int | None]],
) -> CatalogIndex:
    """(entry, image URL, sha256, pHash) per item."""
    return CatalogIndex.build(
        [e for e, _, _, _ in entries],
        [(p, url) for p, (_, url, _, _) in enumerate(entries) if url],
        [(p, d) for p, (_, _, d, _) in enumerate(entries) if d],
        [(p, h) for p, (_, _, _, h) in enumerate(entries) if h is not None],
    )


def batch(rows: Sequence[dict[str, Any]]) -> pa.RecordBatch:
    columns = {name: [r.get(name) for r in rows] for name in BATCH_SCHEMA.names}
    columns["row"] = [r.get("row", n) for n, r in enumerate(rows, start=1)]
    return pa.RecordBatch.from_pydict(columns, schema=BATCH_SCHEMA)


def webdataset(path: Path, samples: Sequence[tuple[str, dict[str, bytes]]]) -> Path:
    """A tar shard: for each (key, {extension: bytes}), files key.extension side by side."""
    with tarfile.open(path, "w") as tar:
        for key, files in samples:
            for extension, data in files.items():
                info = tarfile.TarInfo(f"{key}.{extension}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def jsonl(path: Path, rows: Sequence[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
