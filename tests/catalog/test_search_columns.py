"""Searches without words: exact totals and facets from each process's in-memory columns, kept
up with the index's changes, and never showing what the database no longer offers."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
import tantivy
from sqlalchemy import insert, select, update

from marketplace.artists.terms import ALL_USES_MASK
from marketplace.catalog import search, search_columns, search_index
from marketplace.catalog.models import CatalogItem, CatalogLicense, Orientation
from marketplace.db import transaction, utcnow
from tests.catalog.test_search import make_stock

SOURCES = ("met", "aic", "cleveland", "tate")
CREATORS = ("Thomas Cole", "Rachel Ruysch", "Unknown", "", "Jan van Huysum")
MEDIA = ("oil on canvas", "etching", "", "albumen print")
WORDS = ["meadow", "harbour", "orchard", "glacier", "lantern"]


def _rows(count: int, seed: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    now = utcnow()
    out = []
    for i in range(1, count + 1):
        licence = rng.choice(list(CatalogLicense))
        width = rng.choice((None, 640, 1200, 2400))
        year = rng.choice((None, 1500, 1650, 1830, 1900))
        out.append(
            {
                "id": i,
                "available": rng.random() < 0.9,
                "title": " ".join(rng.sample(WORDS, 2)).capitalize(),
                "description": "",
                "tags": "",
                "creator": rng.choice(CREATORS),
                "institution": "Test Museum",
                "source": rng.choice(SOURCES),
                "medium": rng.choice(MEDIA),
                "year_start": year,
                "year_end": None if year is None else year + rng.choice((0, 10)),
                "width": width,
                "height": None if width is None else rng.choice((480, 1200, 3000)),
                "orientation": rng.choice(list(Orientation)),
                "license": licence,
                "price_minor": rng.choice((0, 300, 1200)),
                "currency": "usd",
                "has_image": rng.random() < 0.5,
                "permitted_uses": rng.choice((ALL_USES_MASK, 1, 3)),
                "created_at": now,
                "updated_at": now,
            }
        )
    return out


@pytest.fixture
def generated(app, db):
    with app.app_context(), transaction() as session:
        session.execute(insert(CatalogItem), _rows(300))
    with app.app_context(), transaction() as session:
        search_index.rebuild(session)


def _value(item: CatalogItem, name: str) -> str:
    value = getattr(item, name)
    if name == "has_image":
        return "true" if value else "false"
    return str(getattr(value, "value", value))


_NO_FILTER = {name: getattr(search.SearchQuery(), name) for name in search.FACETS}


def expected(
    session, query: search.SearchQuery, among: set[int] | None = None
) -> tuple[int, list[int], dict]:
    """Total, newest-first ids and facets, counted in Python over every row (or `among`)."""
    items = sorted(session.scalars(select(CatalogItem)), key=lambda i: -i.id)
    if among is not None:
        items = [i for i in items if i.id in among]
    matching = [i for i in items if search_index.still_matches(i, query)]
    facets = {}
    for name in search.FACETS:
        unfiltered = replace(query, **{name: _NO_FILTER[name]})
        counts = Counter(
            _value(i, name) for i in items if search_index.still_matches(i, unfiltered)
        )
        counts.pop("", None)
        facets[name] = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: search.FACET_TOP]
    return len(matching), [i.id for i in matching], facets


QUERIES = [
    {},
    {"q": ["the"]},  # a stop word alone: every work
    {"license": ["public_domain"]},
    {"license": ["cc0", "licensed"], "orientation": ["square"]},
    {"source": ["met", "tate"], "has_image": ["true"]},
    {"year_from": ["1600"], "year_to": ["1850"]},
    {"min_width": ["1000"], "min_height": ["1000"]},
    {"price_min": ["1"], "price_max": ["5"], "sort": ["newest"]},
    {"uses": ["non_generative_training"]},
    {"creator": ["Thomas Cole"], "medium": ["etching"]},
    {"creator": ["Thomas Cole"], "license": ["public_domain"], "year_from": ["1700"]},
    {"creator": ["Nobody at all"]},
    {"source": ["nowhere"]},
]


@pytest.mark.usefixtures("generated")
@pytest.mark.parametrize("params", QUERIES)
def test_totals_facets_and_pages_are_exact(app, db, params):
    with app.app_context(), transaction() as session:
        query = search.parse_query(params)
        total, ids, facets = expected(session, query)
        result = search.search(session, query)
        assert result.total == total
        assert result.total_exact
        assert {f.name: f.values for f in result.facets} == facets
        assert [i.id for i in result.items] == ids[: query.limit]
        walked, page = [], result  # every page by cursor, then one step back
        while True:
            walked += [i.id for i in page.items]
            if page.next_cursor is None:
                break
            previous = page
            page = search.search(session, replace(query, cursor=page.next_cursor))
            assert page.total == total  # the whole set's total on every page
        assert walked == ids
        if len(ids) > query.limit:
            back = search.search(session, replace(query, cursor=page.previous_cursor))
            assert [i.id for i in back.items] == [i.id for i in previous.items]


@pytest.mark.usefixtures("generated")
def test_tantivy_alone_agrees_while_a_large_catalog_loads_in_the_background(app, db, monkeypatch):
    monkeypatch.setattr(search_columns, "INLINE_MAX", 0)  # as for a million works
    query = search.parse_query({"license": ["public_domain"], "min_width": ["1000"]})
    with app.app_context(), transaction() as session:
        first = search.search(session, query)  # tantivy answers; the columns start loading
        holder = app.extensions["search_columns"]
        holder.loading.join(timeout=60)
        assert holder.columns is not None
        second = search.search(session, query)  # from the columns
    assert (first.total, [i.id for i in first.items]) == (
        second.total,
        [i.id for i in second.items],
    )
    assert first.facets == second.facets


def _search(app, **params) -> search.SearchResult:
    with app.app_context(), transaction() as session:
        result = search.search(session, search.parse_query({k: [v] for k, v in params.items()}))
        session.expunge_all()
        return result


def _facet(result: search.SearchResult, name: str) -> dict[str, int]:
    return dict(next(f.values for f in result.facets if f.name == name))


def test_a_new_work_counts_at_once_though_totals_were_cached(app, db):
    make_stock(db, "Harbour", source="met")
    before = _search(app, license="public_domain")
    assert _search(app, license="public_domain").total == before.total == 1  # cached
    make_stock(db, "River", source="aic")  # its index update logs the change
    after = _search(app, license="public_domain")
    assert after.total == 2
    assert _facet(after, "source") == {"met": 1, "aic": 1}
    assert [i.title for i in after.items] == ["River", "Harbour"]


def test_a_withdrawn_work_vanishes_at_once_even_with_cached_facets(app, db, monkeypatch):
    make_stock(db, "Harbour", source="met")
    make_stock(db, "River", source="aic")
    assert _search(app, source="aic").total == 1
    _search(app, source="aic")  # totals and facets now cached
    monkeypatch.setattr(search_index, "update", lambda *args, **kwargs: 0)  # the index lags
    with transaction(db) as session:
        session.execute(
            update(CatalogItem).where(CatalogItem.title == "River").values(available=False)
        )
    result = _search(app, source="aic")
    assert result.items == []  # the page is checked against the database
    assert result.total == 0  # the dropped hit is taken off the cached total
    assert [i.title for i in _search(app).items] == ["Harbour"]


def test_changes_logged_by_the_index_writer_are_read_by_every_process(app, db, monkeypatch):
    """The writer (an RQ worker in production) logs the ids it updated; readers re-read them."""
    make_stock(db, "Harbour", source="met", creator="Thomas Cole")
    assert _facet(_search(app), "creator") == {"Thomas Cole": 1}
    monkeypatch.setattr(search_index, "update", lambda *args, **kwargs: 0)
    with transaction(db) as session:
        session.execute(update(CatalogItem).values(creator="Frederic Church"))
    assert _facet(_search(app), "creator") == {"Thomas Cole": 1}  # nothing told the columns
    with app.app_context():
        item_id = db.scalar(select(CatalogItem.id))
        search_columns.log_changes(search_index.index_dir(app), [item_id])  # another writer
    assert _facet(_search(app), "creator") == {"Frederic Church": 1}


def test_a_new_index_generation_reloads_the_columns(app, db, monkeypatch):
    make_stock(db, "Harbour", source="met")
    assert _facet(_search(app), "source") == {"met": 1}
    with monkeypatch.context() as patch:
        patch.setattr(search_index, "update", lambda *args, **kwargs: 0)
        with transaction(db) as session:
            session.execute(update(CatalogItem).values(source="tate"))
        assert _facet(_search(app), "source") == {"met": 1}  # lagging, as the index does
    result = app.test_cli_runner().invoke(args=["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert _facet(_search(app), "source") == {"tate": 1}


@pytest.mark.usefixtures("generated")
@pytest.mark.parametrize(
    "params",
    [
        {"q": ["meadow"]},
        {"q": ["orchard"], "creator": ["Thomas Cole"], "license": ["public_domain"]},
        {"q": ["glacier"], "medium": ["etching"], "min_width": ["1000"]},
    ],
)
def test_text_searches_count_creators_and_media_exactly(app, db, params):
    """Text searches stay with tantivy; their many-valued facets are counted on name keys."""
    with app.app_context(), transaction() as session:
        query = search.parse_query(params)
        word = query.tokens[0]
        has_word = session.scalars(
            select(CatalogItem.id).where(CatalogItem.title.ilike(f"%{word}%"))
        )
        words = set(has_word)
        total, ids, facets = expected(session, query, among=words)
        result = search.search(session, query)
        assert result.total == total
        assert result.facets_exact
        assert {f.name: f.values for f in result.facets} == facets
        page = [i.id for i in result.items]
        assert set(page) <= set(ids)
        assert len(page) == min(query.limit, total)


def test_an_index_of_an_older_schema_hides_everything_until_reindexed(app, db, client):
    """After an upgrade that changes the index's fields, search shows nothing (never a
    withdrawn work) and `search reindex --if-empty` builds the new index."""
    make_stock(db, "Harbour", source="met")
    root = search_index.index_dir(app)
    old = root / "gen-old"
    old.mkdir()
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("id", indexed=True, fast=True)
    tantivy.Index(builder.build(), path=str(old))
    search_index._swap_link(root, old)
    assert client.get("/api/v1/works", query_string={"q": "harbour"}).get_json()["items"] == []
    result = app.test_cli_runner().invoke(args=["search", "reindex", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert [i.title for i in _search(app, q="harbour").items] == ["Harbour"]
