"""Reverse-image search: by upload or by work, in the API and on the pages; consent first."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest
from sqlalchemy import select, update

from marketplace import imaging
from marketplace.artists import services as artists
from marketplace.artists.models import Work
from marketplace.catalog import similar
from marketplace.catalog.ingest import ingest_records
from marketplace.catalog.models import CatalogItem, StockRecord
from marketplace.catalog.sources.base import CC0_URI, StockFields
from marketplace.catalog.tasks import store_stock_image
from marketplace.db import transaction
from tests import images
from tests.catalog.test_search import LICENSED, make_stock, make_work
from tests.factories import make_artist

_ids = itertools.count(1)


def stock_with_image(db, title: str, picture: bytes) -> CatalogItem:
    """A museum record whose mirrored image is exactly `picture`."""
    record = StockFields(
        title=title,
        source_id=f"sim-{next(_ids)}",
        creator="Unknown",
        institution="The Metropolitan Museum of Art",
        rights_uri=CC0_URI,
        raw={"title": title},
        image_urls=("http://images.example/x.jpg",),
    )
    with db.info["app"].app_context():
        assert ingest_records("met", [record]).added == 1
        with transaction() as session:
            stored = session.scalar(
                select(StockRecord).where(StockRecord.source_id == record.source_id)
            )
            inspected = imaging.inspect_image(picture, max_bytes=10**8, max_pixels=10**8)
            store_stock_image(session, stored, picture, inspected)
    db.rollback()
    item = db.scalar(
        select(CatalogItem)
        .join(StockRecord, StockRecord.id == CatalogItem.stock_id)
        .where(StockRecord.source_id == record.source_id)
    )
    db.commit()
    return item


@pytest.fixture
def harbour(db):
    """Two copies of one picture (a PNG, a resized JPEG) and an unrelated one."""
    picture = images.noise(100)
    original = stock_with_image(db, "Harbour", images.encode(picture, "PNG"))
    copy = stock_with_image(
        db, "Harbour, small copy", images.encode(picture.resize((200, 160)), "JPEG", quality=80)
    )
    other = stock_with_image(db, "Mountain", images.png(200))
    return original, copy, other


def _objects(tmp_path: Path) -> set[Path]:
    return set((tmp_path / "objects").rglob("*"))


def _upload(data: bytes, name: str = "query.jpg", **fields):
    return {"image": (io.BytesIO(data), name), **fields}


def test_upload_finds_the_copies_nearest_first_and_keeps_nothing(client, harbour, tmp_path):
    original, copy, _other = harbour
    before = _objects(tmp_path)
    query = images.encode(images.noise(100), "JPEG", quality=70)
    resp = client.post("/api/v1/works/similar", data=_upload(query))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    ids = [hit["id"] for hit in body["items"]]
    assert set(ids) == {original.id, copy.id}
    distances = [hit["distance"] for hit in body["items"]]
    assert distances == sorted(distances)
    assert distances[-1] <= similar.DEFAULT_MAX_DISTANCE
    hit = body["items"][0]
    assert hit["url"].endswith(f"/catalog/items/{hit['id']}")
    assert hit["thumbnail_url"].endswith(f"/catalog/items/{hit['id']}/thumb.webp")
    assert body["max_distance"] == similar.DEFAULT_MAX_DISTANCE
    assert body["phash"] == imaging.format_phash(
        imaging.inspect_image(query, max_bytes=10**8, max_pixels=10**8).phash
    )
    assert _objects(tmp_path) == before  # the upload was not stored


def test_by_work_id_excludes_the_work_itself(client, harbour):
    original, copy, _other = harbour
    for send in (
        {"json": {"work_id": original.id}},
        {"data": {"work_id": str(original.id)}},
    ):
        resp = client.post("/api/v1/works/similar", **send)
        assert resp.status_code == 200, resp.get_json()
        assert [hit["id"] for hit in resp.get_json()["items"]] == [copy.id]


def test_distance_and_limit_options(client, harbour):
    original, _copy, other = harbour
    resp = client.post(
        "/api/v1/works/similar", json={"work_id": original.id, "max_distance": 0, "limit": 1}
    )
    assert resp.status_code == 200
    assert resp.get_json()["items"] == [] or resp.get_json()["items"][0]["distance"] == 0
    resp = client.post("/api/v1/works/similar", json={"work_id": other.id, "limit": 1})
    assert resp.get_json()["items"] == []


def test_unknown_or_withdrawn_work_is_404_and_unmirrored_is_422(client, db, harbour):
    original, _copy, _other = harbour
    resp = client.post("/api/v1/works/similar", json={"work_id": 999_999})
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "work_not_found"
    pending = make_stock(db, "Not mirrored yet")
    resp = client.post("/api/v1/works/similar", json={"work_id": pending.id})
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "no_image"
    db.execute(update(CatalogItem).where(CatalogItem.id == original.id).values(available=False))
    db.commit()
    resp = client.post("/api/v1/works/similar", json={"work_id": original.id})
    assert resp.status_code == 404


@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        ({}, 400, "invalid_request"),
        ({"data": "work_id=1", "content_type": "text/plain"}, 400, "invalid_request"),
        ({"data": "{not json", "content_type": "application/json"}, 400, "invalid_request"),
        ({"json": [1]}, 400, "invalid_request"),
        ({"json": {}}, 422, "invalid_request"),
        ({"json": {"work_id": "abc"}}, 400, "invalid_request"),
        ({"json": {"work_id": True}}, 400, "invalid_request"),
        ({"json": {"work_id": 0}}, 400, "invalid_request"),
        ({"json": {"work_id": 2**70}}, 400, "invalid_request"),
        ({"json": {"work_id": 1, "max_distance": 64}}, 400, "invalid_request"),
        ({"json": {"work_id": 1, "limit": 0}}, 400, "invalid_request"),
        ({"json": {"work_id": 1, "colour": "red"}}, 400, "invalid_request"),
        ({"data": {"work_id": "1e3"}}, 400, "invalid_request"),
        ({"data": {"max_distance": "3"}}, 422, "invalid_request"),
        ({"data": _upload(images.png(5), work_id="1")}, 422, "invalid_request"),
        ({"data": _upload(b"not an image", "x.png")}, 422, "image_rejected"),
        ({"data": _upload(b"", "empty.png")}, 422, "image_rejected"),
        ({"data": _upload(images.png(5)[:200], "cut.png")}, 422, "image_rejected"),
        ({"data": _upload(images.bomb(), "bomb.png")}, 422, "image_rejected"),
        ({"data": _upload(images.png(5), max_distance="-1")}, 400, "invalid_request"),
    ],
)
def test_bad_input_is_a_clear_4xx(client, send, status, code):
    resp = client.post("/api/v1/works/similar", **send)
    assert resp.status_code == status, resp.get_data(as_text=True)
    error = resp.get_json()["error"]
    assert error["code"] == code
    assert error["message"]


@pytest.mark.parametrize("app_config", [{"MAX_UPLOAD_BYTES": 5_000}])
def test_oversized_upload_is_refused(client):
    big = client.post("/api/v1/works/similar", data=_upload(images.png(5, (640, 480))))
    assert big.status_code == 413  # refused before the body is read
    assert "larger than 70,536 bytes" in big.get_json()["error"]["message"]
    small = client.post("/api/v1/works/similar", data=_upload(images.png(5, (100, 100))))
    assert small.status_code == 422  # read, then refused as an image over the limit
    assert "the limit is 5 KB" in small.get_json()["error"]["message"]


@pytest.mark.parametrize(("mode", "fmt"), images.MODES)
def test_unusual_colour_modes_are_searched_not_crashed(client, mode, fmt):
    resp = client.post(
        "/api/v1/works/similar", data=_upload(images.in_mode(mode, fmt), f"x.{fmt.lower()}")
    )
    assert resp.status_code in (200, 422), resp.get_data(as_text=True)


def test_withdrawn_work_never_returned_even_from_a_stale_index(client, db, app, harbour):
    original, copy, _other = harbour
    query = _upload(images.encode(images.noise(100), "JPEG"))
    first = client.post("/api/v1/works/similar", data=query).get_json()["items"]
    assert {hit["id"] for hit in first} == {original.id, copy.id}
    built = app.extensions["similar_works"].built
    # Withdrawn behind the index's back: updated_at untouched, so the index is not rebuilt.
    db.execute(update(CatalogItem).where(CatalogItem.id == copy.id).values(available=False))
    db.commit()
    resp = client.post("/api/v1/works/similar", data=_upload(images.encode(images.noise(100))))
    assert [hit["id"] for hit in resp.get_json()["items"]] == [original.id]
    assert app.extensions["similar_works"].built is built  # stale, and still safe
    page = client.get(f"/catalog/items/{original.id}").get_data(as_text=True)
    assert "Similar works" not in page


def test_artist_withdrawal_hides_the_work_and_new_works_appear(client, db, app):
    artist = make_artist(db)
    work = make_work(db, artist, "Dusk", LICENSED, seed=300)
    item = db.scalar(select(CatalogItem).where(CatalogItem.work_id == work.id))
    query = images.png(300)  # the very picture register_work stored
    resp = client.post("/api/v1/works/similar", data=_upload(query, "dusk.png"))
    assert [hit["id"] for hit in resp.get_json()["items"]] == [item.id]
    assert resp.get_json()["items"][0]["distance"] == 0

    later = stock_with_image(db, "Dusk, museum copy", images.jpeg(300))
    resp = client.post("/api/v1/works/similar", data=_upload(query, "dusk.png"))
    assert [hit["id"] for hit in resp.get_json()["items"]] == [item.id, later.id]

    with app.app_context(), transaction() as session:
        owned = session.get(Work, work.id)
        artists.withdraw_consent(session, owned, owned.artist.user)
    resp = client.post("/api/v1/works/similar", data=_upload(query, "dusk.png"))
    assert [hit["id"] for hit in resp.get_json()["items"]] == [later.id]


def test_item_page_shows_a_strip_of_similar_works(client, app, harbour):
    original, copy, other = harbour
    # The first page of a process never waits for the index: no strip, a build in the back.
    first = client.get(f"/catalog/items/{original.id}")
    assert first.status_code == 200
    assert "Similar works" not in first.get_data(as_text=True)
    app.extensions["similar_works"].rebuilding.join()
    page = client.get(f"/catalog/items/{original.id}").get_data(as_text=True)
    strip = page.split('aria-label="Similar works"', 1)[1].split("</ul>", 1)[0]
    assert f'href="/catalog/items/{copy.id}"' in strip
    assert f"/catalog/items/{copy.id}/thumb.webp" in strip
    assert f'href="/catalog/items/{original.id}"' not in strip
    assert f'href="/catalog/items/{other.id}"' not in strip
    lonely = client.get(f"/catalog/items/{other.id}").get_data(as_text=True)
    assert "Similar works" not in lonely  # no empty strip


def test_search_page_form_finds_similar_by_image(client, harbour):
    original, copy, _other = harbour
    assert "Find similar works by image" in client.get("/catalog").get_data(as_text=True)
    resp = client.post("/catalog/similar", data=_upload(images.encode(images.noise(100), "JPEG")))
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "2 similar works" in html
    assert f'href="/catalog/items/{original.id}"' in html
    assert f'href="/catalog/items/{copy.id}"' in html
    bad = client.post("/catalog/similar", data=_upload(b"GIF89a", "x.gif"))
    assert bad.status_code == 400
    assert "x.gif is not a PNG, JPEG, WebP or TIFF image." in bad.get_data(as_text=True)
    missing = client.post("/catalog/similar", data={})
    assert missing.status_code == 400
    assert "Choose an image to compare." in missing.get_data(as_text=True)


def test_openapi_documents_the_route(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/works/similar"]["post"]
    body = operation["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
    assert {"200", "400", "404", "422"} <= set(operation["responses"])


def test_changed_items_override_the_index_until_it_is_rebuilt(client, db, app, monkeypatch):
    first = stock_with_image(db, "Dawn", images.png(400))
    dawn = _upload(images.png(400), "dawn.png")
    assert [h["id"] for h in client.post("/api/v1/works/similar", data=dawn).get_json()["items"]]
    built = app.extensions["similar_works"].built
    # The museum replaces the image: the index still holds the old hash, the delta the new one.
    with app.app_context(), transaction() as session:
        record = session.get(StockRecord, first.stock_id)
        picture = images.png(401)
        inspected = imaging.inspect_image(picture, max_bytes=10**8, max_pixels=10**8)
        store_stock_image(session, record, picture, inspected)
    assert client.post("/api/v1/works/similar", data=_upload(images.png(400))).get_json() == {
        "items": [],
        "phash": imaging.format_phash(
            imaging.inspect_image(images.png(400), max_bytes=10**8, max_pixels=10**8).phash
        ),
        "max_distance": similar.DEFAULT_MAX_DISTANCE,
    }
    resp = client.post("/api/v1/works/similar", data=_upload(images.png(401)))
    assert [h["id"] for h in resp.get_json()["items"]] == [first.id]
    assert app.extensions["similar_works"].built is built  # served from the delta

    monkeypatch.setattr(similar, "DELTA_MAX", 1)
    second = stock_with_image(db, "Dawn again", images.jpeg(401))
    # Too far behind: this query starts a rebuild and uses the old index meanwhile.
    client.post("/api/v1/works/similar", data=_upload(images.png(401)))
    app.extensions["similar_works"].rebuilding.join()
    assert app.extensions["similar_works"].built is not built
    resp = client.post("/api/v1/works/similar", data=_upload(images.png(401)))
    assert [h["id"] for h in resp.get_json()["items"]] == [first.id, second.id]


def test_image_sent_as_text_is_refused_as_not_a_file(client):
    resp = client.post("/api/v1/works/similar", data={"image": "not a file"})
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "image_rejected"
