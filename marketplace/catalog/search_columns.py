"""Searches without words answered from a columnar copy of the catalog kept in memory.

Filters alone, and the empty search (the catalog's first page), match most of the catalog:
exact facet counts over nearly every document cost tantivy hundreds of milliseconds at a
million works. Each process therefore keeps, per app, one numpy array per filter field indexed
by item id (from the database, the source of truth, like the index) and answers the exact
total, every facet and the newest-first pages of such searches with vectorised masks and
`np.bincount`. The four small facets (licence, source, orientation, image) are folded into one
cell code per work, so a single `bincount` gives all four, each with the other three's
filters applied. Totals and facets of a filter set are cached until the columns change.
Text searches stay with tantivy.

Freshness: the index writer appends the ids it has just updated to `changes.u32` in the index
folder (after its commit); every search stats that file and re-reads the rows of new ids by
primary key, and a new index generation (a rebuild) reloads everything. A large catalog loads
in a background thread while searches use tantivy alone (or the previous columns).

Consent never depends on this: every page is checked against the database before it is
returned (`search_index._consented`), so stale columns can miscount a total for a moment but
never show a withdrawn work.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask, current_app
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from marketplace.artists.terms import uses_mask
from marketplace.catalog import search
from marketplace.catalog.models import CatalogItem, CatalogLicense, Orientation
from marketplace.db import get_database

LOG_NAME = "changes.u32"
INLINE_MAX = 200_000  # up to this many indexed works, load the columns in the request itself
DELTA_MAX = 50_000  # changed ids re-read in a request; more and the columns reload instead
STATS_CACHE = 256  # filter sets whose totals and facets are kept per process and app
_CHUNK = 1 << 16  # ids scanned at a time for a page
_LOAD_BATCH = 50_000
_YEAR_MIN, _YEAR_MAX = -32768, 32767  # int16; a missing year fails every year filter
_I32_MAX = 2**31 - 1

_LICENSES = tuple(CatalogLicense)
_ORIENTATIONS = tuple(Orientation)
_LICENSE_CODE = {value: code for code, value in enumerate(_LICENSES)}
_ORIENTATION_CODE = {value: code for code, value in enumerate(_ORIENTATIONS)}

COLUMNS = (
    CatalogItem.id,
    CatalogItem.license,
    CatalogItem.source,
    CatalogItem.orientation,
    CatalogItem.has_image,
    CatalogItem.creator,
    CatalogItem.medium,
    CatalogItem.year_start,
    CatalogItem.year_end,
    CatalogItem.width,
    CatalogItem.height,
    CatalogItem.price_minor,
    CatalogItem.permitted_uses,
)
_BATCH = (
    select(*COLUMNS)
    .where(CatalogItem.available.is_(True), CatalogItem.id > bindparam("after"))
    .order_by(CatalogItem.id)
    .limit(bindparam("limit"))
)
_AMONG = select(*COLUMNS).where(
    CatalogItem.available.is_(True), CatalogItem.id.in_(bindparam("ids", expanding=True))
)


def log_changes(root: Path, item_ids: Iterable[int]) -> None:
    """Tell every process's columns that these items changed (called after an index commit)."""
    ids = np.fromiter((int(i) for i in item_ids), dtype=np.uint32)
    if len(ids):
        root.mkdir(parents=True, exist_ok=True)
        with open(root / LOG_NAME, "ab") as log:  # one append: whole records, never torn
            log.write(ids.tobytes())


class _Names:
    """Strings (sources, creators, media) as small integer codes; code 0 is ""."""

    def __init__(self) -> None:
        self.values: list[str] = [""]
        self.codes: dict[str, int] = {"": 0}

    def code(self, value: str | None) -> int:
        value = value or ""
        code = self.codes.get(value)
        if code is None:
            code = self.codes[value] = len(self.values)
            self.values.append(value)
        return code


@dataclass(frozen=True)
class Stats:
    total: int
    facets: list[search.Facet]


class Columns:
    """The filter fields of every available item, one array each, indexed by item id."""

    _ARRAYS = (
        ("available", np.bool_, False),
        ("license", np.uint8, 0),
        ("source", np.int32, 0),
        ("orientation", np.uint8, 0),
        ("has_image", np.uint8, 0),
        ("cell", np.int32, 0),
        ("creator", np.int32, 0),
        ("medium", np.int32, 0),
        ("year_first", np.int16, _YEAR_MAX),
        ("year_last", np.int16, _YEAR_MIN),
        ("width", np.int32, -1),
        ("height", np.int32, -1),
        ("price", np.int64, 0),
        ("uses", np.int32, 0),
    )

    def __init__(self, capacity: int = 1024) -> None:
        self.size = 0
        for name, dtype, fill in self._ARRAYS:
            setattr(self, name, np.full(capacity, fill, dtype=dtype))
        self.sources, self.creators, self.media = _Names(), _Names(), _Names()
        self.source_slots = 8  # cell = ((license * slots + source) * orientations + o) * 2 + img
        self.version = 0

    # Writing ------------------------------------------------------------------------------

    def _grow(self, needed: int) -> None:
        capacity = len(self.available)  # type: ignore[attr-defined]
        if needed <= capacity:
            return
        capacity = max(needed, capacity * 2)
        for name, dtype, fill in self._ARRAYS:
            old = getattr(self, name)
            new = np.full(capacity, fill, dtype=dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def _cells(self, ids: Any) -> Any:
        license = self.license[ids].astype(np.int32)  # type: ignore[attr-defined]
        source = self.source[ids]  # type: ignore[attr-defined]
        orientation = self.orientation[ids].astype(np.int32)  # type: ignore[attr-defined]
        image = self.has_image[ids].astype(np.int32)  # type: ignore[attr-defined]
        return ((license * self.source_slots + source) * len(_ORIENTATIONS) + orientation) * 2 + (
            image
        )

    def withdraw(self, ids: Sequence[int]) -> None:
        inside = np.asarray([i for i in ids if i < len(self.available)], dtype=np.int64)  # type: ignore[attr-defined]
        if len(inside):
            self.available[inside] = False  # type: ignore[attr-defined]

    def put(self, rows: Sequence[Any]) -> None:
        """Set the items of these rows (COLUMNS, each available) from the database."""
        if not rows:
            return
        n = len(rows)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
        self._grow(int(ids.max()) + 1)
        self.size = max(self.size, int(ids.max()) + 1)

        def column(index: int, convert: Any, dtype: Any) -> Any:
            return np.fromiter((convert(r[index]) for r in rows), dtype=dtype, count=n)

        self.license[ids] = column(1, _LICENSE_CODE.__getitem__, np.uint8)  # type: ignore[attr-defined]
        self.source[ids] = column(2, self.sources.code, np.int32)  # type: ignore[attr-defined]
        self.orientation[ids] = column(3, _ORIENTATION_CODE.__getitem__, np.uint8)  # type: ignore[attr-defined]
        self.has_image[ids] = column(4, bool, np.uint8)  # type: ignore[attr-defined]
        self.creator[ids] = column(5, self.creators.code, np.int32)  # type: ignore[attr-defined]
        self.medium[ids] = column(6, self.media.code, np.int32)  # type: ignore[attr-defined]
        self.year_first[ids] = column(7, _year_first, np.int16)  # type: ignore[attr-defined]
        self.year_last[ids] = np.fromiter(  # type: ignore[attr-defined]
            (_year_last(r[7], r[8]) for r in rows), dtype=np.int16, count=n
        )
        self.width[ids] = column(9, _pixels, np.int32)  # type: ignore[attr-defined]
        self.height[ids] = column(10, _pixels, np.int32)  # type: ignore[attr-defined]
        self.price[ids] = column(11, int, np.int64)  # type: ignore[attr-defined]
        self.uses[ids] = column(12, int, np.int32)  # type: ignore[attr-defined]
        if len(self.sources.values) > self.source_slots:  # a new source: widen every cell
            while len(self.sources.values) > self.source_slots:
                self.source_slots *= 2
            self.cell[: self.size] = self._cells(slice(0, self.size))  # type: ignore[attr-defined]
        else:
            self.cell[ids] = self._cells(ids)  # type: ignore[attr-defined]
        self.available[ids] = True  # type: ignore[attr-defined]

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name, _dtype, _fill in self._ARRAYS)

    # Reading ------------------------------------------------------------------------------

    def _base(self, query: search.SearchQuery) -> Any:
        """Available items passing the range and uses filters (not the faceted ones)."""
        n = self.size
        mask = self.available[:n].copy()  # type: ignore[attr-defined]
        if query.year_from is not None:
            mask &= self.year_last[:n] >= query.year_from  # type: ignore[attr-defined]
        if query.year_to is not None:
            mask &= self.year_first[:n] <= query.year_to  # type: ignore[attr-defined]
        if query.min_width is not None:
            mask &= self.width[:n] >= query.min_width  # type: ignore[attr-defined]
        if query.min_height is not None:
            mask &= self.height[:n] >= query.min_height  # type: ignore[attr-defined]
        if query.price_min is not None:
            mask &= self.price[:n] >= query.price_min  # type: ignore[attr-defined]
        if query.price_max is not None:
            mask &= self.price[:n] <= query.price_max  # type: ignore[attr-defined]
        if query.uses:
            wanted = uses_mask(query.uses)
            mask &= (self.uses[:n] & wanted) == wanted  # type: ignore[attr-defined]
        return mask

    def _named(self, names: _Names, column: Any, value: str | None) -> Any:
        """The items whose `column` is `value` (None: no such filter)."""
        if not value:
            return None
        code = names.codes.get(value)
        if code is None:
            return np.zeros(self.size, dtype=np.bool_)
        return column[: self.size] == code

    def _selections(self, query: search.SearchQuery) -> list[Any]:
        """Per small facet, which of its codes the query keeps (all of them when unfiltered)."""
        license = np.ones(len(_LICENSES), dtype=np.bool_)
        if query.license:
            license[:] = False
            license[[_LICENSE_CODE[v] for v in query.license]] = True
        source = np.ones(self.source_slots, dtype=np.bool_)
        if query.source:
            source[:] = False
            codes = [self.sources.codes[v] for v in query.source if v in self.sources.codes]
            source[codes] = True
        orientation = np.ones(len(_ORIENTATIONS), dtype=np.bool_)
        if query.orientation:
            orientation[:] = False
            orientation[[_ORIENTATION_CODE[v] for v in query.orientation]] = True
        image = np.ones(2, dtype=np.bool_)
        if query.has_image is not None:
            image[:] = False
            image[int(query.has_image)] = True
        return [license, source, orientation, image]

    def evaluate(self, query: search.SearchQuery, *, stats: bool) -> tuple[Any, Stats | None]:
        """The mask of every match (by item id), and with `stats` its exact total and facets."""
        base = self._base(query)
        by_creator = self._named(self.creators, self.creator, query.creator)  # type: ignore[attr-defined]
        by_medium = self._named(self.media, self.medium, query.medium)  # type: ignore[attr-defined]
        named = base
        for extra in (by_creator, by_medium):
            if extra is not None:
                named = named & extra
        selections = self._selections(query)
        small_filtered = bool(
            query.license or query.source or query.orientation or query.has_image is not None
        )
        allowed = _outer(selections)
        cell = self.cell[: self.size]  # type: ignore[attr-defined]
        full = named & allowed[cell] if small_filtered else named
        if not stats:
            return full, None
        shape = (len(_LICENSES), self.source_slots, len(_ORIENTATIONS), 2)
        cube = np.bincount(cell[named], minlength=int(np.prod(shape))).reshape(shape)
        total = int(cube[allowed.reshape(shape)].sum())
        counts: dict[str, list[tuple[str, int]]] = {}
        labels = (
            [v.value for v in _LICENSES],
            self.sources.values,
            [v.value for v in _ORIENTATIONS],
            ["false", "true"],
        )
        for axis, name in enumerate(("license", "source", "orientation", "has_image")):
            keep = [s if other != axis else np.ones_like(s) for other, s in enumerate(selections)]
            per_value = cube[np.ix_(*keep)].sum(axis=tuple(a for a in range(4) if a != axis))
            counts[name] = [
                (labels[axis][code], int(n))
                for code, n in enumerate(per_value.tolist())
                if n and code < len(labels[axis]) and labels[axis][code] != ""
            ]
        for name, names, column, own in (
            ("creator", self.creators, self.creator, by_creator),  # type: ignore[attr-defined]
            ("medium", self.media, self.medium, by_medium),  # type: ignore[attr-defined]
        ):
            if own is None:
                mask = full
            else:  # the facet's own filter left out, every other one kept
                mask = base
                other = by_medium if name == "creator" else by_creator
                if other is not None:
                    mask = mask & other
                if small_filtered:
                    mask = mask & allowed[cell]
            per_code = np.bincount(column[: self.size][mask], minlength=len(names.values))
            counts[name] = _top(per_code, names.values)
        facets = [
            search.Facet(
                name, sorted(counts[name], key=lambda kv: (-kv[1], kv[0]))[: search.FACET_TOP]
            )
            for name in search.FACETS
        ]
        return full, Stats(total, facets)

    def newest(self, mask: Any, position: search.Position | None, limit: int) -> list[int]:
        """Up to `limit` ids of `mask` newest first after `position` (or, walking back,
        the ones just before it, nearest first)."""
        found: list[int] = []
        if position is None or position.forward:
            end = self.size if position is None else min(position.row_id, self.size)
            while end > 0 and len(found) < limit:
                start = max(0, end - _CHUNK)
                hits = np.flatnonzero(mask[start:end])
                found.extend((hits[::-1][: limit - len(found)] + start).tolist())
                end = start
        else:
            start = position.row_id + 1
            while start < self.size and len(found) < limit:
                end = min(self.size, start + _CHUNK)
                hits = np.flatnonzero(mask[start:end])
                found.extend((hits[: limit - len(found)] + start).tolist())
                start = end
        return found


def _outer(selections: Sequence[Any]) -> Any:
    """Which cells the small facets' filters keep, flat, in the cell code's order."""
    allowed = selections[0]
    for selection in selections[1:]:
        allowed = np.logical_and.outer(allowed, selection)
    return allowed.reshape(-1)


def _top(per_code: Any, values: list[str]) -> list[tuple[str, int]]:
    """The FACET_TOP largest counts (ties by name), the empty value left out."""
    per_code = per_code.copy()
    per_code[0] = 0
    k = search.FACET_TOP
    if len(per_code) > k:
        threshold = np.partition(per_code, len(per_code) - k)[len(per_code) - k]
        codes = np.flatnonzero(per_code >= max(threshold, 1))
    else:
        codes = np.flatnonzero(per_code)
    return [(values[c], int(per_code[c])) for c in codes.tolist()]


def _year_first(year: int | None) -> int:
    return _YEAR_MAX if year is None else max(_YEAR_MIN + 1, min(year, _YEAR_MAX - 1))


def _year_last(start: int | None, end: int | None) -> int:
    latest = end if end is not None else start
    return _YEAR_MIN if latest is None else max(_YEAR_MIN + 1, min(latest, _YEAR_MAX - 1))


def _pixels(value: int | None) -> int:
    return -1 if value is None else min(value, _I32_MAX)


# --- Per app: loading, following the index's changes, caching stats --------------------------


def load(session: Session) -> Columns:
    """Columns of every available item, read from the database in id order."""
    columns = Columns()
    connection = session.connection()
    after = 0
    while True:
        rows = connection.execute(_BATCH, {"after": after, "limit": _LOAD_BATCH}).all()
        if not rows:
            break
        columns.put(rows)
        after = rows[-1][0]
    return columns


class _Holder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.columns: Columns | None = None
        self.generation: Path | None = None
        self.offset = 0  # bytes of the change log applied
        self.loading: threading.Thread | None = None
        self.stats: OrderedDict[tuple[int, search.SearchQuery], Stats] = OrderedDict()


def _log_size(root: Path) -> int:
    try:
        return (root / LOG_NAME).stat().st_size // 4 * 4
    except FileNotFoundError:
        return 0


def _load_into(holder: _Holder, session: Session, root: Path, generation: Path) -> None:
    offset = _log_size(root)  # read first: a change logged during the load is applied again
    columns = load(session)
    with holder.lock:
        if holder.columns is not None:
            columns.version = holder.columns.version + 1
        holder.columns, holder.generation, holder.offset = columns, generation, offset
        holder.stats.clear()


def _load_in_background(app: Flask, holder: _Holder, root: Path, generation: Path) -> None:
    if holder.loading is not None and holder.loading.is_alive():
        return

    def run() -> None:
        with app.app_context():
            session = get_database(app).sessions()
            try:
                _load_into(holder, session, root, generation)
            finally:
                session.close()

    holder.loading = threading.Thread(target=run, name="search-columns", daemon=True)
    holder.loading.start()


def _apply_changes(holder: _Holder, session: Session, root: Path, size: int) -> bool:
    """Re-read the items logged since the last look; False if there are too many."""
    with open(root / LOG_NAME, "rb") as log:
        log.seek(holder.offset)
        data = log.read(size - holder.offset)
    ids = sorted(set(np.frombuffer(data[: len(data) // 4 * 4], dtype=np.uint32).tolist()))
    if len(ids) > DELTA_MAX:
        return False
    rows: list[Any] = []
    connection = session.connection()
    for start in range(0, len(ids), 1000):
        rows += connection.execute(_AMONG, {"ids": ids[start : start + 1000]}).all()
    with holder.lock:
        columns = holder.columns
        assert columns is not None
        columns.withdraw(ids)
        columns.put(rows)
        columns.version += 1
        holder.offset = size
        holder.stats.clear()
    return True


def warm(session: Session, root: Path, generation: Path) -> Columns:
    """Load this app's columns now, whatever the catalog's size (a worker's start, benches)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    holder: _Holder = app.extensions.setdefault("search_columns", _Holder())
    _load_into(holder, session, root, generation)
    assert holder.columns is not None
    return holder.columns


def current(session: Session, root: Path, generation: Path, indexed: int) -> _Holder | None:
    """This app's columns, brought up to the index's latest changes; None while a large
    catalog's first load runs in the background (the caller asks tantivy instead)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    holder: _Holder = app.extensions.setdefault("search_columns", _Holder())
    inline = indexed <= INLINE_MAX
    if holder.columns is None or holder.generation != generation:
        if inline:
            _load_into(holder, session, root, generation)
        else:
            _load_in_background(app, holder, root, generation)
            return holder if holder.columns is not None else None
        return holder
    size = _log_size(root)
    if size < holder.offset:  # the log was replaced: start again
        if inline:
            _load_into(holder, session, root, generation)
        else:
            _load_in_background(app, holder, root, generation)
    elif size > holder.offset and not _apply_changes(holder, session, root, size):
        _load_in_background(app, holder, root, generation)
    return holder


def evaluate(
    holder: _Holder, query: search.SearchQuery, *, stats: bool
) -> tuple[Columns, Any, Stats | None]:
    """The columns, the matches' mask on them and (with `stats`) the matches' total and
    facets, cached per filter set until the columns change."""
    key_query = replace(query, q="", sort="relevance", limit=0, cursor=None)
    with holder.lock:
        columns = holder.columns
        assert columns is not None
        key = (columns.version, key_query)
        cached = holder.stats.get(key) if stats else None
        if cached is not None:
            holder.stats.move_to_end(key)
            mask, _ = columns.evaluate(query, stats=False)
            return columns, mask, cached
        mask, found = columns.evaluate(query, stats=stats)
        if found is not None:
            holder.stats[key] = found
            while len(holder.stats) > STATS_CACHE:
                holder.stats.popitem(last=False)
        return columns, mask, found
