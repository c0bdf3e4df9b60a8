"""Opted-out works leave the catalog the moment the rule commits: search (even while the index
lags), item pages, the API, collections, new bundles and checkout; works arriving after a rule
come in hidden; withdrawing a rule brings back only what nothing else keeps out."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest
from sqlalchemy import event, select, update

from marketplace import imaging
from marketplace.artists import services as artists
from marketplace.buyers import services as buyers
from marketplace.buyers.models import Bundle, BundleItem
from marketplace.catalog import optouts, search_index
from marketplace.catalog.ingest import ingest_records
from marketplace.catalog.models import (
    CatalogItem,
    CatalogLicense,
    ItemImage,
    ItemOptOut,
    Orientation,
    StockRecord,
)
from marketplace.catalog.sources.base import CC0_URI, Skipped, StockFields
from marketplace.catalog.tasks import store_stock_image
from marketplace.db import get_database, transaction, utcnow
from marketplace.optout import services as optout
from marketplace.optout.models import OptOutRule, RuleKind
from tests import images
from tests.buyers.support import bundle, licence
from tests.factories import make_api_token, make_artist, make_buyer

MUSEUM = "https://images.museum.example/objects"


def stock(db: Any, title: str, source_id: str, image_url: str, page_url: str = "") -> int:
    """A museum record loaded through the ingest; returns its catalog item id."""
    record = StockFields(
        source_id=source_id,
        title=title,
        creator="Unknown",
        institution="The Metropolitan Museum of Art",
        rights_uri=CC0_URI,
        raw={"title": title},
        image_urls=(image_url,),
        page_url=page_url,
    )
    with db.info["app"].app_context():
        assert ingest_records("met", [record]).added == 1
    db.rollback()
    return int(
        db.scalar(
            select(CatalogItem.id)
            .join(StockRecord, StockRecord.id == CatalogItem.stock_id)
            .where(StockRecord.source_id == source_id)
        )
    )


def mirror(db: Any, item_id: int, data: bytes) -> None:
    """Store `data` as the stock item's image, as the mirroring job does."""
    with db.info["app"].app_context(), transaction(db) as session:
        item = session.get(CatalogItem, item_id)
        record = session.get(StockRecord, item.stock_id)
        inspected = imaging.inspect_image(data, max_bytes=10**8, max_pixels=10**8)
        store_stock_image(session, record, data, inspected)
    db.expire_all()


def upload(db: Any, user: Any, data: bytes, title: str) -> int:
    with db.info["app"].app_context(), transaction(db) as session:
        owner = session.merge(user)
        work = artists.register_work(
            session, owner.artist, owner, data, title=title, terms=licence()
        )
        work_id = work.id
    db.expire_all()
    return int(db.scalar(select(CatalogItem.id).where(CatalogItem.work_id == work_id)))


def titles(client: Any, **params: Any) -> list[str]:
    response = client.get("/api/v1/works", query_string=params)
    assert response.status_code == 200, response.get_json()
    return sorted(item["title"] for item in response.get_json()["items"])


def shown(client: Any, item_id: int, title: str) -> bool:
    """Whether a buyer can see the item anywhere: search (API and page), item page, API."""
    in_api = title in titles(client, q="harbour")
    in_page = title in client.get("/catalog", query_string={"q": "harbour"}).get_data(as_text=True)
    page = client.get(f"/catalog/items/{item_id}").status_code
    api = client.get(f"/api/v1/works/{item_id}").status_code
    assert in_api == in_page == (page == 200) == (api == 200), (in_api, in_page, page, api)
    return in_api


@pytest.fixture
def museum(db):
    return {
        "Harbour one": stock(
            db,
            "Harbour one",
            "m-1",
            f"{MUSEUM}/1/full.jpg",
            "https://www.museum.example/collection/1",
        ),
        "Harbour two": stock(
            db,
            "Harbour two",
            "m-2",
            f"{MUSEUM}/2/full.jpg",
            "https://www.museum.example/collection/2",
        ),
        "Harbour three": stock(db, "Harbour three", "m-3", "https://cdn.other.example/3.jpg"),
    }


@pytest.fixture
def lagging(monkeypatch):
    """From now on the search index is never told of a change."""
    monkeypatch.setattr(search_index, "update", lambda *args, **kwargs: 0)


@pytest.mark.parametrize(
    ("kind", "address", "hidden"),
    [
        ("domain", "museum.example", {"Harbour one", "Harbour two"}),
        ("domain", "www.museum.example", {"Harbour one", "Harbour two"}),  # the record pages
        ("url", "HTTPS://IMAGES.museum.example:443/objects/1/full.jpg#top", {"Harbour one"}),
        ("prefix", f"{MUSEUM}/2/", {"Harbour two"}),
        ("domain", "other.example", {"Harbour three"}),
        ("domain", "museum.example.org", set()),  # a look-alike domain matches nothing
    ],
)
def test_an_address_rule_hides_matching_stock_at_once_though_the_index_lags(
    client, db, museum, kind, address, hidden, monkeypatch
):
    for title, item_id in museum.items():
        assert shown(client, item_id, title)
    token = make_api_token(db, make_artist(db))
    monkeypatch.setattr(search_index, "update", lambda *args, **kwargs: 0)

    response = client.post(
        "/api/v1/artist/optouts",
        json={"kind": kind, "address": address},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 201, response.get_json()
    for title, item_id in museum.items():
        assert shown(client, item_id, title) is (title not in hidden), title
    body = client.get("/api/v1/works", query_string={"q": "harbour"}).get_json()
    assert body["total"] == 3 - len(hidden)
    rule_id = response.get_json()["id"]
    recorded = set(db.scalars(select(ItemOptOut.item_id).where(ItemOptOut.rule_id == rule_id)))
    assert recorded == {museum[t] for t in hidden}


def test_image_rules_hide_mirrored_stock_and_artists_works_by_hash_and_picture(
    client, db, museum, login, monkeypatch
):
    stock_picture, work_picture = images.png(7001), images.png(7002)
    mirror(db, museum["Harbour three"], stock_picture)
    painter = make_artist(db, display_name="Ada Okafor")
    work_item = upload(db, painter, work_picture, "Harbour at dusk")
    assert shown(client, work_item, "Harbour at dusk")
    assert shown(client, museum["Harbour three"], "Harbour three")
    monkeypatch.setattr(search_index, "update", lambda *args, **kwargs: 0)  # the index lags

    login(make_artist(db, email="owner@example.com"))
    # The very file of the museum's image...
    response = client.post("/optout/image", data={"image": (io.BytesIO(stock_picture), "a.png")})
    assert response.status_code == 302
    assert not shown(client, museum["Harbour three"], "Harbour three")
    assert shown(client, work_item, "Harbour at dusk")
    # ...and a JPEG copy of the artist's picture: another file, the same picture (pHash).
    copy = images.jpeg(7002)
    assert imaging.inspect_image(copy, max_bytes=10**8, max_pixels=10**8).sha256 != (
        imaging.inspect_image(work_picture, max_bytes=10**8, max_pixels=10**8).sha256
    )
    response = client.post("/optout/image", data={"image": (io.BytesIO(copy), "b.jpg")})
    assert response.status_code == 302
    assert not shown(client, work_item, "Harbour at dusk")
    assert shown(client, museum["Harbour one"], "Harbour one")  # nothing else is touched


def test_works_arriving_after_a_rule_come_in_hidden(client, db):
    owner = make_artist(db, email="owner@example.com")
    opted_out_picture = images.png(7101)
    with db.info["app"].app_context(), transaction(db) as session:
        user = session.merge(owner)
        optout.register_address(session, user, RuleKind.DOMAIN, "museum.example")
        optout.register_image(session, user, opted_out_picture, max_bytes=10**8, max_pixels=10**8)

    kept_out = stock(db, "Harbour one", "m-1", f"{MUSEUM}/1/full.jpg")
    offered = stock(db, "Harbour three", "m-3", "https://cdn.other.example/3.jpg")
    copied = upload(db, make_artist(db, display_name="Copyist"), opted_out_picture, "Harbour copy")
    own = upload(db, make_artist(db, display_name="Painter"), images.png(7102), "Harbour own")

    assert not shown(client, kept_out, "Harbour one")
    assert not shown(client, copied, "Harbour copy")
    assert shown(client, offered, "Harbour three")
    assert shown(client, own, "Harbour own")
    # Mirroring a record whose image turns out to be opted out takes it out too.
    mirror(db, offered, opted_out_picture)
    assert not shown(client, offered, "Harbour three")


def test_withdrawing_a_rule_brings_back_only_what_nothing_else_keeps_out(client, db, museum):
    owner = make_artist(db, email="owner@example.com")
    with db.info["app"].app_context(), transaction(db) as session:
        user = session.merge(owner)
        domain = optout.register_address(session, user, RuleKind.DOMAIN, "museum.example").id
        url = optout.register_address(session, user, RuleKind.URL, f"{MUSEUM}/1/full.jpg").id
    with db.info["app"].app_context():  # the museum stops offering record 2
        assert ingest_records("met", [Skipped(reason="not open access", source_id="m-2")])
    taken_down = stock(db, "Harbour four", "m-4", f"{MUSEUM}/4/full.jpg")
    with transaction(db) as session:  # a claim against it was upheld
        session.execute(
            update(CatalogItem)
            .where(CatalogItem.id == taken_down)
            .values(available=False, taken_down_at=utcnow())
        )
    assert not shown(client, museum["Harbour one"], "Harbour one")

    with db.info["app"].app_context(), transaction(db) as session:
        optout.remove_rule(session, session.merge(owner), domain)
    assert not shown(client, museum["Harbour one"], "Harbour one")  # the URL rule still holds
    assert not shown(client, museum["Harbour two"], "Harbour two")  # withdrawn by its museum

    with db.info["app"].app_context(), transaction(db) as session:
        optout.remove_rule(session, session.merge(owner), url)
    assert shown(client, museum["Harbour one"], "Harbour one")
    assert not shown(client, museum["Harbour two"], "Harbour two")
    assert shown(client, museum["Harbour three"], "Harbour three")
    assert not shown(client, taken_down, "Harbour four")  # a takedown is not the rule's to undo
    assert db.scalar(select(ItemOptOut.item_id)) is None


def test_an_artist_making_a_work_unavailable_hides_copies_and_offering_it_again_frees_them(
    client, db
):
    picture = images.png(7201)
    painter = make_artist(db, display_name="Ada Okafor")
    original = upload(db, painter, picture, "Harbour original")
    museum_copy = stock(db, "Harbour museum copy", "m-9", "https://cdn.other.example/9.jpg")
    mirror(db, museum_copy, images.jpeg(7201))
    assert shown(client, museum_copy, "Harbour museum copy")

    work = db.get(CatalogItem, original).work_id
    with db.info["app"].app_context(), transaction(db) as session:
        artists.set_terms(
            session,
            artists.get_work(session, work),
            session.merge(painter),
            artists.TermsSpec(artists.TermsKind.NOT_AVAILABLE),
        )
    assert not shown(client, original, "Harbour original")
    assert not shown(client, museum_copy, "Harbour museum copy")

    with db.info["app"].app_context(), transaction(db) as session:
        artists.set_terms(
            session, artists.get_work(session, work), session.merge(painter), licence()
        )
    assert shown(client, original, "Harbour original")
    assert shown(client, museum_copy, "Harbour museum copy")


def test_collections_show_opted_out_items_unavailable_and_bundles_leave_them_out(
    client, db, museum, lagging, run_jobs
):
    buyer = make_buyer(db)
    token = make_api_token(db, buyer)
    auth = {"Authorization": f"Bearer {token}"}
    created = client.post("/api/v1/collections", json={"name": "Harbours"}, headers=auth)
    collection = created.get_json()["id"]
    for item_id in museum.values():
        response = client.post(
            f"/api/v1/collections/{collection}/items", json={"item_id": item_id}, headers=auth
        )
        assert response.status_code in (200, 201), response.get_json()
    quoted = bundle(db, buyer, list(museum.values()))
    run_jobs()

    with db.info["app"].app_context(), transaction(db) as session:
        optout.register_address(
            session, session.merge(make_artist(db)), RuleKind.DOMAIN, "museum.example"
        )

    listed = client.get(f"/api/v1/collections/{collection}/items", headers=auth).get_json()
    assert {i["title"]: i["available"] for i in listed["items"]} == {
        "Harbour one": False,
        "Harbour two": False,
        "Harbour three": True,
    }
    fresh = bundle(db, buyer, list(museum.values()), name="After")
    run_jobs()
    reasons = dict(
        db.execute(
            select(BundleItem.item_id, BundleItem.reason).where(BundleItem.bundle_id == fresh)
        ).all()
    )
    assert reasons == {
        museum["Harbour one"]: "opted_out",
        museum["Harbour two"]: "opted_out",
        museum["Harbour three"]: "",
    }
    # The bundle quoted before the rule: checkout drops what the rule matches.
    db.expire_all()
    quote = buyers.current_quote(db, db.get(Bundle, quoted))
    assert quote is not None
    with db.info["app"].app_context(), transaction(db) as session:
        result = buyers.checkout(
            session, session.merge(buyer), session.get(Bundle, quoted), quote.public_id
        )
        assert result.dropped == {"opted_out": 2}


def _count_statements(db: Any) -> tuple[list[str], Any]:
    engine = get_database(db.info["app"]).engine
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    return seen, lambda: event.remove(engine, "before_cursor_execute", note)


@pytest.mark.parametrize("records", [3, 300])
def test_a_domain_rule_over_a_whole_museum_is_a_few_set_based_statements(
    client, db, lagging, records
):
    with db.info["app"].app_context():
        report = ingest_records(
            "met",
            [
                StockFields(
                    source_id=f"bulk-{n}",
                    title=f"Harbour {n}",
                    rights_uri=CC0_URI,
                    raw={"n": n},
                    image_urls=(f"{MUSEUM}/{n}/full.jpg",),
                )
                for n in range(records)
            ],
        )
        assert report.added == records
    token = make_api_token(db, make_artist(db))
    seen, stop = _count_statements(db)
    try:
        response = client.post(
            "/api/v1/artist/optouts",
            json={"kind": "domain", "address": "museum.example"},
            headers={"Authorization": f"Bearer {token}"},
        )
    finally:
        stop()
    assert response.status_code == 201
    db.expire_all()
    assert not db.scalar(select(CatalogItem.id).where(CatalogItem.available.is_(True)))
    assert titles(client, q="harbour") == []
    # The same statements whatever the number of items: no per-item round trip.
    touching = [s for s in seen if "catalog_item" in s]
    assert len(touching) <= 4, touching
    rule = db.scalar(select(OptOutRule).where(OptOutRule.kind == RuleKind.DOMAIN))
    assert rule is not None
    matched = db.scalars(select(ItemOptOut.item_id).where(ItemOptOut.rule_id == rule.id)).all()
    assert len(matched) == records


def test_a_phash_rule_finds_through_the_band_index_what_a_scan_finds(db):
    """Random pictures and near copies of one: the indexed lookup equals brute force."""
    rng = random.Random(14)
    target = rng.getrandbits(64)
    hashes = [rng.getrandbits(64) for _ in range(300)]
    for _ in range(60):  # near copies: 0..10 bits flipped
        value = target
        for bit in rng.sample(range(64), rng.randint(0, 10)):
            value ^= 1 << bit
        hashes.append(value)
    with db.info["app"].app_context(), transaction(db) as session:
        for n, value in enumerate(hashes):
            item = CatalogItem(
                title=f"Picture {n}",
                source="met",
                orientation=Orientation.UNKNOWN,
                license=CatalogLicense.PUBLIC_DOMAIN,
                currency="usd",
            )
            session.add(item)
            session.flush()
            bands = imaging.phash_bands(value)
            session.add(
                ItemImage(
                    item_id=item.id,
                    phash=imaging.to_signed64(value),
                    **{f"phash_b{i}": band for i, band in enumerate(bands)},
                )
            )
        ids = list(session.scalars(select(ItemImage.item_id).order_by(ItemImage.item_id)))
        rule = OptOutRule(kind=RuleKind.PHASH, value="", phash=imaging.to_signed64(target))
        distance = int(db.info["app"].config["OPTOUT_PHASH_DISTANCE"])
        found = sorted(optouts._matching_items(session, rule))
    expected = [
        i for i, v in zip(ids, hashes, strict=True) if imaging.hamming(v, target) <= distance
    ]
    assert found == expected
    assert 0 < len(expected) < 60
