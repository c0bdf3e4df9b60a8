"""One search over artists' works and public-domain stock: text, filters, facets, pages."""

from __future__ import annotations

import itertools
import re
import zlib

import pytest
from sqlalchemy import select

from marketplace import imaging
from marketplace.artists import services as artists
from marketplace.artists.models import TermsKind
from marketplace.artists.terms import TermsSpec
from marketplace.catalog.ingest import ingest_records
from marketplace.catalog.models import CatalogItem, MirrorStatus, StockRecord
from marketplace.catalog.sources.base import CC0_URI, StockFields
from marketplace.catalog.tasks import store_stock_image
from marketplace.db import transaction
from tests import images
from tests.factories import make_artist

_ids = itertools.count(1)


def make_stock(
    db,
    title: str,
    *,
    source: str = "met",
    width: int | None = None,
    height: int | None = None,
    mirror_status: MirrorStatus = MirrorStatus.PENDING,
    **fields,
) -> CatalogItem:
    """A public-domain record loaded as museum records are: through the ingest service (ledger
    entry included); MIRRORED stores a real image of `width` x `height` as mirroring does."""
    values = {
        "source_id": f"obj-{next(_ids)}",
        "creator": "Unknown",
        "institution": "The Metropolitan Museum of Art",
        "rights_uri": CC0_URI,
        "raw": {"title": title},
        "image_urls": ("http://images.example/x.jpg",),
        **fields,
    }
    values["image_urls"] = tuple(values["image_urls"])
    record = StockFields(title=title, image_width=width, image_height=height, **values)
    app = db.info["app"]
    with app.app_context():
        assert ingest_records(source, [record]).added == 1
        if mirror_status is MirrorStatus.MIRRORED:
            with transaction() as session:
                stored = session.scalar(
                    select(StockRecord).where(
                        StockRecord.source == source, StockRecord.source_id == record.source_id
                    )
                )
                # Seeded by the title, not by how many tests ran before: the picture (and its
                # pHash, which opt-out rules in the same catalog are matched against) is the
                # same in any test order.
                picture = images.png(zlib.crc32(title.encode()), (width or 640, height or 480))
                inspected = imaging.inspect_image(picture, max_bytes=10**8, max_pixels=10**8)
                store_stock_image(session, stored, picture, inspected)
    db.rollback()  # a fresh snapshot
    item = db.scalar(
        select(CatalogItem)
        .join(StockRecord, StockRecord.id == CatalogItem.stock_id)
        .where(StockRecord.source == source, StockRecord.source_id == record.source_id)
    )
    db.commit()  # end the read: later reads see what the test does next (loaded values stay)
    return item


def make_work(db, artist, title: str, terms: TermsSpec, seed: int, **fields):
    with db.info["app"].app_context(), transaction(db) as session:
        owner = session.merge(artist)
        return artists.register_work(
            session, owner.artist, owner, images.png(seed), title=title, terms=terms, **fields
        )


LICENSED = TermsSpec(TermsKind.LICENSE, price_minor=300, generative_training=True)
DONATED = TermsSpec(TermsKind.DONATE)


@pytest.fixture
def catalog_items(db):
    artist = make_artist(db, display_name="Ada Okafor")
    make_work(db, artist, "Harbour at dusk", LICENSED, 1, tags="sea, boats")
    make_work(db, artist, "Salt flats", DONATED, 2, description="White crust under a low sun")
    make_work(db, artist, "Private sketch", TermsSpec(TermsKind.NOT_AVAILABLE), 3)
    make_stock(
        db,
        "View of a Harbour",
        creator="Thomas Cole",
        year_start=1830,
        year_end=1832,
        medium="oil on canvas",
        width=1200,
        height=800,
        mirror_status=MirrorStatus.MIRRORED,
    )
    make_stock(
        db,
        "Quail and Millet",
        creator="Kiyohara Yukinobu",
        year_start=1650,
        year_end=1700,
        medium="hanging scroll",
        width=600,
        height=1400,
        source="cleveland",
        institution="Cleveland Museum of Art",
    )
    make_stock(
        db, "Café interior", creator="Élise Mercier", year_start=1905, medium="oil on canvas"
    )
    return artist


def search(client, **params):
    response = client.get("/api/v1/works", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def titles(body) -> set[str]:
    return {item["title"] for item in body["items"]}


@pytest.mark.usefixtures("catalog_items")
def test_text_search_mixes_works_and_stock_and_skips_unavailable(client):
    assert titles(search(client, q="harbour")) == {"Harbour at dusk", "View of a Harbour"}
    assert titles(search(client)) == {
        "Harbour at dusk",
        "Salt flats",
        "View of a Harbour",
        "Quail and Millet",
        "Café interior",
    }
    assert search(client, q="sketch")["items"] == []
    assert titles(search(client, q="crust")) == {"Salt flats"}  # description
    assert titles(search(client, q="boats")) == {"Harbour at dusk"}  # tags
    assert titles(search(client, q="cleveland")) == {"Quail and Millet"}  # institution
    assert titles(search(client, q="cafe")) == {"Café interior"}  # accents folded


@pytest.mark.usefixtures("catalog_items")
def test_filters_and_facets(client):
    body = search(client, license="public_domain")
    assert titles(body) == {"View of a Harbour", "Quail and Millet", "Café interior"}
    facets = {f: dict((v["value"], v["count"]) for v in vals) for f, vals in body["facets"].items()}
    # A facet counts with the other filters but not its own: every licence stays visible.
    assert facets["license"] == {"public_domain": 3, "licensed": 1, "cc0": 1}
    assert facets["source"] == {"met": 2, "cleveland": 1}
    assert titles(search(client, license="public_domain", medium="oil on canvas")) == {
        "View of a Harbour",
        "Café interior",
    }
    assert titles(search(client, year_from=1600, year_to=1800)) == {"Quail and Millet"}
    assert titles(search(client, orientation="portrait")) == {"Quail and Millet"}
    assert titles(search(client, min_width=1000)) >= {"View of a Harbour"}
    assert titles(search(client, has_image="true", source="met")) == {"View of a Harbour"}
    assert titles(search(client, price_min="2", price_max="5")) == {"Harbour at dusk"}
    assert titles(search(client, license="licensed,cc0")) == {"Harbour at dusk", "Salt flats"}


@pytest.mark.usefixtures("catalog_items")
def test_sorting_by_price_and_newest(client):
    by_price = [i["title"] for i in search(client, sort="price_desc")["items"]]
    assert by_price[0] == "Harbour at dusk"
    newest = [i["title"] for i in search(client, sort="newest")["items"]]
    assert newest[0] == "Café interior"


def test_pages_continue_by_cursor_without_repeats(client, db):
    for n in range(23):
        make_stock(db, f"Harbour study {n}", year_start=1800 + n)
    for sort in ("relevance", "newest", "price_asc", "price_desc"):
        seen, cursor = [], None
        while True:
            params = {"q": "harbour", "limit": 5, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            body = search(client, **params)
            seen += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == 23, sort


@pytest.mark.parametrize(
    "params",
    [
        {"q": '"unbalanced'},
        {"q": "harbour AND OR NOT NEAR(x y) *"},
        {"q": "title:harbour col* ^x"},
        {"q": "a" * 5000},
        {"q": "'; DROP TABLE catalog_items; --"},
        {"q": "\u202e\U0001f600"},
    ],
)
@pytest.mark.usefixtures("catalog_items")
def test_hostile_text_is_just_text(client, params):
    assert client.get("/api/v1/works", query_string=params).status_code == 200
    assert client.get("/catalog", query_string=params).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"colour": "red"},
        {"license": "free"},
        {"sort": "random"},
        {"year_from": "last year"},
        {"limit": "0"},
        {"limit": "1000"},
        {"orientation": "diagonal"},
        {"price_min": "cheap"},
        {"price_max": "2,50"},
    ],
)
def test_invalid_filters_are_a_clear_400(client, params):
    response = client.get("/api/v1/works", query_string=params)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] in ("invalid_search", "invalid_request")
    # The page ignores names that are not its filters (a shared link's utm_source, fbclid).
    page_status = 200 if "colour" in params else 400
    assert client.get("/catalog", query_string=params).status_code == page_status


@pytest.mark.usefixtures("catalog_items")
def test_a_bad_filter_keeps_the_page_with_the_error_beside_its_field(client):
    response = client.get(
        "/catalog", query_string={"q": "harbour", "year_from": "abc", "medium": "oil on canvas"}
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    # The search still ran with the other filters, and the page keeps its form.
    assert re.findall(r'class="work-card__title">([^<]*)<', html) == ["View of a Harbour"]
    assert 'id="q" name="q" type="search" value="harbour"' in html
    # The field keeps what was typed, marked invalid, with its message right after it.
    field = re.search(r'<input id="year_from"[^>]*>\s*<p[^>]*>([^<]*)</p>', html)
    assert field is not None
    assert 'value="abc"' in field.group(0)
    assert 'aria-invalid="true" aria-describedby="year_from-error"' in field.group(0)
    assert '<p class="field__error" id="year_from-error">' in field.group(0)
    assert field.group(1) == "From year must be a whole number"
    assert "see the messages beside them" in html


@pytest.mark.usefixtures("catalog_items")
def test_a_bad_filter_without_a_field_is_listed_above_the_results(client):
    response = client.get("/catalog", query_string={"q": "harbour", "orientation": "diagonal"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "<li>orientation must be one of" in html
    assert sorted(re.findall(r'class="work-card__title">([^<]*)<', html)) == [
        "Harbour at dusk",
        "View of a Harbour",
    ]


def test_withdrawn_work_leaves_the_catalog(client, db, catalog_items):
    body = search(client, q="dusk")
    assert len(body["items"]) == 1
    item_id = body["items"][0]["id"]
    with db.info["app"].app_context(), transaction(db) as session:
        item = session.get(CatalogItem, item_id)
        work = artists.get_work(session, item.work_id)
        artists.withdraw_consent(session, work, session.merge(catalog_items))
    assert search(client, q="dusk")["items"] == []
    assert client.get(f"/api/v1/works/{item_id}").status_code == 404
    assert client.get(f"/catalog/items/{item_id}").status_code == 404


@pytest.mark.usefixtures("catalog_items")
def test_detail_page_and_api_show_terms_price_and_provenance(client, db):
    work_item = search(client, q="dusk")["items"][0]
    detail = client.get(f"/api/v1/works/{work_item['id']}").get_json()
    assert detail["kind"] == "work"
    assert detail["price_minor"] == 300
    assert detail["terms"]["version"] == 1
    assert len(detail["ledger_entries"]) == 2
    page = client.get(f"/catalog/items/{work_item['id']}").get_data(as_text=True)
    assert "$3.00" in page
    assert "terms version 1" in page
    assert f'/ledger/entries/{detail["ledger_entries"][0]}"' in page  # its readable page
    stock_item = search(client, q="quail")["items"][0]
    stock = client.get(f"/api/v1/works/{stock_item['id']}").get_json()
    assert stock["kind"] == "stock"
    assert stock["license"] == "public_domain"
    assert stock["source_record"]["raw"] == {"title": "Quail and Millet"}
    html = client.get(f"/catalog/items/{stock_item['id']}").get_data(as_text=True)
    assert "Cleveland Museum of Art" in html
    assert "Free" in html


def test_the_search_page_renders_results_and_facets(client, db, catalog_items):
    html = client.get("/catalog", query_string={"q": "harbour"}).get_data(as_text=True)
    assert "2 works" in html
    assert "View of a Harbour" in html
    assert "Public domain" in html
    items = db.scalars(select(CatalogItem)).all()
    assert len(items) == 6  # the private sketch has a row, marked unavailable


def test_search_finds_what_permits_the_buyer_s_uses(client, db):
    artist = make_artist(db, display_name="Ada Okafor")
    commercial = TermsSpec(
        TermsKind.LICENSE,
        price_minor=300,
        generative_training=True,
        commercial_use=True,
        attribution_required=True,
    )
    research = TermsSpec(TermsKind.LICENSE, price_minor=200, non_generative_training=True)
    make_work(db, artist, "Commercial ok", commercial, 41)
    make_work(db, artist, "Research only", research, 42)
    make_work(db, artist, "Donated", DONATED, 43)
    make_stock(db, "Museum stock")

    wanted = {"uses": "generative_training,commercial_use"}
    expected = {"Commercial ok", "Donated", "Museum stock"}
    found = search(client, **wanted)["items"]
    assert {item["title"] for item in found} == expected
    allowed = {item["title"]: item["permitted_uses"] for item in found}
    assert allowed["Commercial ok"] == ["generative_training", "commercial_use"]
    assert len(allowed["Museum stock"]) == 5
    assert titles(search(client, uses=["non_generative_training"])) == {
        "Research only",
        "Donated",
        "Museum stock",
    }
    page = client.get("/catalog", query_string=wanted).get_data(as_text=True)
    assert {t for t in expected | {"Research only"} if f">{t}<" in page} == expected
    assert 'name="uses" value="commercial_use" checked' in page
    refused = client.get("/api/v1/works", query_string={"uses": "world_domination"})
    assert refused.status_code == 400
    problems = refused.get_json()["error"]["details"]["problems"]
    assert problems[0]["field"].startswith("uses")


def test_an_item_page_lists_the_uses_its_terms_permit(client, db):
    artist = make_artist(db, display_name="Ada Okafor")
    make_work(
        db,
        artist,
        "Research only",
        TermsSpec(
            TermsKind.LICENSE, price_minor=200, non_generative_training=True, fine_tuning=True
        ),
        44,
    )
    item = db.scalar(select(CatalogItem))
    page = client.get(f"/catalog/items/{item.id}").get_data(as_text=True)
    assert (
        'Training non-generative / analytic models<span class="visually-hidden">: permitted' in page
    )
    assert 'Fine-tuning<span class="visually-hidden">: permitted' in page
    assert 'Training generative models<span class="visually-hidden">: not permitted' in page
    assert (
        'Commercial use of the trained model<span class="visually-hidden">: not permitted' in page
    )
    assert "No attribution required" in page


def test_repeated_filter_values_count_once_and_too_many_distinct_ones_say_so(client):
    repeated = {"license": ",".join(["cc0", "licensed"] * 30)}
    assert client.get("/api/v1/works", query_string=repeated).status_code == 200
    assert client.get("/catalog", query_string=repeated).status_code == 200
    many = {"source": [f"s{n}" for n in range(51)]}
    response = client.get("/catalog", query_string=many)
    assert response.status_code == 400
    assert "too many values for source" in response.get_data(as_text=True)
