"""Collections: save works one by one or a whole search, share by link, stay private."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from marketplace.catalog.models import Collection, CollectionItem, CollectionJob, JobStatus
from tests.catalog.test_search import make_stock
from tests.factories import make_api_token, make_artist, make_buyer


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def harbours(db):
    return [make_stock(db, f"Harbour {n}", year_start=1800 + n) for n in range(7)] + [
        make_stock(db, "Mountain")
    ]


def test_buyer_saves_works_and_a_whole_search_in_the_browser_forms(
    client, db, login, harbours, run_jobs
):
    buyer = make_buyer(db)
    login(buyer)
    response = client.post("/collections", data={"name": "Harbours"})
    assert response.status_code == 302
    collection = db.scalar(select(Collection))
    assert collection.organization_id == buyer.organization_id
    page = client.get(f"/catalog/items/{harbours[-1].id}").get_data(as_text=True)
    assert "Save to collection" in page
    response = client.post(
        "/collections/add-item", data={"collection_id": collection.id, "item_id": harbours[-1].id}
    )
    assert response.status_code == 302
    response = client.post(
        "/collections/add-search",
        data={"collection_id": collection.id, "q": "harbour", "year_from": "1802"},
    )
    assert response.status_code == 302
    run_jobs()
    job = db.scalar(select(CollectionJob))
    assert (job.status, job.matched, job.added) == (JobStatus.DONE, 5, 5)
    html = client.get(f"/collections/{collection.id}").get_data(as_text=True)
    assert "done</strong>, 5 added of 5 matches" in html
    count = db.scalar(select(func.count()).select_from(CollectionItem))
    assert count == 6


@pytest.mark.parametrize("app_config", [{"COLLECTION_QUERY_CAP": 3}])
def test_adding_a_search_stops_at_the_cap_and_says_so(client, db, harbours, run_jobs):
    token = make_api_token(db, make_buyer(db))
    collection = client.post("/api/v1/collections", json={"name": "c"}, headers=auth(token))
    cid = collection.get_json()["id"]
    job = client.post(
        f"/api/v1/collections/{cid}/add-by-query",
        json={"query": {"q": "harbour"}},
        headers=auth(token),
    )
    assert job.status_code == 202
    run_jobs()
    status = client.get(
        f"/api/v1/collections/{cid}/jobs/{job.get_json()['id']}", headers=auth(token)
    ).get_json()
    assert (status["status"], status["added"], status["capped"]) == ("done", 3, True)


def test_rerunning_an_add_job_adds_nothing_twice(client, db, harbours, run_jobs, app):
    from marketplace.catalog import services

    token = make_api_token(db, make_buyer(db))
    cid = client.post("/api/v1/collections", json={"name": "c"}, headers=auth(token)).get_json()[
        "id"
    ]
    client.post(
        f"/api/v1/collections/{cid}/items", json={"item_id": harbours[0].id}, headers=auth(token)
    )
    job_id = client.post(
        f"/api/v1/collections/{cid}/add-by-query",
        json={"query": {"q": "harbour"}},
        headers=auth(token),
    ).get_json()["id"]
    run_jobs()
    with app.app_context():
        services.run_add_by_query(job_id)  # a second delivery of the same job
    assert db.scalar(select(func.count()).select_from(CollectionItem)) == 7


def test_collection_api_crud_and_sharing(client, db, harbours):
    token = make_api_token(db, make_buyer(db))
    created = client.post("/api/v1/collections", json={"name": "Moodboard"}, headers=auth(token))
    assert created.status_code == 201
    cid = created.get_json()["id"]
    added = client.post(
        f"/api/v1/collections/{cid}/items", json={"item_id": harbours[0].id}, headers=auth(token)
    )
    assert added.status_code == 201
    again = client.post(
        f"/api/v1/collections/{cid}/items", json={"item_id": harbours[0].id}, headers=auth(token)
    )
    assert again.status_code == 200
    missing = client.post(
        f"/api/v1/collections/{cid}/items", json={"item_id": 999999}, headers=auth(token)
    )
    assert missing.status_code == 404
    items = client.get(f"/api/v1/collections/{cid}/items", headers=auth(token)).get_json()
    assert [i["title"] for i in items["items"]] == ["Harbour 0"]
    shared = client.patch(
        f"/api/v1/collections/{cid}",
        json={"shared": True, "name": "Moodboard 2"},
        headers=auth(token),
    ).get_json()
    assert shared["name"] == "Moodboard 2"
    link = shared["share_url"]
    assert len(link.rsplit("/", 1)[1]) >= 32
    public = client.get(link.replace("http://localhost", ""))
    assert public.status_code == 200
    assert b"Harbour 0" in public.data
    client.patch(f"/api/v1/collections/{cid}", json={"shared": False}, headers=auth(token))
    assert client.get(link.replace("http://localhost", "")).status_code == 404
    assert (
        client.delete(
            f"/api/v1/collections/{cid}/items/{harbours[0].id}", headers=auth(token)
        ).status_code
        == 204
    )
    assert client.delete(f"/api/v1/collections/{cid}", headers=auth(token)).status_code == 204
    assert client.get(f"/api/v1/collections/{cid}", headers=auth(token)).status_code == 404


def test_another_organizations_collection_is_not_found(client, db, login, harbours):
    owner_token = make_api_token(db, make_buyer(db))
    cid = client.post(
        "/api/v1/collections", json={"name": "Secret"}, headers=auth(owner_token)
    ).get_json()["id"]
    stranger = make_buyer(db)
    stranger_token = make_api_token(db, stranger)
    for method, path, body in [
        ("get", f"/api/v1/collections/{cid}", None),
        ("get", f"/api/v1/collections/{cid}/items", None),
        ("patch", f"/api/v1/collections/{cid}", {"name": "mine"}),
        ("post", f"/api/v1/collections/{cid}/items", {"item_id": harbours[0].id}),
        ("delete", f"/api/v1/collections/{cid}", None),
    ]:
        response = getattr(client, method)(path, json=body, headers=auth(stranger_token))
        assert response.status_code == 404, (method, path)
    assert client.get("/api/v1/collections", headers=auth(stranger_token)).get_json()["items"] == []
    login(stranger)
    assert client.get(f"/collections/{cid}").status_code == 404
    assert (
        client.post(
            "/collections/add-item", data={"collection_id": cid, "item_id": harbours[0].id}
        ).status_code
        == 404
    )
    assert db.scalar(select(Collection.name)) == "Secret"


def test_colleagues_share_their_organizations_collections(client, db, login):
    owner = make_buyer(db)
    colleague = make_buyer(db, join_code=owner.organization.join_code)
    login(owner)
    client.post("/collections", data={"name": "Team picks"})
    client.post("/accounts/logout")
    login(colleague)
    assert ">Team picks</a>" in client.get("/collections").get_data(as_text=True)


def test_artists_collections_are_personal(client, db, login):
    first, second = make_artist(db), make_artist(db)
    login(first)
    client.post("/collections", data={"name": "Inspiration"})
    client.post("/accounts/logout")
    login(second)
    assert ">Inspiration</a>" not in client.get("/collections").get_data(as_text=True)


def test_logged_out_visitors_are_sent_to_log_in(client):
    response = client.get("/collections")
    assert response.status_code == 302
    assert "/accounts/login" in response.headers["Location"]
