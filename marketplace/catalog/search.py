"""One search over every available work: full text, filters, facets, keyset pages.

This module is the one interface (`parse_query` -> `SearchQuery`, `search` -> `SearchResult`,
`count_matches`, `iter_matching_ids`, `items_changed`) over two engines, chosen by
SEARCH_ENGINE: "tantivy" (`search_index`: an embedded index beside the database, which stays
the source of truth and checks every page) and "database", below: SQLite FTS5 (`catalog_fts`,
kept in sync by triggers) or a PostgreSQL `tsvector` column with a GIN index, both made by the
migration. User text is only ever turned into words, so quotes and operators in it are plain
text. Pages continue from an opaque signed cursor, never a number the client chose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from flask import current_app
from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    bindparam,
    cast,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from marketplace import cursors, jobs
from marketplace.artists.terms import PERMITTED_USES, parse_money, uses_mask
from marketplace.catalog.models import CatalogItem, CatalogLicense, Orientation
from marketplace.db import after_commit, transaction
from marketplace.text import first_problem

MAX_LIMIT = 100
# The bounds of each filter, declared once: parse_query enforces them and the API's query model
# reads them from here for its OpenAPI document.
YEARS = (-5000, 3000)
MAX_PIXELS_FILTER = 100_000
MAX_NAME_FILTER = 300  # creator, medium
MAX_VALUES = 50  # per list filter (license, source, orientation)
MAX_PRICE_FILTER = 10**9  # in minor units
DEFAULT_LIMIT = 48
COUNT_CAP = 10_000  # totals above this are reported as "10,000+"
STATS_SAMPLE = COUNT_CAP  # totals and facets are counted over at most this many matching rows
FACET_TOP = 12
MAX_TOKENS = 12
SORTS = ("relevance", "newest", "price_asc", "price_desc")
FILTERS = (
    "q",
    "license",
    "source",
    "creator",
    "medium",
    "year_from",
    "year_to",
    "min_width",
    "min_height",
    "orientation",
    "price_min",
    "price_max",
    "has_image",
    "uses",
    "sort",
    "limit",
    "cursor",
)
_WORD = re.compile(r"\w+", re.UNICODE)
# Words too common to narrow a search (English, French, German, Spanish, Italian, Dutch).
STOP_WORDS = frozenset(
    (
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "de",
        "del",
        "der",
        "des",
        "di",
        "die",
        "du",
        "el",
        "en",
        "et",
        "for",
        "from",
        "het",
        "in",
        "is",
        "it",
        "la",
        "le",
        "les",
        "of",
        "on",
        "or",
        "the",
        "to",
        "un",
        "una",
        "und",
        "une",
        "van",
        "von",
        "with",
    )
)


class InvalidSearch(ValueError):
    """An unknown filter or a bad value (400); the message names it.

    `params` are the URL parameters at fault, so that a page can show the message beside its
    field and still search with the rest.
    """

    def __init__(self, message: str, *params: str) -> None:
        super().__init__(message)
        self.params = params


class InvalidSearchCursor(InvalidSearch):
    """A cursor this search did not issue, or issued for another sort order."""


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    license: tuple[CatalogLicense, ...] = ()
    source: tuple[str, ...] = ()
    creator: str | None = None
    medium: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    min_width: int | None = None
    min_height: int | None = None
    orientation: tuple[Orientation, ...] = ()
    price_min: int | None = None
    price_max: int | None = None
    has_image: bool | None = None
    uses: tuple[str, ...] = ()  # permitted uses every result must allow (artists.terms names)
    sort: str = "relevance"
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    @property
    def tokens(self) -> list[str]:
        """The words to match: lower-case, stop words dropped ("the" alone matches all)."""
        words = [t.lower() for t in _WORD.findall(self.q)]
        return [w for w in words if w not in STOP_WORDS][:MAX_TOKENS]

    @property
    def effective_sort(self) -> str:
        return "newest" if self.sort == "relevance" and not self.tokens else self.sort

    def to_params(self) -> dict[str, Any]:
        """The query as URL/JSON parameters (for links, jobs and the API)."""
        params: dict[str, Any] = {}
        for name in FILTERS:
            if name in ("limit", "cursor"):
                continue
            value = getattr(self, name)
            if value in (None, "", ()) or (name == "sort" and value == "relevance"):
                continue
            params[name] = [str(v) for v in value] if isinstance(value, tuple) else value
        return params


_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,12}")


def _int(name: str, value: str, low: int, high: int) -> int:
    """ASCII digits only: `int()` also reads "5_0" as 50 and "١٨٣٠" as 1830."""
    if not _WHOLE_NUMBER.fullmatch(value.strip()):
        raise InvalidSearch(f"{name} must be a whole number", name)
    number = int(value)
    if not low <= number <= high:
        raise InvalidSearch(f"{name} must be between {low} and {high}", name)
    return number


def _money(name: str, value: str) -> int:
    try:
        amount = parse_money(value, str(current_app.config["DEFAULT_CURRENCY"]))
    except ValueError as exc:  # "2,50" is refused, never read as 250
        raise InvalidSearch(f"{name}: {exc}", name) from exc
    if amount > MAX_PRICE_FILTER:
        raise InvalidSearch(f"{name} is too large", name)
    return amount


def parse_query(args: Mapping[str, Sequence[str]]) -> SearchQuery:
    """A query from URL parameters (each name to its values); InvalidSearch for anything off."""
    unknown = sorted(set(args) - set(FILTERS))
    if unknown:
        raise InvalidSearch(f"unknown filter: {', '.join(unknown)}", *unknown)
    for name, values in args.items():
        problem = first_problem(values)
        if problem is not None:
            raise InvalidSearch(f"{name} {problem}", name)

    def one(name: str) -> str | None:
        values = [v for v in args.get(name, ()) if v != ""]
        if len(values) > 1:
            raise InvalidSearch(f"give {name} once", name)
        return values[0] if values else None

    def many(name: str) -> list[str]:
        """Each distinct value once, in order (a value repeated is still one value)."""
        values = [v.strip() for raw in args.get(name, ()) for v in raw.split(",") if v.strip()]
        distinct = list(dict.fromkeys(values))
        if len(distinct) > MAX_VALUES:
            raise InvalidSearch(f"too many values for {name} (at most {MAX_VALUES})", name)
        return distinct

    q = one("q") or ""
    if len(q) > 500:
        q = q[:500]
    license_values, orientation_values = many("license"), many("orientation")
    try:
        licenses = tuple(CatalogLicense(v) for v in license_values)
    except ValueError as exc:
        choices = ", ".join(k.value for k in CatalogLicense)
        raise InvalidSearch(f"license must be one of {choices}", "license") from exc
    try:
        orientations = tuple(Orientation(v) for v in orientation_values)
    except ValueError as exc:
        choices = ", ".join(o.value for o in Orientation)
        raise InvalidSearch(f"orientation must be one of {choices}", "orientation") from exc
    sort = one("sort") or "relevance"
    if sort not in SORTS:
        raise InvalidSearch(f"sort must be one of {', '.join(SORTS)}", "sort")
    has_image_text = one("has_image")
    has_image = None
    if has_image_text is not None:
        if has_image_text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise InvalidSearch("has_image must be true or false", "has_image")
        has_image = has_image_text.lower() in ("true", "1", "yes")
    uses = tuple(dict.fromkeys(many("uses")))
    if not set(uses) <= set(PERMITTED_USES):
        raise InvalidSearch(f"uses must be among {', '.join(PERMITTED_USES)}", "uses")
    year_from, year_to = one("year_from"), one("year_to")
    limit = one("limit")
    query = SearchQuery(
        q=q,
        license=licenses,
        source=tuple(v[:40] for v in many("source")),
        creator=(one("creator") or None),
        medium=(one("medium") or None),
        year_from=_int("year_from", year_from, *YEARS) if year_from else None,
        year_to=_int("year_to", year_to, *YEARS) if year_to else None,
        min_width=_int("min_width", v, 0, MAX_PIXELS_FILTER) if (v := one("min_width")) else None,
        min_height=_int("min_height", v, 0, MAX_PIXELS_FILTER)
        if (v := one("min_height"))
        else None,
        orientation=orientations,
        price_min=_money("price_min", v) if (v := one("price_min")) else None,
        price_max=_money("price_max", v) if (v := one("price_max")) else None,
        has_image=has_image,
        uses=uses,
        sort=sort,
        limit=_int("limit", limit, 1, MAX_LIMIT) if limit else DEFAULT_LIMIT,
        cursor=one("cursor"),
    )
    if query.creator and len(query.creator) > MAX_NAME_FILTER:
        raise InvalidSearch("creator is too long", "creator")
    if query.medium and len(query.medium) > MAX_NAME_FILTER:
        raise InvalidSearch("medium is too long", "medium")
    if query.cursor is not None:
        position = decode_cursor(query.cursor)
        if position.sort != query.effective_sort:
            raise InvalidSearchCursor(
                "cursor belongs to another sort order: start from the first page"
            )
    return query


# --- Cursors ---------------------------------------------------------------------------------

CURSOR_PURPOSE = "search"
_MAX_SORT_KEY = 2**63 - 1  # price keys are BIGINT-sized at most; relevance keys are floats


@dataclass(frozen=True)
class Position:
    """Where a page starts: after (`forward`) or before (`not forward`) the row (key, id)."""

    sort: str
    key: Any
    row_id: int
    forward: bool = True
    offset: int = 0  # relevance pages of the search engine: the place in its ranked order


MAX_OFFSET = 10**7


def encode_cursor(position: Position) -> str:
    payload = {"s": position.sort, "k": position.key, "i": position.row_id, "f": position.forward}
    if position.offset:
        payload["o"] = position.offset
    return cursors.encode(CURSOR_PURPOSE, payload)


def decode_cursor(cursor: str) -> Position:
    """The position a cursor of ours names; InvalidSearch for anything else."""
    try:
        data = cursors.decode(CURSOR_PURPOSE, cursor)
    except cursors.InvalidCursor as exc:
        raise InvalidSearchCursor("cursor was not issued by this search", "cursor") from exc
    sort, key, row_id, forward = data.get("s"), data.get("k"), data.get("i"), data.get("f")
    offset = data.get("o", 0)
    key_ok = (
        isinstance(key, float)
        if sort == "relevance"
        else isinstance(key, int) and not isinstance(key, bool) and abs(key) <= _MAX_SORT_KEY
    )
    if (
        sort not in SORTS
        or not key_ok
        or not cursors.is_row_id(row_id)
        or type(forward) is not bool
        or type(offset) is not int
        or not 0 <= offset <= MAX_OFFSET
    ):
        raise InvalidSearchCursor("cursor was not issued by this search", "cursor")
    return Position(str(sort), key, row_id, forward, offset)


# --- Choosing the engine -------------------------------------------------------------------

ENGINES = ("tantivy", "database")


def engine() -> str:
    """SEARCH_ENGINE: "tantivy" (an index beside the database) or "database" (its own FTS)."""
    return str(current_app.config.get("SEARCH_ENGINE", "database"))


# --- Keeping the full-text index -------------------------------------------------------------

UPDATE_JOB = "marketplace.catalog.tasks.update_search_index"


def items_changed(session: Session, item_ids: Sequence[int]) -> None:
    """Queue an index update for these items once the session's transaction commits.

    Every write path that adds items or changes whether one is offered calls this (through
    `index_new_items`, `services.index_work`/`index_stock` and the ingest). The update is a
    job (RQ in production); SEARCH_INDEX_UPDATES=inline runs it in this process right after
    the commit. Until it runs, search checks every page against the database, so a lag can
    only hide a change, never show a withdrawn work.
    """
    if not item_ids or engine() != "tantivy":
        return
    ids = [int(i) for i in item_ids]
    if current_app.config.get("SEARCH_INDEX_UPDATES") == "inline":
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        after_commit(session, lambda: _update_inline(app, ids))
        return
    for start in range(0, len(ids), 10_000):
        jobs.enqueue_after_commit(session, UPDATE_JOB, ids[start : start + 10_000])


def _update_inline(app: Any, ids: list[int]) -> None:
    from marketplace.catalog import search_index

    with app.app_context(), transaction() as session:
        search_index.update(session, ids, app)


FTS_COLUMNS = ("title", "description", "tags", "creator", "institution", "medium")


def index_new_items(session: Session, item_ids: Sequence[int]) -> None:
    """Add newly inserted catalog rows to SQLite's FTS index (every insert path calls this;
    updates and deletes are synced by triggers). PostgreSQL's tsvector is a generated column."""
    items_changed(session, item_ids)
    if not item_ids or session.get_bind().dialect.name != "sqlite":
        return
    columns = ", ".join(FTS_COLUMNS)
    statement = text(
        f"INSERT INTO catalog_fts(rowid, {columns}) "  # noqa: S608 - fixed column names
        f"SELECT id, {columns} FROM catalog_items WHERE id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    for start in range(0, len(item_ids), 5000):
        session.execute(statement, {"ids": list(item_ids[start : start + 5000])})


# --- Building the query ------------------------------------------------------------------------

_fts = table("catalog_fts", column("rowid"))
_BM25 = "bm25(catalog_fts, 10.0, 2.0, 4.0, 6.0, 3.0, 3.0)"  # title, description, tags, ...


@dataclass(frozen=True)
class _Text:
    """How the query's words restrict and rank rows on this backend."""

    condition: ColumnElement[bool]  # items whose text matches
    score: Any  # relevance, lower is better; needs `ranked` in the FROM clause on SQLite
    ranked: Any  # SQLite: the FTS table to join for the score (None on PostgreSQL)


def _text(session: Session, tokens: list[str]) -> _Text:
    if session.get_bind().dialect.name == "postgresql":
        ts_query = func.to_tsquery(
            literal_column("'marketplace_text'::regconfig"), " & ".join(tokens)
        )
        vector: Any = literal_column("catalog_items.search_vector")
        return _Text(vector.op("@@")(ts_query), -func.ts_rank_cd(vector, ts_query), None)
    match = text("catalog_fts MATCH :fts_query").bindparams(
        fts_query=" AND ".join(f'"{t}"' for t in tokens)
    )
    # Membership by rowid list: SQLite looks items up from the matches instead of probing the
    # FTS index once per item, which its planner otherwise may choose.
    matching = CatalogItem.id.in_(select(_fts.c.rowid).where(match))
    return _Text(matching, literal_column(_BM25), match)


def _select(
    session: Session, query: SearchQuery, *columns: Any, skip: str | None = None, rank: bool = False
) -> Any:
    """SELECT `columns` FROM the items matching `query` (its own filter `skip` left out); with
    `rank`, the relevance score can be selected and ordered by."""
    conditions = _conditions(query, skip=skip)
    stmt = select(*columns)
    if query.tokens:
        words = _text(session, query.tokens)
        if rank and words.ranked is not None:
            stmt = stmt.select_from(_fts).join(CatalogItem, CatalogItem.id == _fts.c.rowid)
            conditions.append(words.ranked)
        else:
            conditions.append(words.condition)
    return stmt.where(*conditions)


def _conditions(query: SearchQuery, *, skip: str | None = None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        CatalogItem.available.is_(True),
        CatalogItem.taken_down_at.is_(None),
    ]
    if query.license and skip != "license":
        conditions.append(CatalogItem.license.in_(query.license))
    if query.source and skip != "source":
        conditions.append(CatalogItem.source.in_(query.source))
    if query.creator and skip != "creator":
        conditions.append(CatalogItem.creator == query.creator)
    if query.medium and skip != "medium":
        conditions.append(CatalogItem.medium == query.medium)
    if query.year_from is not None:
        latest = func.coalesce(CatalogItem.year_end, CatalogItem.year_start)
        conditions.append(latest >= query.year_from)
    if query.year_to is not None:
        conditions.append(CatalogItem.year_start <= query.year_to)
    if query.min_width is not None:
        conditions.append(CatalogItem.width >= query.min_width)
    if query.min_height is not None:
        conditions.append(CatalogItem.height >= query.min_height)
    if query.orientation and skip != "orientation":
        conditions.append(CatalogItem.orientation.in_(query.orientation))
    if query.price_min is not None:
        conditions.append(CatalogItem.price_minor >= query.price_min)
    if query.price_max is not None:
        conditions.append(CatalogItem.price_minor <= query.price_max)
    if query.has_image is not None and skip != "has_image":
        conditions.append(CatalogItem.has_image.is_(query.has_image))
    if query.uses:
        wanted = uses_mask(query.uses)
        conditions.append(CatalogItem.permitted_uses.op("&")(wanted) == wanted)
    return conditions


def _ordered(session: Session, query: SearchQuery) -> Any:
    """Matching items in the query's order, after its cursor, each with its sort key. A
    backward cursor (a "previous page" link) gives the rows before it, nearest first."""
    sort = query.effective_sort
    if sort == "relevance":
        key: Any = _text(session, query.tokens).score
    elif sort == "newest":
        key = CatalogItem.id
    else:
        key = CatalogItem.price_minor
    stmt = _select(session, query, CatalogItem, key.label("sort_key"), rank=sort == "relevance")
    position = decode_cursor(query.cursor) if query.cursor else None
    if position is not None and position.sort != sort:
        raise InvalidSearchCursor(
            "cursor belongs to another sort order: start from the first page", "cursor"
        )
    forward = position is None or position.forward
    # Each order as (key descending?, id descending?) read forward; backward flips both.
    key_desc, id_desc = {"newest": (True, True), "price_desc": (True, False)}.get(
        sort, (False, False)
    )
    if not forward:
        key_desc, id_desc = not key_desc, not id_desc
    if sort == "newest":
        stmt = stmt.order_by(CatalogItem.id.desc() if id_desc else CatalogItem.id)
    else:
        stmt = stmt.order_by(
            key.desc() if key_desc else key, CatalogItem.id.desc() if id_desc else CatalogItem.id
        )
    if position is not None:
        last_id = position.row_id
        after_id = CatalogItem.id < last_id if id_desc else CatalogItem.id > last_id
        if sort == "newest":
            stmt = stmt.where(after_id)
        else:
            last_key = position.key
            after_key = key < last_key if key_desc else key > last_key
            stmt = stmt.where(or_(after_key, and_(key == last_key, after_id)))
    return stmt


# --- Running it --------------------------------------------------------------------------------


@dataclass
class Facet:
    name: str
    values: list[tuple[str, int]]


@dataclass
class SearchResult:
    items: list[CatalogItem]
    total: int
    total_exact: bool
    facets: list[Facet] = field(default_factory=list)
    facets_exact: bool = True
    next_cursor: str | None = None
    previous_cursor: str | None = None


FACETS = ("license", "source", "orientation", "has_image", "creator", "medium")


def _active_filters(query: SearchQuery) -> set[str]:
    return {name for name in FACETS if getattr(query, name) not in (None, (), "")}


def _facet_counts(
    session: Session, query: SearchQuery, names: Sequence[str], skip: str | None
) -> tuple[int, dict[str, list[tuple[Any, int]]]]:
    """Counts over one sample of at most STATS_SAMPLE + 1 matching rows, grouped in SQL: the
    sample size (for the total) and each facet's top values."""
    columns = [cast(getattr(CatalogItem, name), String).label(name) for name in names]
    sample = (
        _select(session, query, *columns, skip=skip)
        .limit(STATS_SAMPLE + 1)
        .cte("sample")
        .prefix_with("MATERIALIZED")
    )
    parts = [
        select(
            literal("*").label("facet"), literal(None, String).label("value"), func.count()
        ).select_from(sample)
    ]
    for name in names:
        value = sample.c[name]
        parts.append(select(literal(name).label("facet"), value, func.count()).group_by(value))
    grouped = union_all(*parts).subquery("grouped")
    ranked = select(
        grouped.c.facet,
        grouped.c.value,
        grouped.c[2].label("n"),
        func.row_number()
        .over(partition_by=grouped.c.facet, order_by=(grouped.c[2].desc(), grouped.c.value))
        .label("rank"),
    ).subquery("ranked")
    rows = session.execute(
        select(ranked.c.facet, ranked.c.value, ranked.c.n).where(ranked.c.rank <= FACET_TOP + 1)
    ).all()
    total = 0
    counts: dict[str, list[tuple[Any, int]]] = {name: [] for name in names}
    for facet, value, n in rows:
        if facet == "*":
            total = int(n)
        else:
            counts[facet].append((value, int(n)))
    return total, counts


def _stats(session: Session, query: SearchQuery) -> tuple[int, bool, list[Facet], bool]:
    """Total and facets from one sampled scan; a facet whose own filter is set gets its own
    scan without that filter (so its other values stay visible)."""
    active = _active_filters(query)
    total, counts = _facet_counts(session, query, FACETS, None)
    exact = total <= STATS_SAMPLE
    facets_exact = exact
    for name in FACETS:
        if name in active:
            own_total, own = _facet_counts(session, query, [name], name)
            facets_exact = facets_exact and own_total <= STATS_SAMPLE
            counts[name] = own[name]
    facets = [
        Facet(
            name,
            sorted(
                (
                    (_facet_label(name, value), n)
                    for value, n in counts[name]
                    if value not in (None, "")
                ),
                key=lambda kv: (-kv[1], kv[0]),
            )[:FACET_TOP],
        )
        for name in FACETS
    ]
    return min(total, STATS_SAMPLE), exact, facets, facets_exact


def _facet_label(name: str, value: Any) -> str:
    """Raw column text as the API shows it (booleans come back from SQL as 0/1 or true/false)."""
    if name == "has_image":
        return "true" if str(value).lower() in ("1", "true", "t") else "false"
    return str(value)


def count_matches(session: Session, query: SearchQuery, cap: int = COUNT_CAP) -> tuple[int, bool]:
    if engine() == "tantivy":
        from marketplace.catalog import search_index

        return search_index.count(query), True
    capped = _select(session, query, CatalogItem.id).limit(cap + 1).subquery()
    total = int(session.scalar(select(func.count()).select_from(capped)) or 0)
    return min(total, cap), total <= cap


def _position(sort: str, row: Any, *, forward: bool) -> str:
    item, key = row
    return encode_cursor(
        Position(sort, float(key) if sort == "relevance" else key, item.id, forward)
    )


def search(session: Session, query: SearchQuery, *, with_facets: bool = True) -> SearchResult:
    """One page of matches with cursors to the next and the previous page (None at either end)."""
    if engine() == "tantivy":
        from marketplace.catalog import search_index

        result: SearchResult = search_index.run(session, query, with_facets=with_facets)
        return result
    sort = query.effective_sort
    rows = session.execute(_ordered(session, query).limit(query.limit + 1)).all()
    more = len(rows) > query.limit
    page = list(rows[: query.limit])
    backward = query.cursor is not None and not decode_cursor(query.cursor).forward
    if backward:
        page.reverse()
        # Walking back: rows after this page exist (we came from there); rows before it only
        # if the backward query found more than a page.
        has_next, has_previous = bool(page), more
    else:
        has_next, has_previous = more, query.cursor is not None
    next_cursor = _position(sort, page[-1], forward=True) if has_next and page else None
    previous_cursor = _position(sort, page[0], forward=False) if has_previous and page else None
    if with_facets:
        total, exact, facets, facets_exact = _stats(session, query)
    else:
        (total, exact), facets, facets_exact = count_matches(session, query), [], True
    return SearchResult(
        items=[item for item, _ in page],
        total=total,
        total_exact=exact,
        facets=facets,
        facets_exact=facets_exact,
        next_cursor=next_cursor,
        previous_cursor=previous_cursor,
    )


def iter_matching_ids(session: Session, query: SearchQuery, cap: int) -> Iterator[int]:
    """Ids of every match in order, at most `cap` (for adding a whole search to a collection)."""
    if engine() == "tantivy":
        from marketplace.catalog import search_index

        yield from search_index.iter_ids(session, query, cap)
        return
    query = replace(query, cursor=None, limit=1000)
    produced = 0
    while produced < cap:
        rows = session.execute(_ordered(session, query).limit(min(1000, cap - produced) + 1)).all()
        page = rows[: min(1000, cap - produced)]
        for item, _key in page:
            yield item.id
        produced += len(page)
        if len(rows) <= len(page) or not page:
            return
        query = replace(query, cursor=_position(query.effective_sort, page[-1], forward=True))
