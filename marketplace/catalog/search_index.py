"""The tantivy search engine: an embedded full-text index beside the database, which stays
the source of truth.

The index holds one document per *available* catalog item: its descriptive text (analysed:
lower case, accents folded, English stems), the filter values as raw terms and fast fields,
and composite sort keys. A search asks the index for ids in order, an exact total and exact
facet counts, then checks the page against the database (`_consented`): an item withdrawn,
taken down or opted out since the index was written is dropped and the page refilled, so a
lagging index can only hide a work, never show one.

User text never reaches tantivy's query parser: each word becomes term queries built here.

Files live in SEARCH_INDEX_DIR as `gen-<n>/` folders and a `current` symlink; a rebuild
writes a new generation and swaps the link atomically. One writer at a time (tantivy's lock,
retried); every process reads, reloading when the index's meta file or the link changes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import tantivy
from breame.data.spelling_constants import (
    AMERICAN_ENGLISH_SPELLINGS,
    BRITISH_ENGLISH_SPELLINGS,
)
from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.artists.terms import PERMITTED_USES, uses_mask
from marketplace.catalog import search, search_columns
from marketplace.catalog.models import CatalogItem
from marketplace.db import utcnow

# Field boosts: a word in the title says most about a work, then who made it, then its
# subjects (tags: the museums' culture, classification, department, subjects), then the rest.
TEXT_FIELDS = {
    "title": 4.0,
    "creator_text": 3.0,
    "tags": 2.0,
    "medium_text": 1.5,
    "institution": 1.0,
    "description": 1.0,
}
PREFIX_BOOST = 0.5  # "landsc" finds "landscape", below works that hold the whole word
ALL_WORDS_BOOST = 2.0  # a work holding every word ranks above one holding most of them
MIN_PREFIX = 2
_SEGMENT_TERMS = 1000  # terms each segment reports per facet before the merge
_ID_BITS = 32  # ids fit in 32 bits (cursors.is_row_id); prices above 2**31 - 1 tie
_MAX_PRICE_KEY = 2**31 - 1
_WRITER_HEAP = 64_000_000
_ANALYZER = "en_fold"
_FOLD = "fold"
_PLAIN_WORD = re.compile(r"^[0-9a-z]+$")


def _analyzers() -> dict[str, Any]:
    simple = tantivy.Tokenizer.simple
    return {
        _ANALYZER: tantivy.TextAnalyzerBuilder(simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build(),
        _FOLD: tantivy.TextAnalyzerBuilder(simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build(),
    }


ANALYZERS = _analyzers()


# The many-valued facets are counted on a 64-bit hash of their text: a terms aggregation over a
# text field resolves every segment's candidate terms in the term dictionary (12-16 ms for a
# thousand candidates), one over a number does not, so it can keep every candidate and stay
# exact. The keys are mapped back to names (`_key_names`) through a small cached lookup.
NAME_KEYS = {"creator": "creator_key", "medium": "medium_key"}
_KEY_SEGMENT_TERMS = 65_536


def name_key(name: str) -> int:
    """A stable key of a creator's or medium's name (the same in every process): 53 bits,
    which aggregation results carry exactly even as a JSON double."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 53) - 1)


def _schema() -> Any:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("id", indexed=True, fast=True)
    for name in TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name=_ANALYZER)
    builder.add_text_field("words", tokenizer_name=_FOLD, index_option="basic")  # prefixes
    for name in ("license", "source", "creator", "medium", "orientation", "has_image", "uses"):
        builder.add_text_field(name, tokenizer_name="raw", fast=True, index_option="basic")
    for name in ("year_first", "year_last", "width", "height", "price"):
        builder.add_integer_field(name, indexed=True, fast=True)
    for name in ("price_up", "price_down"):
        builder.add_unsigned_field(name, fast=True)
    for name in NAME_KEYS.values():
        builder.add_unsigned_field(name, indexed=True, fast=True)
    return builder.build()


SCHEMA = _schema()


def price_keys(price_minor: int, item_id: int) -> tuple[int, int]:
    """Sort keys (price ascending, id) and (price descending, id) as single integers."""
    price = max(0, min(price_minor, _MAX_PRICE_KEY))
    return (price << _ID_BITS) | item_id, ((_MAX_PRICE_KEY - price) << _ID_BITS) | item_id


_USE_BITS = tuple(enumerate(PERMITTED_USES))
INDEXED_COLUMNS = tuple(
    getattr(CatalogItem, name)
    for name in (
        "id", "title", "creator", "tags", "medium", "institution", "description", "license",
        "source", "orientation", "has_image", "permitted_uses", "year_start", "year_end",
        "width", "height", "price_minor",
    )
)  # fmt: skip


def document_json(item: Any) -> str:
    """The index document of a catalog item (an ORM object or a row of INDEXED_COLUMNS) as
    JSON, which the writer parses by the schema in Rust (faster than one call per field)."""
    texts = {
        "title": item.title,
        "creator_text": item.creator,
        "tags": item.tags,
        "medium_text": item.medium,
        "institution": item.institution,
        "description": item.description,
    }
    doc: dict[str, Any] = {name: value for name, value in texts.items() if value}
    doc["id"] = item.id
    doc["words"] = " ".join(v for v in texts.values() if v)
    doc["license"] = item.license.value
    doc["source"] = item.source
    if item.creator:
        doc["creator"] = item.creator
        doc["creator_key"] = name_key(item.creator)
    if item.medium:
        doc["medium"] = item.medium
        doc["medium_key"] = name_key(item.medium)
    doc["orientation"] = item.orientation.value
    doc["has_image"] = "true" if item.has_image else "false"
    doc["uses"] = [name for bit, name in _USE_BITS if item.permitted_uses & (1 << bit)]
    if item.year_start is not None:
        doc["year_first"] = item.year_start
    latest = item.year_end if item.year_end is not None else item.year_start
    if latest is not None:
        doc["year_last"] = latest
    if item.width is not None:
        doc["width"] = item.width
    if item.height is not None:
        doc["height"] = item.height
    doc["price"] = item.price_minor
    doc["price_up"], doc["price_down"] = price_keys(item.price_minor, item.id)
    return json.dumps(doc, ensure_ascii=False)


# --- Opening, reading, writing -------------------------------------------------------------


def index_dir(app: Flask | None = None) -> Path:
    return Path(str((app or current_app).config["SEARCH_INDEX_DIR"]))


def _current(root: Path) -> Path:
    return root / "current"


def _open(path: Path) -> Any:
    path.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(SCHEMA, path=str(path), reuse=True)
    for name, analyzer in ANALYZERS.items():
        index.register_tokenizer(name, analyzer)
    return index


def _ensure_current(root: Path) -> Path:
    """The live generation's folder, made (empty) on first use."""
    link = _current(root)
    if not link.exists():
        root.mkdir(parents=True, exist_ok=True)
        first = root / "gen-1"
        first.mkdir(exist_ok=True)
        _swap_link(root, first)
    return link.resolve()


def is_empty(app: Flask | None = None) -> bool:
    """Whether the live index holds no works (a fresh folder, or one lost or never built)."""
    return int(reader(app).searcher().num_docs) == 0


def _swap_link(root: Path, target: Path) -> None:
    temporary = root / f"current.{os.getpid()}.tmp"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(target.name)
    os.replace(temporary, _current(root))  # atomic: readers see the old or the new, never none


@dataclass
class _Reader:
    generation: Path
    stamp: tuple[int, int]
    index: Any


_readers: dict[tuple[int, str], _Reader] = {}
_readers_lock = threading.Lock()
_MAX_READERS = 8


def _stamp(generation: Path) -> tuple[int, int]:
    try:
        stat = (generation / "meta.json").stat()
    except FileNotFoundError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)


def reader(app: Flask | None = None) -> Any:
    """This process's index, reloaded if a writer committed or a rebuild swapped generations
    since the last search (one stat and one readlink: cheap enough for every search)."""
    return live(app)[0]


def live(app: Flask | None = None) -> tuple[Any, Path, Path]:
    """(this process's index as `reader` gives it, the index folder, the live generation)."""
    root = index_dir(app)
    generation = _ensure_current(root)
    key = (os.getpid(), str(root))
    stamp = _stamp(generation)
    with _readers_lock:
        held = _readers.get(key)
        if held is None or held.generation != generation:
            held = _Reader(generation, stamp, _open_for_reading(generation))
            _readers.pop(key, None)
            _readers[key] = held
            while len(_readers) > _MAX_READERS:  # many apps in one process (tests): keep a few
                _readers.pop(next(iter(_readers)))
        elif held.stamp != stamp:
            held.index.reload()
            held.stamp = stamp
        return held.index, root, generation


def _open_for_reading(generation: Path) -> Any:
    """The generation's index; one written with an older schema reads as empty (search hides
    everything) until `marketplace search reindex` builds a new generation."""
    try:
        return _open(generation)
    except ValueError as exc:
        if "schema does not match" not in str(exc):
            raise
        empty = tantivy.Index(SCHEMA)  # in memory, holding nothing
        for name, analyzer in ANALYZERS.items():
            empty.register_tokenizer(name, analyzer)
        return empty


class IndexBusy(RuntimeError):
    """Another process held the index's writer lock for longer than we wait."""


def _writer(index: Any, *, wait: float = 30.0, heap: int = _WRITER_HEAP, threads: int = 1) -> Any:
    """The index's one writer; waits (with backoff) while another process holds it."""
    deadline, delay = time.monotonic() + wait, 0.02
    while True:
        try:
            return index.writer(heap_size=heap, num_threads=threads)
        except ValueError as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                if "lock" in str(exc).lower():
                    raise IndexBusy(str(exc)) from exc
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _delete(writer: Any, item_id: int) -> None:
    # By query: a bare int term would be taken as a signed one and miss the unsigned id.
    writer.delete_documents_by_query(tantivy.Query.term_query(SCHEMA, "id", item_id))


def update(session: Session, item_ids: Sequence[int], app: Flask | None = None) -> int:
    """Make the index say what the database says about these items: each is deleted, then
    added again if available. Safe to rerun. Returns how many documents were written."""
    if not item_ids:
        return 0
    root = index_dir(app)
    index = _open(_ensure_current(root))
    written = 0
    writer = _writer(index)
    try:
        for start in range(0, len(item_ids), 1000):
            chunk = list(item_ids[start : start + 1000])
            for item_id in chunk:
                _delete(writer, item_id)
            for item in session.execute(
                select(*INDEXED_COLUMNS).where(CatalogItem.id.in_(chunk), CatalogItem.available)
            ):
                writer.add_json(document_json(item))
                written += 1
        writer.commit()
    except BaseException:
        writer.rollback()
        raise
    finally:
        del writer
    search_columns.log_changes(root, item_ids)  # every process's columns re-read these
    return written


def rebuild(
    session: Session,
    app: Flask | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    batch: int = 5000,
) -> tuple[int, Path]:
    """Build a fresh index of every available item in a new generation folder and swap it in;
    items changed while it was built are written again before the swap."""
    root = index_dir(app)
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name[4:]) for p in root.glob("gen-*") if p.name[4:].isdigit()]
    target = root / f"gen-{max(numbers, default=0) + 1}"
    index = _open(target)
    writer = _writer(index, heap=256_000_000, threads=0)
    count, last_id = 0, 0
    begun = utcnow()
    while True:
        items = session.execute(
            select(*INDEXED_COLUMNS)
            .where(CatalogItem.available, CatalogItem.id > last_id)
            .order_by(CatalogItem.id)
            .limit(batch)
        ).all()
        if not items:
            break
        for item in items:
            writer.add_json(document_json(item))
        count += len(items)
        last_id = items[-1].id
        if progress is not None:
            progress(len(items))
    writer.commit()
    writer.wait_merging_threads()
    # Rows that changed while we read (an update job may have written the old generation).
    late = list(
        session.scalars(select(CatalogItem.id).where(CatalogItem.updated_at >= begun)).all()
    )
    if late:
        late_writer = _writer(index)
        for item_id in late:
            _delete(late_writer, item_id)
        for start in range(0, len(late), 1000):
            for item in session.execute(
                select(*INDEXED_COLUMNS).where(
                    CatalogItem.id.in_(late[start : start + 1000]), CatalogItem.available
                )
            ):
                late_writer.add_json(document_json(item))
        late_writer.commit()
        del late_writer
    old = _current(root).resolve() if _current(root).exists() else None
    _swap_link(root, target)
    if old is not None and old != target:
        shutil.rmtree(old, ignore_errors=True)  # open readers keep their files (POSIX)
    return count, target


# --- Queries ---------------------------------------------------------------------------------


def _terms(word: str, analyzer: str = _ANALYZER) -> list[str]:
    return [t for t in ANALYZERS[analyzer].analyze(word) if t]


def _spellings(word: str) -> set[str]:
    """The word with its British and American spellings ("harbor" -> also "harbour")."""
    return {
        word,
        BRITISH_ENGLISH_SPELLINGS.get(word, word),
        AMERICAN_ENGLISH_SPELLINGS.get(word, word),
    }


@functools.lru_cache(maxsize=4096)  # a prefix's automaton costs milliseconds to build
def _word_query(word: str, *, last: bool) -> Any | None:
    """Any field holding any form of the word (stem, other spelling, or as-you-type prefix)."""
    Q = tantivy.Query
    clauses: list[tuple[Any, Any]] = []
    terms = {t for spelling in _spellings(word) for t in _terms(spelling)}
    for term in sorted(terms):
        for name, boost in TEXT_FIELDS.items():
            clauses.append(
                (tantivy.Occur.Should, Q.boost_query(Q.term_query(SCHEMA, name, term), boost))
            )
    if last:
        folded = _terms(word, _FOLD)
        if len(folded) == 1 and len(folded[0]) >= MIN_PREFIX and _PLAIN_WORD.match(folded[0]):
            prefix = Q.regex_query(SCHEMA, "words", folded[0] + ".+")
            clauses.append((tantivy.Occur.Should, Q.const_score_query(prefix, PREFIX_BOOST)))
    if not clauses:
        return None
    return Q.boolean_query(clauses)


def text_query(tokens: Sequence[str]) -> Any | None:
    """BM25 over the words' disjunction: a work must hold at least half of the words (all of
    one or two), every word it holds adds to its score, and holding all of them adds a boost."""
    Q = tantivy.Query
    words = [q for i, t in enumerate(tokens) if (q := _word_query(t, last=i == len(tokens) - 1))]
    if not words:
        return None
    if len(words) == 1:
        return words[0]
    n = len(words)
    needed = n if n <= 2 else math.ceil(n / 2)
    some = Q.boolean_query([(tantivy.Occur.Should, w) for w in words], needed)
    every = Q.boolean_query([(tantivy.Occur.Must, w) for w in words])
    return Q.boolean_query(
        [
            (tantivy.Occur.Must, some),
            (tantivy.Occur.Should, Q.boost_query(every, ALL_WORDS_BOOST)),
        ]
    )


def _int_range(name: str, low: int | None = None, high: int | None = None) -> Any:
    return tantivy.Query.range_query(SCHEMA, name, tantivy.FieldType.Integer, low, high)


def _one_of(name: str, values: Iterable[str]) -> Any:
    return tantivy.Query.term_set_query(SCHEMA, name, list(values))


def filter_queries(query: search.SearchQuery, *, skip: str | None = None) -> list[Any]:
    """The query's filters (its own filter `skip` left out), each matching without scoring."""
    found: list[Any] = []
    if query.license and skip != "license":
        found.append(_one_of("license", (v.value for v in query.license)))
    if query.source and skip != "source":
        found.append(_one_of("source", query.source))
    if query.creator and skip != "creator":
        found.append(_one_of("creator", [query.creator]))
    if query.medium and skip != "medium":
        found.append(_one_of("medium", [query.medium]))
    if query.year_from is not None:
        found.append(_int_range("year_last", low=query.year_from))
    if query.year_to is not None:
        found.append(_int_range("year_first", high=query.year_to))
    if query.min_width is not None:
        found.append(_int_range("width", low=query.min_width))
    if query.min_height is not None:
        found.append(_int_range("height", low=query.min_height))
    if query.orientation and skip != "orientation":
        found.append(_one_of("orientation", (v.value for v in query.orientation)))
    if query.price_min is not None or query.price_max is not None:
        found.append(_int_range("price", query.price_min, query.price_max))
    if query.has_image is not None and skip != "has_image":
        found.append(_one_of("has_image", ["true" if query.has_image else "false"]))
    for use in query.uses:
        found.append(_one_of("uses", [use]))
    return found


def build_query(
    query: search.SearchQuery, *, skip: str | None = None, extra: Sequence[Any] = ()
) -> Any:
    Q = tantivy.Query
    clauses: list[tuple[Any, Any]] = []
    words = text_query(query.tokens) if query.tokens else None
    if query.tokens and words is None:
        return Q.empty_query()  # words that analyse to nothing match nothing
    if words is not None:
        clauses.append((tantivy.Occur.Must, words))
    for condition in (*filter_queries(query, skip=skip), *extra):
        clauses.append((tantivy.Occur.Must, Q.const_score_query(condition, 0.0)))
    if not clauses:
        return Q.all_query()
    return Q.boolean_query(clauses)


# --- Running a search --------------------------------------------------------------------------


def _facets(
    searcher: Any, query: search.SearchQuery, built: Any = None
) -> tuple[list[search.Facet], bool]:
    """Exact counts for every value shown: a terms aggregation per facet, over the matches
    with every filter but the facet's own."""
    active = search._active_filters(query)
    counts: dict[str, list[tuple[str, int]]] = {}
    exact = True

    def aggregate(names: list[str], skip: str | None) -> None:
        nonlocal exact
        spec = {
            name: {
                "terms": {
                    "field": NAME_KEYS.get(name, name),
                    # More than shown: ties at the last place are ordered by name below.
                    "size": 2 * search.FACET_TOP if name in NAME_KEYS else search.FACET_TOP,
                    "segment_size": _KEY_SEGMENT_TERMS if name in NAME_KEYS else _SEGMENT_TERMS,
                    "order": {"_count": "desc"},
                }
            }
            for name in names
        }
        whole = built if skip is None and built is not None else build_query(query, skip=skip)
        result = searcher.aggregate(whole, spec)
        for name in names:
            part = result.get(name, {})
            exact = exact and not part.get("doc_count_error_upper_bound")
            buckets = [(b["key"], int(b["doc_count"])) for b in part.get("buckets", [])]
            if name in NAME_KEYS:
                keys = _key_names(searcher, name, [int(key) for key, _n in buckets])
                buckets = [(keys[int(key)], n) for key, n in buckets if int(key) in keys]
            counts[name] = [(str(key), n) for key, n in buckets]

    passive = [name for name in search.FACETS if name not in active]
    if passive:
        aggregate(passive, None)
    for name in search.FACETS:
        if name in active:
            aggregate([name], name)
    facets = [
        search.Facet(
            name,
            sorted(counts.get(name, []), key=lambda kv: (-kv[1], kv[0]))[: search.FACET_TOP],
        )
        for name in search.FACETS
    ]
    return facets, exact


_names_by_key: dict[tuple[str, int], str] = {}
_MAX_NAMES = 500_000


def _key_names(searcher: Any, name: str, keys: list[int]) -> dict[int, str]:
    """The names behind facet keys: cached per process (a key always means the same name),
    a miss read from one document holding the key."""
    found: dict[int, str] = {}
    for key in keys:
        known = _names_by_key.get((name, key))
        if known is None:
            holder = tantivy.Query.term_query(SCHEMA, NAME_KEYS[name], key)
            result = searcher.aggregate(holder, {"n": {"terms": {"field": name, "size": 1}}})
            buckets = result.get("n", {}).get("buckets", [])
            if not buckets:
                continue
            known = str(buckets[0]["key"])
            if len(_names_by_key) >= _MAX_NAMES:
                _names_by_key.clear()
            _names_by_key[(name, key)] = known
        found[key] = known
    return found


def _keyset(sort: str, position: search.Position) -> tuple[str, Any, Any]:
    """(order field, order, filter) continuing after `position` in a keyset order."""
    Q, unsigned = tantivy.Query, tantivy.FieldType.Unsigned
    if sort == "newest":
        field_name, key = "id", position.row_id
        descending = True
    else:
        up, down = price_keys(int(position.key), position.row_id)
        field_name, key = ("price_up", up) if sort == "price_asc" else ("price_down", down)
        descending = False
    if not position.forward:
        descending = not descending
    if descending:
        condition = Q.range_query(SCHEMA, field_name, unsigned, None, key - 1) if key else None
    else:
        condition = Q.range_query(SCHEMA, field_name, unsigned, key + 1, None)
    order = tantivy.Order.Desc if descending else tantivy.Order.Asc
    return field_name, order, condition


# Keyset orders: the fast field read and whether it runs descending.
_ORDER_FIELDS = {
    "newest": ("id", True),
    "price_asc": ("price_up", False),
    "price_desc": ("price_down", False),
}


@dataclass
class _Hit:
    item_id: int
    key: Any  # relevance: score; newest: id; price: price
    offset: int = 0  # relevance: its place in the index's order


def _ranked(searcher: Any, base: Any, offset: int, limit: int) -> tuple[list[_Hit], int]:
    result = searcher.search(base, limit=max(limit, 1), count=True, offset=offset)
    ids = searcher.fast_field_values("id", [addr for _score, addr in result.hits])
    hits = [
        _Hit(int(i), float(s), offset + n)
        for n, ((s, _a), i) in enumerate(zip(result.hits, ids, strict=True))
    ]
    return hits[:limit], int(result.count)


def _ordered(
    searcher: Any, query: search.SearchQuery, position: search.Position | None, limit: int
) -> tuple[list[_Hit], int]:
    """Up to `limit` hits in a keyset order (newest, price) after `position`, and the exact
    number of matches past the position."""
    sort = query.effective_sort
    field_name, descending = _ORDER_FIELDS[sort]
    order = tantivy.Order.Desc if descending else tantivy.Order.Asc
    extra: list[Any] = []
    if position is not None:
        field_name, order, condition = _keyset(sort, position)
        if condition is None:
            return [], 0
        extra.append(condition)
    result = searcher.search(
        build_query(query, extra=extra),
        limit=limit,
        count=True,
        order_by_field=field_name,
        order=order,
    )
    hits = []
    for key, _addr in result.hits:
        item_id = int(key) & ((1 << _ID_BITS) - 1)
        if sort == "newest":
            hits.append(_Hit(item_id, item_id))
        else:
            price = int(key) >> _ID_BITS
            hits.append(_Hit(item_id, price if sort == "price_asc" else _MAX_PRICE_KEY - price))
    return hits, int(result.count)


def _consented(session: Session, query: search.SearchQuery, ids: list[int]) -> dict[int, Any]:
    """The page's items as the database has them now, keeping only those still available and
    still matching the query's filters (price, licence, uses...). The rows are read by primary
    key alone and the filters checked here: with the filters in SQL a planner may drive the
    lookup from a filter's index (width, year) and scan instead of fetching 48 rows."""
    if not ids:
        return {}
    rows = session.scalars(select(CatalogItem).where(CatalogItem.id.in_(ids)))
    return {item.id: item for item in rows if still_matches(item, query)}


def still_matches(item: CatalogItem, query: search.SearchQuery) -> bool:
    """`search._conditions` in Python, for one row: offered now, and every filter holds."""
    if not item.available or item.taken_down_at is not None:
        return False
    if query.license and item.license not in query.license:
        return False
    if query.source and item.source not in query.source:
        return False
    if query.creator and item.creator != query.creator:
        return False
    if query.medium and item.medium != query.medium:
        return False
    latest = item.year_end if item.year_end is not None else item.year_start
    if query.year_from is not None and (latest is None or latest < query.year_from):
        return False
    if query.year_to is not None and (item.year_start is None or item.year_start > query.year_to):
        return False
    if query.min_width is not None and (item.width is None or item.width < query.min_width):
        return False
    if query.min_height is not None and (item.height is None or item.height < query.min_height):
        return False
    if query.orientation and item.orientation not in query.orientation:
        return False
    if query.price_min is not None and item.price_minor < query.price_min:
        return False
    if query.price_max is not None and item.price_minor > query.price_max:
        return False
    if query.has_image is not None and item.has_image is not query.has_image:
        return False
    wanted = uses_mask(query.uses) if query.uses else 0
    return item.permitted_uses & wanted == wanted


def _cursor(sort: str, hit: _Hit, *, forward: bool) -> str:
    if sort == "relevance":
        # Forward: continue after this hit; backward: the page before starts before it.
        offset = hit.offset + 1 if forward else hit.offset
        return search.encode_cursor(
            search.Position(sort, float(hit.key), hit.item_id, forward, offset)
        )
    return search.encode_cursor(search.Position(sort, int(hit.key), hit.item_id, forward))


def run(session: Session, query: search.SearchQuery, *, with_facets: bool = True) -> Any:
    """One page of `query` (see search.search): ids from the index, rows from the database.

    A search without words (filters alone, or nothing) takes its total, facets and newest-first
    pages from the in-memory columns (`search_columns`) once they are loaded. Hits the database
    no longer offers are dropped and more are fetched in their place, so a page is full
    whenever the index holds enough consented matches."""
    index, root, generation = live()
    searcher = index.searcher()
    sort = query.effective_sort
    position = search.decode_cursor(query.cursor) if query.cursor else None
    if position is not None and position.sort != sort:
        raise search.InvalidSearchCursor(
            "cursor belongs to another sort order: start from the first page", "cursor"
        )
    columns: search_columns.Columns | None = None
    stats: search_columns.Stats | None = None
    mask: Any = None
    if not query.tokens:
        holder = search_columns.current(session, root, generation, int(searcher.num_docs))
        if holder is not None:
            columns, mask, stats = search_columns.evaluate(holder, query, stats=with_facets)
    forward = position is None or position.forward
    wanted = query.limit + 1  # one more than a page says whether there is a next one
    kept: list[tuple[_Hit, Any]] = []
    total: int | None = None
    dropped = 0
    base = build_query(query)
    if sort == "relevance" and not forward:
        assert position is not None
        start = max(0, position.offset - query.limit)
        hits, total = _ranked(searcher, base, start, position.offset - start)
        items = _consented(session, query, [h.item_id for h in hits])
        kept = [(h, items[h.item_id]) for h in hits if h.item_id in items]
        dropped = len(hits) - len(kept)
        more = start > 0
    else:
        offset = position.offset if position is not None else 0
        after = position
        for _attempt in range(10):
            batch = wanted - len(kept) + min(dropped, 500)
            if sort == "relevance":
                hits, matched = _ranked(searcher, base, offset, batch)
                offset += len(hits)
            elif sort == "newest" and columns is not None:
                hits = [_Hit(i, i) for i in columns.newest(mask, after, batch)]
                matched = stats.total if stats is not None else int(np.count_nonzero(mask))
            else:
                hits, matched = _ordered(searcher, query, after, batch)
            total = matched if total is None else total
            items = _consented(session, query, [h.item_id for h in hits])
            for hit in hits:
                if hit.item_id in items:
                    kept.append((hit, items[hit.item_id]))
                else:
                    dropped += 1
            if len(hits) < batch or len(kept) >= wanted:
                break
            # keyset: continue after the last hit seen, in the page's direction
            after = search.Position(sort, hits[-1].key, hits[-1].item_id, forward)
        more = len(kept) > query.limit
        kept = kept[: query.limit]
    if not forward:
        if sort != "relevance":
            kept.reverse()
        # Walking back: rows after this page exist (we came from there).
        has_next, has_previous = bool(kept), more
    else:
        has_next, has_previous = more, query.cursor is not None
    if columns is not None:
        total = stats.total if stats is not None else int(np.count_nonzero(mask))
    elif position is not None and sort != "relevance":
        total = None  # a keyset count covers only what follows the position
    if total is None:
        total = count_query(searcher, query)
    facets: list[search.Facet] = []
    facets_exact = True
    if with_facets:
        if stats is not None:
            facets = stats.facets
        else:
            facets, facets_exact = _facets(searcher, query, base)
    return search.SearchResult(
        items=[item for _hit, item in kept],
        total=max(0, total - dropped),
        total_exact=dropped == 0,
        facets=facets,
        facets_exact=facets_exact,
        next_cursor=_cursor(sort, kept[-1][0], forward=True) if has_next and kept else None,
        previous_cursor=_cursor(sort, kept[0][0], forward=False) if has_previous and kept else None,
    )


def warm_columns(session: Session) -> search_columns.Columns:
    """Load this process's columns for searches without words now (else the first such
    search of a large catalog starts loading them in the background)."""
    _index, root, generation = live()
    return search_columns.warm(session, root, generation)


def count_query(searcher: Any, query: search.SearchQuery) -> int:
    """The exact number of matches the index holds."""
    return int(searcher.search(build_query(query), limit=1, count=True).count)


def count(query: search.SearchQuery) -> int:
    return count_query(reader().searcher(), query)


def iter_ids(session: Session, query: search.SearchQuery, cap: int) -> Iterator[int]:
    """Ids of every consented match in order, at most `cap`."""
    query = replace(query, cursor=None, limit=min(search.MAX_LIMIT, max(cap, 1)))
    produced = 0
    while produced < cap:
        result = run(session, query, with_facets=False)
        for item in result.items[: cap - produced]:
            yield item.id
            produced += 1
        if result.next_cursor is None or not result.items:
            return
        query = replace(query, cursor=result.next_cursor)
