"""Similar works: available catalog items whose image pHash is near a query's.

The search runs on `marketplace.similarity.index.PHashIndex`, built from every available item
with a pHash and cached per app in each process. A query also reads the items changed since
the index was built (`updated_at` after the newest one it holds: one seek on that column's
index, and no rows while nothing changes) and scans those few by brute force, their fresh
hashes overriding the index's; past DELTA_MAX changed items the index is rebuilt. So new works
show up at once without rebuilding a million entries per change. A transaction that commits
after a later one can carry an older timestamp than the index's newest; such a change waits
for the rebuild every REBUILD_AFTER_SECONDS (hidden for a while, never wrongly shown). Strictly
after, not at or after: a bulk load gives thousands of rows one timestamp.

Consent never depends on that freshness: every hit is checked against the database (available
now) before it is returned, so a stale index can hide a work but never show a withdrawn or
opted-out one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from flask import Flask, current_app
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from marketplace import imaging
from marketplace.artists.models import Work
from marketplace.catalog.models import CatalogItem, StockRecord
from marketplace.catalog.services import CatalogError, get_item
from marketplace.db import get_database
from marketplace.similarity.index import PHashIndex, brute_force

DEFAULT_MAX_DISTANCE = 12  # of 64 bits; unrelated pictures sit near 32 (a chance hit: ~1e-6)
MAX_DISTANCE = 20  # beyond this pHash says little, and the index falls back to a scan
STRIP_SIZE = 8  # the item page's "similar works"
MAX_LIMIT = 48  # one search page
REBUILD_AFTER_SECONDS = 600
DELTA_MAX = 2_000  # changed items scanned beside the index before it is rebuilt
# Decoding an upload costs far more than a text search: a per-client budget (API and page).
RATE_LIMIT = "60 per minute"
# One budget per client shared by the API route and the page's upload form.
RATE_LIMIT_SCOPE = "similar-works"


class NoImageHash(CatalogError):
    """The item has no image to compare yet (stock not mirrored)."""


@dataclass(frozen=True)
class SimilarItem:
    item: CatalogItem
    distance: int  # Hamming distance between the pHashes, 0..64


@dataclass(frozen=True)
class _Built:
    index: PHashIndex
    newest: datetime | None  # the largest updated_at when it was built
    built_at: float  # time.monotonic()


class _Holder:
    """One app's cached index, and the thread rebuilding it, if one is."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.built: _Built | None = None
        self.rebuilding: threading.Thread | None = None


class IndexNotReady(CatalogError):
    """This process's first index is still being built (the item page shows no strip)."""


_PHASH = func.coalesce(Work.phash, StockRecord.phash)
# (item id, signed pHash) of every available item with an image hash. Built once: composing
# the statement per query cost more than running it.
_PHASH_ROWS = (
    select(CatalogItem.id, _PHASH)
    .outerjoin(Work, Work.id == CatalogItem.work_id)
    .outerjoin(StockRecord, StockRecord.id == CatalogItem.stock_id)
    .where(CatalogItem.available.is_(True), _PHASH.is_not(None))
)
_ALL_IDS = select(CatalogItem.id)
_IDS_SINCE = select(CatalogItem.id).where(CatalogItem.updated_at > bindparam("newest"))
_AVAILABLE_AMONG = select(CatalogItem).where(
    CatalogItem.id.in_(bindparam("ids", expanding=True)), CatalogItem.available.is_(True)
)
_PHASH_ROWS_AMONG = _PHASH_ROWS.where(CatalogItem.id.in_(bindparam("ids", expanding=True)))


def _arrays(rows: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, unsigned hashes) from (id, signed pHash) rows."""
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    signed = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))
    return ids, signed.view(np.uint64)


def build_index(session: Session) -> PHashIndex:
    """The index of every available catalog item with a pHash (artists' works and stock)."""
    # On the Core connection: ORM result handling would cost more than the query itself.
    ids, hashes = _arrays(list(session.connection().execute(_PHASH_ROWS).fetchall()))
    return PHashIndex(ids, hashes)


def _changed_since(session: Session, newest: datetime | None) -> list[Any] | None:
    """(id, signed pHash) of available items changed after `newest` (all of them when
    None: built from an empty catalog); None past DELTA_MAX, to rebuild instead. The ids come
    first on their own, so that the planner takes the updated_at index rather than a scan of
    every available item. Withdrawn items need no row: the database check drops them."""
    if newest is None:
        ids = list(session.scalars(_ALL_IDS.limit(DELTA_MAX + 1)))
    else:
        ids = list(session.scalars(_IDS_SINCE.limit(DELTA_MAX + 1), {"newest": newest}))
    if len(ids) > DELTA_MAX:
        return None
    return list(session.execute(_PHASH_ROWS_AMONG, {"ids": ids}).all()) if ids else []


def _build(session: Session) -> _Built:
    # Read first: a change committed during the load is newer, so in a later delta.
    newest = session.scalar(select(func.max(CatalogItem.updated_at)))
    return _Built(build_index(session), newest, time.monotonic())


def _rebuild_in_background(app: Flask, holder: _Holder) -> None:
    """Replace the index from a thread with its own session: loading a million rows takes
    seconds, and queries meanwhile keep the old index (hiding at worst, never showing)."""
    with holder.lock:
        if holder.rebuilding is not None and holder.rebuilding.is_alive():
            return

        def run() -> None:
            with app.app_context():
                session = get_database(app).sessions()
                try:
                    holder.built = _build(session)
                finally:
                    session.close()

        holder.rebuilding = threading.Thread(target=run, name="similar-works-index", daemon=True)
        holder.rebuilding.start()


def _current(session: Session, *, wait: bool) -> tuple[PHashIndex, np.ndarray, np.ndarray]:
    """This app's index and the (ids, hashes) changed since it was built. Without an index
    yet, build one now (`wait`) or start building it and raise IndexNotReady; an old or far
    behind index is rebuilt in the background while this query uses it."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    holder: _Holder = app.extensions.setdefault("similar_works", _Holder())
    built = holder.built
    if built is None:
        if not wait:
            _rebuild_in_background(app, holder)
            raise IndexNotReady("The similar-works index is being built.")
        rebuilding = holder.rebuilding
        if rebuilding is not None:
            rebuilding.join()
        with holder.lock:
            if holder.built is None:
                holder.built = _build(session)
            return holder.built.index, *_arrays([])
    delta = _changed_since(session, built.newest)
    if delta is None or time.monotonic() - built.built_at >= REBUILD_AFTER_SECONDS:
        _rebuild_in_background(app, holder)
    return built.index, *_arrays(delta or [])


def current_index(session: Session) -> PHashIndex:
    """This app's cached index (built first if there is none yet)."""
    return _current(session, wait=True)[0]


def similar_items(
    session: Session,
    phash: int,
    *,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    limit: int = STRIP_SIZE,
    exclude_item_id: int | None = None,
    wait: bool = True,
) -> list[SimilarItem]:
    """Available items within `max_distance` of the unsigned `phash`, nearest first (ties by
    id). Each hit is re-checked in the database, so only items available now come back.
    IndexNotReady without `wait` while the first index is built."""
    index, changed_ids, changed_hashes = _current(session, wait=wait)
    changed = set(changed_ids.tolist())
    recent = brute_force(changed_ids, changed_hashes, phash, max_distance)
    fetch = limit * 2 + 8  # room for hits withdrawn since the index was built
    while True:
        hits = index.query(phash, max_distance, fetch)
        truncated = len(hits) == fetch
        merged = sorted([hit for hit in hits if hit[1] not in changed] + recent)
        if truncated:  # past the index's last hit, its unfetched entries could come first
            merged = [hit for hit in merged if hit <= hits[-1]]
        ids = [item_id for _, item_id in merged if item_id != exclude_item_id]
        available = {item.id: item for item in session.scalars(_AVAILABLE_AMONG, {"ids": ids})}
        found = [SimilarItem(available[i], distance) for distance, i in merged if i in available]
        if len(found) >= limit or not truncated:
            return found[:limit]
        fetch *= 4


def item_phash(session: Session, item: CatalogItem) -> int | None:
    """The item's unsigned pHash, or None while it has no image (stock not mirrored yet)."""
    if item.work_id is not None:
        value = session.scalar(select(Work.phash).where(Work.id == item.work_id))
    elif item.stock_id is not None:
        value = session.scalar(select(StockRecord.phash).where(StockRecord.id == item.stock_id))
    else:
        value = None
    return imaging.from_signed64(int(value)) if value is not None else None


def item_query(session: Session, item_id: int) -> tuple[CatalogItem, int]:
    """An available item and its unsigned pHash, to search from. ItemNotFound if it is not
    available, NoImageHash if it has no image yet."""
    item = get_item(session, item_id)
    phash = item_phash(session, item)
    if phash is None:
        raise NoImageHash(f"Work {item_id} has no image to compare yet.")
    return item, phash


def similar_to_item(
    session: Session,
    item_id: int,
    *,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    limit: int = STRIP_SIZE,
    wait: bool = True,
) -> list[SimilarItem]:
    """Items like an available item, itself excluded (errors as `item_query` and
    `similar_items`)."""
    item, phash = item_query(session, item_id)
    return similar_items(
        session, phash, max_distance=max_distance, limit=limit, exclude_item_id=item.id, wait=wait
    )
