"""The buyers' API: a pipeline builds a bundle in one call, polls it, checks out, reads orders."""

from __future__ import annotations

from sqlalchemy import func, select

from marketplace.buyers.models import Order
from tests.buyers.support import DONATE, bundle, licence, stock_items, work_item
from tests.factories import make_api_token, make_artist, make_buyer


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_pipeline_builds_a_bundle_from_ids_and_checks_out(client, db, tmp_path, run_jobs):
    artist = make_artist(db)
    buyer = make_buyer(db)
    token = make_api_token(db, buyer)
    licensed = work_item(db, artist, licence(300))
    donated = work_item(db, artist, DONATE)
    stock = stock_items(db, tmp_path)
    created = client.post(
        "/api/v1/bundles",
        json={
            "name": "Pipeline",
            "intended_uses": ["generative_training"],
            "work_ids": [licensed, donated, *stock],
        },
        headers=auth(token),
    )
    assert created.status_code == 202
    bundle_id = created.get_json()["id"]
    run_jobs()
    body = client.get(f"/api/v1/bundles/{bundle_id}", headers=auth(token)).get_json()
    assert body["status"] == "ready"
    assert body["quote"]["counts"] == {"licensed": 1, "cc0": 1, "public_domain": 1}
    assert (body["quote"]["total_minor"], body["quote"]["artists_minor"]) == (300, 240)

    order = client.post(
        f"/api/v1/bundles/{bundle_id}/checkout",
        json={"quote_id": body["quote"]["id"]},
        headers=auth(token),
    )
    assert order.status_code == 201
    again = client.post(
        f"/api/v1/bundles/{bundle_id}/checkout",
        json={"quote_id": body["quote"]["id"]},
        headers=auth(token),
    )
    assert again.status_code == 200
    assert again.get_json()["id"] == order.get_json()["id"]
    assert db.scalar(select(func.count()).select_from(Order)) == 1

    listed = client.get("/api/v1/orders", headers=auth(token)).get_json()["items"]
    assert [o["id"] for o in listed] == [order.get_json()["id"]]
    items = client.get(
        f"/api/v1/orders/{order.get_json()['id']}/items", headers=auth(token)
    ).get_json()["items"]
    assert [i["item_id"] for i in items] == [licensed, donated, *stock]


def test_bundle_from_a_query_and_excluded_items_with_reasons(client, db, tmp_path, run_jobs):
    artist = make_artist(db)
    buyer = make_buyer(db)
    token = make_api_token(db, buyer)
    generative_only = work_item(db, artist, licence(300), title="Quiet harbour")
    created = client.post(
        "/api/v1/bundles",
        json={
            "name": "Commercial",
            "intended_uses": ["generative_training", "commercial_use"],
            "query": {"q": "harbour"},
        },
        headers=auth(token),
    )
    assert created.status_code == 202
    run_jobs()
    bundle_id = created.get_json()["id"]
    body = client.get(f"/api/v1/bundles/{bundle_id}", headers=auth(token)).get_json()
    assert body["excluded"] == {"use_not_permitted": 1}
    assert body["quote"] is None
    left_out = client.get(
        f"/api/v1/bundles/{bundle_id}/items?excluded=true", headers=auth(token)
    ).get_json()["items"]
    assert left_out[0]["id"] == generative_only
    assert left_out[0]["reason"] == "use_not_permitted"


def test_bad_bundle_requests_are_refused_clearly(client, db):
    buyer = make_buyer(db)
    token = make_api_token(db, buyer)
    cases = [
        ({"name": "x", "intended_uses": ["generative_training"], "work_ids": []}, 422),
        ({"name": "x", "intended_uses": ["generative_training"], "work_ids": [99999]}, 422),
        ({"name": "x", "intended_uses": ["mind_reading"], "work_ids": [1]}, 400),
        ({"name": "x", "intended_uses": ["generative_training"]}, 422),
        (
            {"name": "x", "intended_uses": ["generative_training"], "work_ids": [1], "query": {}},
            422,
        ),
        ({"name": "x", "intended_uses": ["generative_training"], "collection_id": 5}, 404),
        ({"name": "x", "intended_uses": ["generative_training"], "work_ids": ["1"]}, 400),
        # Ids our columns cannot hold are refused by the schema, not by the database driver.
        ({"name": "x", "intended_uses": ["generative_training"], "work_ids": [2**63]}, 400),
        ({"name": "x", "intended_uses": ["generative_training"], "work_ids": [10**30]}, 400),
        ({"name": "x", "intended_uses": ["generative_training"], "work_ids": [0, -1]}, 400),
        ({"name": "x", "intended_uses": ["generative_training"], "collection_id": 2**70}, 400),
    ]
    for body, status in cases:
        response = client.post("/api/v1/bundles", json=body, headers=auth(token))
        assert response.status_code == status, (body, response.get_json())
        assert "error" in response.get_json()
    assert client.get("/api/v1/bundles", headers=auth(token)).get_json()["items"] == []


def test_other_organizations_bundles_and_orders_are_404_and_artists_are_refused(
    client, db, run_jobs
):
    artist = make_artist(db)
    owner = make_buyer(db)
    item = work_item(db, artist, DONATE)
    bundle_id = bundle(db, owner, [item])
    run_jobs()
    stranger = make_api_token(db, make_buyer(db))
    assert client.get(f"/api/v1/bundles/{bundle_id}", headers=auth(stranger)).status_code == 404
    assert (
        client.post(
            f"/api/v1/bundles/{bundle_id}/checkout",
            json={"quote_id": "q_x"},
            headers=auth(stranger),
        ).status_code
        == 404
    )
    assert client.get("/api/v1/orders/1", headers=auth(stranger)).status_code == 404
    artist_token = make_api_token(db, artist)
    response = client.get("/api/v1/bundles", headers=auth(artist_token))
    assert response.status_code == 403
    assert client.get("/api/v1/bundles").status_code == 401


def test_expired_or_replaced_quotes_answer_409(client, db, run_jobs):
    artist = make_artist(db)
    buyer = make_buyer(db)
    token = make_api_token(db, buyer)
    item = work_item(db, artist, licence(300))
    bundle_id = bundle(db, buyer, [item])
    run_jobs()
    old = client.get(f"/api/v1/bundles/{bundle_id}", headers=auth(token)).get_json()["quote"]
    assert client.post(f"/api/v1/bundles/{bundle_id}/quote", headers=auth(token)).status_code == 202
    run_jobs()
    response = client.post(
        f"/api/v1/bundles/{bundle_id}/checkout", json={"quote_id": old["id"]}, headers=auth(token)
    )
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "quote_not_current"
