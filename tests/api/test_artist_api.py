"""Artists manage works and terms through the API with their own tokens."""

from __future__ import annotations

import io
import json

from sqlalchemy import func, select

from marketplace.accounts.models import ApiToken
from marketplace.artists.models import Work, WorkTerms
from tests import images
from tests.factories import make_api_token, make_artist, make_buyer

LICENSE = {"kind": "license", "price_minor": 300, "generative_training": True}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_work(client, token, picture: bytes, name: str = "w.png", **fields):
    data = {"image": (io.BytesIO(picture), name), **fields}
    return client.post(
        "/api/v1/artist/works", data=data, headers=auth(token), content_type="multipart/form-data"
    )


def test_artist_uploads_sets_terms_and_withdraws_through_the_api(client, db, run_jobs):
    artist = make_artist(db)
    token = make_api_token(db, artist)
    me = client.get("/api/v1/me", headers=auth(token)).get_json()
    assert me["kind"] == "artist"
    assert me["organization"] is None
    response = post_work(
        client, token, images.png(1), title="Harbour", tags="sea, boats", terms=json.dumps(LICENSE)
    )
    assert response.status_code == 201, response.get_json()
    work = response.get_json()
    assert work["title"] == "Harbour"
    assert work["tags"] == ["sea", "boats"]
    assert work["current_terms"]["price_minor"] == 300
    assert work["current_terms"]["version"] == 1
    run_jobs()

    terms = client.put(
        f"/api/v1/artist/works/{work['id']}/terms",
        json={"kind": "license", "price_minor": 900, "non_generative_training": True},
        headers=auth(token),
    )
    assert terms.status_code == 200
    assert (terms.get_json()["version"], terms.get_json()["price_minor"]) == (2, 900)
    public = client.get(f"/api/v1/terms/{terms.get_json()['id']}").get_json()
    assert public["generative_training"] is False
    assert public["non_generative_training"] is True

    patched = client.patch(
        f"/api/v1/artist/works/{work['id']}", json={"title": "Harbour at dawn"}, headers=auth(token)
    )
    assert patched.get_json()["title"] == "Harbour at dawn"
    withdrawn = client.post(f"/api/v1/artist/works/{work['id']}/withdraw", headers=auth(token))
    assert withdrawn.get_json()["status"] == "withdrawn"
    fetched = client.get(f"/api/v1/artist/works/{work['id']}", headers=auth(token)).get_json()
    assert fetched["thumbnail_url"].endswith(f"/works/{work['id']}/thumb.webp")


def test_someone_elses_work_answers_as_if_absent_and_is_unchanged(client, db):
    owner, other = make_artist(db), make_artist(db)
    owner_token, other_token = make_api_token(db, owner), make_api_token(db, other)
    work_id = post_work(client, owner_token, images.png(2)).get_json()["id"]
    for method, route, body in [
        ("get", "/api/v1/artist/works/{}", None),
        ("patch", "/api/v1/artist/works/{}", {"title": "Stolen"}),
        ("put", "/api/v1/artist/works/{}/terms", {"kind": "donate"}),
        ("post", "/api/v1/artist/works/{}/withdraw", None),
    ]:
        path = route.format(work_id)
        response = getattr(client, method)(path, json=body, headers=auth(other_token))
        assert response.status_code == 404, path
        assert response.get_json()["error"]["code"] == "work_not_found"
        absent = getattr(client, method)(route.format(424242), json=body, headers=auth(other_token))
        assert absent.status_code == 404, path
        assert absent.get_json()["error"] == {
            **response.get_json()["error"],
            "message": response.get_json()["error"]["message"].replace(f" {work_id} ", " 424242 "),
        }
    assert db.scalar(select(Work.title)) == "w"
    assert db.scalar(select(func.count()).select_from(WorkTerms)) == 1


def test_buyer_tokens_cannot_use_artist_routes(client, db):
    token = make_api_token(db, make_buyer(db))
    response = client.get("/api/v1/artist/works", headers=auth(token))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "artist_token_required"


def test_bad_uploads_get_clear_errors_and_write_nothing(client, db):
    token = make_api_token(db, make_artist(db))
    corrupt = post_work(client, token, b"not an image at all")
    assert corrupt.status_code == 422
    assert corrupt.get_json()["error"]["code"] == "image_rejected"
    bad_terms = post_work(
        client, token, images.png(3), terms=json.dumps({**LICENSE, "price_minor": 1})
    )
    assert bad_terms.status_code == 422
    assert bad_terms.get_json()["error"]["code"] == "invalid_terms"
    garbage_terms = post_work(client, token, images.png(3), terms="{not json")
    assert garbage_terms.status_code == 400
    missing = client.post(
        "/api/v1/artist/works",
        data={"title": "x"},
        headers=auth(token),
        content_type="multipart/form-data",
    )
    assert missing.status_code == 400
    assert db.scalar(select(func.count()).select_from(Work)) == 0


def test_same_file_again_is_a_conflict_naming_the_work(client, db):
    token = make_api_token(db, make_artist(db))
    first = post_work(client, token, images.png(4)).get_json()
    again = post_work(client, token, images.png(4))
    assert again.status_code == 409
    assert again.get_json()["error"]["details"] == {"work_id": first["id"]}


def test_listing_pages_by_cursor(client, db):
    token = make_api_token(db, make_artist(db))
    for seed in range(5):
        post_work(client, token, images.png(10 + seed), name=f"w{seed}.png")
    seen, cursor = [], None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/api/v1/artist/works{query}", headers=auth(token)).get_json()
        seen.extend(item["title"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["w4", "w3", "w2", "w1", "w0"]
    bad = client.get("/api/v1/artist/works?cursor=bm90IGEgY3Vyc29y", headers=auth(token))
    assert bad.status_code == 422
    assert bad.get_json()["error"]["code"] == "invalid_cursor"


def test_artist_makes_and_revokes_a_token_in_settings(client, db, login):
    import re

    login(make_artist(db))
    page = client.post("/accounts/tokens", data={"name": "my uploader"})
    assert page.status_code == 201
    token = re.search(r'data-testid="new-token">(mkt_[^<]+)<', page.get_data(as_text=True)).group(1)
    assert client.get("/api/v1/artist/works", headers=auth(token)).status_code == 200
    token_id = db.scalar(select(ApiToken.id))
    assert client.post(f"/accounts/tokens/{token_id}/revoke").status_code == 302
    assert client.get("/api/v1/artist/works", headers=auth(token)).status_code == 401


def test_a_too_small_image_is_refused_naming_the_file(client, db):
    token = make_api_token(db, make_artist(db))
    response = post_work(client, token, images.png(3, (1, 1)), name="pixel.png")
    assert response.status_code == 422
    assert response.get_json()["error"] == {
        "code": "image_rejected",
        "message": "pixel.png is 1 x 1 px; works need at least 256 px on the short side, so "
        "that buyers can train on them and previews can show them.",
    }
    assert db.scalar(select(func.count()).select_from(Work)) == 0


def test_terms_in_another_currency_are_refused(client, db):
    token = make_api_token(db, make_artist(db))
    work_id = post_work(client, token, images.png(4)).get_json()["id"]
    body = {**LICENSE, "currency": "eur"}
    response = client.put(f"/api/v1/artist/works/{work_id}/terms", json=body, headers=auth(token))
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_terms"
    same = client.put(
        f"/api/v1/artist/works/{work_id}/terms",
        json={**LICENSE, "currency": "USD"},
        headers=auth(token),
    )
    assert (same.status_code, same.get_json()["currency"]) == (200, "usd")
