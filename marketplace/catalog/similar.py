"""Similar works: available catalog items whose image pHash is near a query's.

The search runs on `marketplace.similarity.index.PHashIndex`, built from every available item
with a pHash and cached per app in each process. Before using it, a query reads the catalog's
state (max item id and max `updated_at`: two index seeks) and rebuilds the index when that has
moved, and in any case every REBUILD_AFTER_SECONDS (a transaction that commits after a later
one can carry an older timestamp). Consent never depends on that freshness: every hit is checked
against the database (available now) before it is returned, so a stale index can hide a new
work for a while but can never show a withdrawn or opted-out one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace import imaging
from marketplace.artists.models import Work
from marketplace.catalog.models import CatalogItem, StockRecord
from marketplace.catalog.services import CatalogError, get_item
from marketplace.similarity.index import PHashIndex

DEFAULT_MAX_DISTANCE = 12  # of 64 bits; unrelated pictures sit near 32 (a chance hit: ~1e-6)
MAX_DISTANCE = 20  # beyond this pHash says little, and the index falls back to a scan
STRIP_SIZE = 8  # the item page's "similar works"
MAX_LIMIT = 48  # one search page
REBUILD_AFTER_SECONDS = 600


class NoImageHash(CatalogError):
    """The item has no image to compare yet (stock not mirrored)."""


@dataclass(frozen=True)
class SimilarItem:
    item: CatalogItem
    distance: int  # Hamming distance between the pHashes, 0..64


@dataclass(frozen=True)
class _Built:
    state: tuple[Any, ...]
    index: PHashIndex
    built_at: float  # time.monotonic()


class _Holder:
    """One app's cached index; the lock keeps concurrent requests from building it twice."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.built: _Built | None = None


def _catalog_state(session: Session) -> tuple[Any, ...]:
    """What changes whenever an item is added or changed. Two statements, not one: SQLite
    answers a lone max() from the index, but scans the table for two in one SELECT."""
    return (
        session.scalar(select(func.max(CatalogItem.id))),
        session.scalar(select(func.max(CatalogItem.updated_at))),
    )


def build_index(session: Session) -> PHashIndex:
    """The index of every available catalog item with a pHash (artists' works and stock)."""
    phash = func.coalesce(Work.phash, StockRecord.phash)
    rows = session.execute(
        select(CatalogItem.id, phash)
        .outerjoin(Work, Work.id == CatalogItem.work_id)
        .outerjoin(StockRecord, StockRecord.id == CatalogItem.stock_id)
        .where(CatalogItem.available.is_(True), phash.is_not(None))
    ).all()
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    hashes = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))
    return PHashIndex.from_signed(ids, hashes)


def current_index(session: Session) -> PHashIndex:
    """This app's index, rebuilt first if the catalog has changed since it was built."""
    holder = current_app.extensions.setdefault("similar_works", _Holder())
    state = _catalog_state(session)

    def fresh(built: _Built | None) -> bool:
        return (
            built is not None
            and built.state == state
            and time.monotonic() - built.built_at < REBUILD_AFTER_SECONDS
        )

    if fresh(holder.built):
        assert holder.built is not None
        return holder.built.index
    with holder.lock:
        if not fresh(holder.built):
            # The state read before the load: a change made meanwhile triggers the next rebuild.
            holder.built = _Built(state, build_index(session), time.monotonic())
        assert holder.built is not None
        return holder.built.index


def similar_items(
    session: Session,
    phash: int,
    *,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    limit: int = STRIP_SIZE,
    exclude_item_id: int | None = None,
) -> list[SimilarItem]:
    """Available items within `max_distance` of the unsigned `phash`, nearest first (ties by
    id). Each hit is re-checked in the database, so only items available now come back."""
    index = current_index(session)
    wanted = limit + (1 if exclude_item_id is not None else 0)
    fetch = wanted * 2 + 8  # room for hits withdrawn since the index was built
    while True:
        hits = index.query(phash, max_distance, fetch)
        ids = [item_id for _, item_id in hits if item_id != exclude_item_id]
        available = {
            item.id: item
            for item in session.scalars(
                select(CatalogItem).where(CatalogItem.id.in_(ids), CatalogItem.available.is_(True))
            )
        }
        found = [
            SimilarItem(available[item_id], distance)
            for distance, item_id in hits
            if item_id in available
        ]
        if len(found) >= limit or len(hits) < fetch:
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


def similar_to_item(
    session: Session,
    item_id: int,
    *,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    limit: int = STRIP_SIZE,
) -> list[SimilarItem]:
    """Items like an available item, itself excluded. ItemNotFound if it is not available,
    NoImageHash if it has no image yet."""
    item = get_item(session, item_id)
    phash = item_phash(session, item)
    if phash is None:
        raise NoImageHash(f"Work {item_id} has no image to compare yet.")
    return similar_items(
        session, phash, max_distance=max_distance, limit=limit, exclude_item_id=item.id
    )
