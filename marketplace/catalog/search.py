"""One search over every available work: full text, filters, facets, keyset pages.

Full text is SQLite FTS5 (`catalog_fts`, kept in sync by triggers) or a PostgreSQL `tsvector`
column with a GIN index, both made by the migration. User text is only ever turned into quoted
word tokens, so quotes and FTS operators in it are plain text. Pages continue from an opaque
cursor (the sort key and id of the last row), never OFFSET, so deep pages cost what page one does.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
    tuple_,
)
from sqlalchemy.orm import Session

from marketplace.catalog.models import CatalogItem, CatalogLicense, Orientation

MAX_LIMIT = 100
DEFAULT_LIMIT = 48
COUNT_CAP = 10_000  # totals above this are reported as "10,000+"
FACET_SAMPLE = 20_000  # facets of larger result sets are counted over this many rows
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
    "sort",
    "limit",
    "cursor",
)
_WORD = re.compile(r"\w+", re.UNICODE)


class InvalidSearch(ValueError):
    """An unknown filter or a bad value (400); the message names it."""


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
    sort: str = "relevance"
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    @property
    def tokens(self) -> list[str]:
        return [t.lower() for t in _WORD.findall(self.q)][:MAX_TOKENS]

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


def _int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise InvalidSearch(f"{name} must be a whole number") from exc
    if not low <= number <= high:
        raise InvalidSearch(f"{name} must be between {low} and {high}")
    return number


def _money(name: str, value: str) -> int:
    from marketplace.artists.terms import parse_money

    try:
        amount = parse_money(value)
    except ValueError as exc:
        raise InvalidSearch(f"{name} must be an amount such as 2.50") from exc
    if amount > 10**9:
        raise InvalidSearch(f"{name} is too large")
    return amount


def parse_query(args: Mapping[str, Sequence[str]]) -> SearchQuery:
    """A query from URL parameters (each name to its values); InvalidSearch for anything off."""
    unknown = sorted(set(args) - set(FILTERS))
    if unknown:
        raise InvalidSearch(f"unknown filter: {', '.join(unknown)}")

    def one(name: str) -> str | None:
        values = [v for v in args.get(name, ()) if v != ""]
        if len(values) > 1:
            raise InvalidSearch(f"give {name} once")
        return values[0] if values else None

    def many(name: str) -> list[str]:
        values = [v for raw in args.get(name, ()) for v in raw.split(",") if v.strip()]
        if len(values) > 50:
            raise InvalidSearch(f"too many values for {name}")
        return [v.strip() for v in values]

    q = one("q") or ""
    if len(q) > 500:
        q = q[:500]
    try:
        licenses = tuple(CatalogLicense(v) for v in many("license"))
    except ValueError as exc:
        choices = ", ".join(k.value for k in CatalogLicense)
        raise InvalidSearch(f"license must be one of {choices}") from exc
    try:
        orientations = tuple(Orientation(v) for v in many("orientation"))
    except ValueError as exc:
        choices = ", ".join(o.value for o in Orientation)
        raise InvalidSearch(f"orientation must be one of {choices}") from exc
    sort = one("sort") or "relevance"
    if sort not in SORTS:
        raise InvalidSearch(f"sort must be one of {', '.join(SORTS)}")
    has_image_text = one("has_image")
    has_image = None
    if has_image_text is not None:
        if has_image_text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise InvalidSearch("has_image must be true or false")
        has_image = has_image_text.lower() in ("true", "1", "yes")
    year_from, year_to = one("year_from"), one("year_to")
    limit = one("limit")
    query = SearchQuery(
        q=q,
        license=licenses,
        source=tuple(v[:40] for v in many("source")),
        creator=(one("creator") or None),
        medium=(one("medium") or None),
        year_from=_int("year_from", year_from, -5000, 3000) if year_from else None,
        year_to=_int("year_to", year_to, -5000, 3000) if year_to else None,
        min_width=_int("min_width", v, 0, 100_000) if (v := one("min_width")) else None,
        min_height=_int("min_height", v, 0, 100_000) if (v := one("min_height")) else None,
        orientation=orientations,
        price_min=_money("price_min", v) if (v := one("price_min")) else None,
        price_max=_money("price_max", v) if (v := one("price_max")) else None,
        has_image=has_image,
        sort=sort,
        limit=_int("limit", limit, 1, MAX_LIMIT) if limit else DEFAULT_LIMIT,
        cursor=one("cursor"),
    )
    if query.creator and len(query.creator) > 300:
        raise InvalidSearch("creator is too long")
    if query.medium and len(query.medium) > 300:
        raise InvalidSearch("medium is too long")
    if query.cursor is not None:
        _decode_cursor(query.cursor)
    return query


# --- Cursors ---------------------------------------------------------------------------------


def _encode_cursor(sort: str, key: Any, row_id: int) -> str:
    raw = json.dumps({"s": sort, "k": key, "i": row_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidSearch("cursor was not issued by this search") from exc
    if (
        not isinstance(data, dict)
        or data.get("s") not in SORTS
        or not isinstance(data.get("i"), int)
        or isinstance(data.get("i"), bool)
        or not isinstance(data.get("k"), int | float | type(None))
    ):
        raise InvalidSearch("cursor was not issued by this search")
    return data


# --- Building the query ------------------------------------------------------------------------

_fts = table("catalog_fts", column("rowid"))


def _text_condition(session: Session, tokens: list[str]) -> tuple[ColumnElement[bool], Any]:
    """The full-text match and its relevance score (lower is better on both backends)."""
    if session.get_bind().dialect.name == "postgresql":
        ts_query = func.to_tsquery(
            literal_column("'marketplace_text'::regconfig"), " & ".join(f"{t}:*" for t in tokens)
        )
        vector = literal_column("catalog_items.search_vector")
        return vector.op("@@")(ts_query), -func.ts_rank_cd(vector, ts_query)
    match = " AND ".join('"' + t.replace('"', "") + '"*' for t in tokens)
    matching = select(_fts.c.rowid).where(text("catalog_fts MATCH :fts_query"))
    condition = CatalogItem.id.in_(matching.params(fts_query=match))
    # bm25 needs the FTS row: a correlated lookup of this item's score (weights per column).
    score = (
        select(literal_column("bm25(catalog_fts, 10.0, 2.0, 4.0, 6.0, 3.0, 3.0)"))
        .select_from(_fts)
        .where(text("catalog_fts MATCH :fts_query"), _fts.c.rowid == CatalogItem.id)
        .params(fts_query=match)
        .scalar_subquery()
    )
    return condition, score


def _conditions(
    session: Session, query: SearchQuery, *, skip: str | None = None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [CatalogItem.available.is_(True)]
    if query.tokens:
        conditions.append(_text_condition(session, query.tokens)[0])
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
    return conditions


def _ordered(session: Session, query: SearchQuery) -> tuple[Select[Any], Any]:
    """Matching items in the query's order, after its cursor; and the sort key expression."""
    conditions = _conditions(session, query)
    sort = query.effective_sort
    if sort == "relevance":
        key = _text_condition(session, query.tokens)[1].label("sort_key")
        stmt = select(CatalogItem, key).where(*conditions).order_by(key, CatalogItem.id)
    elif sort == "newest":
        key = CatalogItem.id
        stmt = select(CatalogItem, CatalogItem.id.label("sort_key")).where(*conditions)
        stmt = stmt.order_by(CatalogItem.id.desc())
    else:
        key = CatalogItem.price_minor
        stmt = select(CatalogItem, CatalogItem.price_minor.label("sort_key")).where(*conditions)
        direction = key.asc() if sort == "price_asc" else key.desc()
        stmt = stmt.order_by(direction, CatalogItem.id)
    if query.cursor:
        data = _decode_cursor(query.cursor)
        if data["s"] != sort:
            raise InvalidSearch("cursor belongs to another sort order")
        last_key, last_id = data["k"], data["i"]
        if sort == "newest":
            stmt = stmt.where(CatalogItem.id < last_id)
        elif sort == "price_desc":
            stmt = stmt.where(or_(key < last_key, and_(key == last_key, CatalogItem.id > last_id)))
        elif sort == "relevance":
            stmt = stmt.where(or_(key > last_key, and_(key == last_key, CatalogItem.id > last_id)))
        else:
            stmt = stmt.where(tuple_(key, CatalogItem.id) > tuple_(last_key, last_id))
    return stmt, key


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


FACETS = ("license", "source", "orientation", "has_image", "creator", "medium")


def _facet_column(name: str) -> Any:
    return getattr(CatalogItem, name)


def _facets(session: Session, query: SearchQuery) -> tuple[list[Facet], bool]:
    """Top values of each facet, each counted with every other filter applied but its own.

    Counting stops at FACET_SAMPLE rows per facet; larger result sets get counts over that
    sample and `exact` is False (the page says so).
    """
    exact = True
    facets = []
    for name in FACETS:
        column_ = _facet_column(name)
        sample = (
            select(column_.label("value"))
            .where(*_conditions(session, query, skip=name))
            .limit(FACET_SAMPLE + 1)
            .subquery()
        )
        counted = func.count()
        rows = session.execute(
            select(sample.c.value, counted, func.sum(counted).over())
            .group_by(sample.c.value)
            .order_by(counted.desc(), sample.c.value)
            .limit(FACET_TOP)
        ).all()
        if rows and int(rows[0][2]) > FACET_SAMPLE:
            exact = False
        values = [(_facet_value(v), int(n)) for v, n, _ in rows if v not in (None, "")]
        facets.append(Facet(name, values))
    return facets, exact


def _facet_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value.value if hasattr(value, "value") else value)


def count_matches(session: Session, query: SearchQuery, cap: int = COUNT_CAP) -> tuple[int, bool]:
    capped = select(CatalogItem.id).where(*_conditions(session, query)).limit(cap + 1).subquery()
    total = int(session.scalar(select(func.count()).select_from(capped)) or 0)
    return min(total, cap), total <= cap


def search(session: Session, query: SearchQuery, *, with_facets: bool = True) -> SearchResult:
    stmt, _key = _ordered(session, query)
    rows = session.execute(stmt.limit(query.limit + 1)).all()
    page = rows[: query.limit]
    next_cursor = None
    if len(rows) > query.limit and page:
        last_item, last_key = page[-1]
        key = float(last_key) if isinstance(last_key, float) else last_key
        next_cursor = _encode_cursor(query.effective_sort, key, last_item.id)
    total, exact = count_matches(session, query)
    facets, facets_exact = _facets(session, query) if with_facets else ([], True)
    return SearchResult(
        items=[item for item, _ in page],
        total=total,
        total_exact=exact,
        facets=facets,
        facets_exact=facets_exact,
        next_cursor=next_cursor,
    )


def iter_matching_ids(session: Session, query: SearchQuery, cap: int) -> Iterator[int]:
    """Ids of every match in order, at most `cap` (for adding a whole search to a collection)."""
    query = replace(query, cursor=None, limit=1000)
    produced = 0
    while produced < cap:
        stmt, _ = _ordered(session, query)
        rows = session.execute(stmt.limit(min(1000, cap - produced) + 1)).all()
        page = rows[: min(1000, cap - produced)]
        for item, _key in page:
            yield item.id
        produced += len(page)
        if len(rows) <= len(page) or not page:
            return
        last_item, last_key = page[-1]
        query = replace(query, cursor=_encode_cursor(query.effective_sort, last_key, last_item.id))
