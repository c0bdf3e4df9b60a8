"""Control characters (a NUL above all: PostgreSQL cannot store it) are refused where text
arrives, on every form field, API field, query filter and CSV cell, with a clear 4xx naming the
character, and nothing is written. Run on PostgreSQL too: there a NUL that slips through is a
500, on SQLite it would be stored silently."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import ApiToken, User
from marketplace.artists.models import Work
from marketplace.catalog.models import Collection
from marketplace.optout.models import OptOutRule
from tests import images
from tests.catalog.test_search import make_stock, make_work
from tests.factories import make_api_token, make_artist, make_buyer

NUL = "a\x00b"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def count(db, model) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(model))


def assert_refused(response, status: int = 400) -> None:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    text = response.get_data(as_text=True)
    assert "U+0000" in text or "control character" in text


@pytest.fixture
def buyer_token(db) -> str:
    return make_api_token(db, make_buyer(db))


@pytest.fixture
def artist(db):
    return make_artist(db)


@pytest.fixture
def artist_token(db, artist) -> str:
    return make_api_token(db, artist)


# --- The API ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["q", "creator", "medium", "source", "license", "sort"])
def test_search_filters_refuse_a_nul_on_the_api_and_the_page(client, db, name):
    make_stock(db, "Harbour")
    api = client.get("/api/v1/works", query_string={name: NUL})
    if name in ("license", "sort", "source"):  # choices, or one name: refused by pattern
        assert api.status_code == 400
    else:
        assert_refused(api)
    assert_refused(client.get("/catalog", query_string={name: NUL}))


def test_collection_names_refuse_a_nul_on_create_and_rename(client, db, buyer_token):
    assert_refused(
        client.post("/api/v1/collections", json={"name": NUL}, headers=auth(buyer_token))
    )
    assert count(db, Collection) == 0
    cid = client.post(
        "/api/v1/collections", json={"name": "Harbours"}, headers=auth(buyer_token)
    ).get_json()["id"]
    patched = client.patch(
        f"/api/v1/collections/{cid}", json={"name": NUL}, headers=auth(buyer_token)
    )
    assert_refused(patched)
    assert db.scalar(select(Collection.name)) == "Harbours"


def test_add_by_query_refuses_a_nul_in_the_query(client, db, buyer_token):
    cid = client.post(
        "/api/v1/collections", json={"name": "c"}, headers=auth(buyer_token)
    ).get_json()["id"]
    response = client.post(
        f"/api/v1/collections/{cid}/add-by-query",
        json={"query": {"creator": NUL}},
        headers=auth(buyer_token),
    )
    assert_refused(response)


@pytest.mark.parametrize("field", ["title", "description", "tags"])
def test_api_upload_refuses_a_nul_in_any_text_field(client, db, artist_token, field):
    data = {"image": (io.BytesIO(images.png(3)), "w.png"), field: NUL}
    response = client.post(
        "/api/v1/artist/works",
        data=data,
        headers=auth(artist_token),
        content_type="multipart/form-data",
    )
    assert_refused(response)
    assert count(db, Work) == 0


def test_api_upload_refuses_a_nul_in_the_file_name(client, db, artist_token):
    data = {"image": (io.BytesIO(images.png(3)), "w\x00.png"), "title": "Dusk"}
    response = client.post(
        "/api/v1/artist/works",
        data=data,
        headers=auth(artist_token),
        content_type="multipart/form-data",
    )
    assert response.status_code in (400, 422)
    assert count(db, Work) == 0


@pytest.mark.parametrize(
    "body", [{"title": NUL}, {"description": NUL}, {"tags": ["sea", NUL]}], ids=str
)
def test_work_patch_refuses_a_nul(client, db, artist, artist_token, body):
    work = make_work(db, artist, "Dusk", None, seed=5)
    response = client.patch(
        f"/api/v1/artist/works/{work.id}", json=body, headers=auth(artist_token)
    )
    assert_refused(response)
    db.rollback()
    assert db.get(Work, work.id).title == "Dusk"


@pytest.mark.parametrize("body", [{"address": NUL}, {"address": "example.com", "label": NUL}])
def test_artist_optout_addresses_refuse_a_nul(client, db, artist_token, body):
    response = client.post(
        "/api/v1/artist/optouts", json={"kind": "domain", **body}, headers=auth(artist_token)
    )
    assert_refused(response)
    assert count(db, OptOutRule) == 0


def test_public_url_check_refuses_a_nul(client):
    assert_refused(
        client.get("/api/v1/optout/check", query_string={"url": "http://ex\x00ample.com/"})
    )


def test_bulk_url_check_reports_a_nul_on_its_own_line(client):
    urls = ["http://example.com/a", "http://ex\x00ample.com/", "https://example.org/"]
    for body in (
        {"json": urls},
        {"data": "\n".join(urls).encode(), "content_type": "text/plain"},
    ):
        response = client.post("/api/v1/optout/check/urls", **body)
        assert response.status_code == 200
        results = response.get_json()["results"]
        assert [r["opted_out"] for r in results] == [False, None, False]
        assert "U+0000" in results[1]["error"]


# --- The pages --------------------------------------------------------------------------------


def test_signup_form_refuses_a_nul_and_names_the_field(client, db):
    response = client.post(
        "/accounts/signup",
        data={
            "role": "buyer",
            "display_name": NUL,
            "email": "ada@example.com",
            "password": "correct horse battery",
            "confirm": "correct horse battery",
            "organization_name": "Lab\x00s",
        },
    )
    assert response.status_code in (200, 422)
    assert "U+0000" in response.get_data(as_text=True)
    assert count(db, User) == 0


def test_collection_forms_refuse_a_nul(client, db, login):
    buyer = make_buyer(db)
    login(buyer)
    assert_refused(client.post("/collections", data={"name": NUL}), 422)
    assert count(db, Collection) == 0
    client.post("/collections", data={"name": "Harbours"})
    cid = db.scalar(select(Collection.id))
    response = client.post(f"/collections/{cid}/rename", data={"name": NUL}, follow_redirects=True)
    assert response.status_code == 200
    assert "U+0000" in response.get_data(as_text=True)
    db.rollback()
    assert db.scalar(select(Collection.name)) == "Harbours"


def test_token_name_refuses_a_nul(client, db, login):
    login(make_buyer(db))
    response = client.post("/accounts/tokens", data={"name": NUL})
    assert response.status_code in (200, 422)
    assert "U+0000" in response.get_data(as_text=True)
    assert count(db, ApiToken) == 0


def test_work_pages_refuse_a_nul_in_upload_and_edit(client, db, login, artist):
    login(artist)
    response = client.post(
        "/artists/works/new",
        data={
            "images": [(io.BytesIO(images.png(7)), "dusk\x00.png")],
            "use_default_terms": "y",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "U+0000" in response.get_data(as_text=True)
    assert count(db, Work) == 0
    work = make_work(db, artist, "Dusk", None, seed=8)
    response = client.post(f"/artists/works/{work.id}", data={"title": NUL})
    assert response.status_code in (200, 422)
    assert "U+0000" in response.get_data(as_text=True)
    db.rollback()
    assert db.get(Work, work.id).title == "Dusk"


def test_batch_csv_with_a_nul_fails_only_its_own_file(client, db, login, artist):
    login(artist)
    csv = b"filename,title\ngood.png,Harbour\nbad.png,Dus\x00k\n"
    response = client.post(
        "/artists/works/new",
        data={
            "images": [
                (io.BytesIO(images.png(10)), "good.png"),
                (io.BytesIO(images.png(11)), "bad.png"),
            ],
            "metadata_csv": (io.BytesIO(csv), "meta.csv"),
            "use_default_terms": "y",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert "U+0000" in response.get_data(as_text=True)
    db.rollback()
    assert db.scalars(select(Work.title)).all() == ["Harbour"]


def test_artist_optout_address_form_refuses_a_nul(client, db, login, artist):
    login(artist)
    response = client.post("/optout/address", data={"kind": "domain", "address": "exa\x00mple.com"})
    assert response.status_code == 422
    assert "U+0000" in response.get_data(as_text=True)
    assert count(db, OptOutRule) == 0


def test_a_shared_link_with_a_nul_is_not_found(client):
    assert client.get("/c/abc%00def").status_code == 404


def test_every_page_form_and_api_request_model_uses_the_shared_rule(app):
    """A new form or request model cannot forget the rule: they all derive from the bases that
    apply it."""
    from flask_openapi3.utils import parse_parameters
    from flask_wtf import FlaskForm

    import marketplace.app  # noqa: F401 - imports every feature's forms via the views
    from marketplace.api.schemas import ApiIn
    from marketplace.forms import Form

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    forms = [f for f in subclasses(FlaskForm) if f.__module__.startswith("marketplace.")]
    assert len(forms) > 10
    assert [f for f in forms if not issubclass(f, Form)] == []

    models = set()
    for endpoint, view in app.view_functions.items():
        if endpoint.startswith("api."):
            models.update(m for m in parse_parameters(view)[:6] if m is not None)
    assert len(models) > 10
    assert sorted(m.__name__ for m in models if not issubclass(m, ApiIn)) == []
