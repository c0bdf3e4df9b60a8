"""The API's contract holds before and beyond the schema: the token is checked before the
request, ids outside what a row can have are plain 404s, JSON types are strict, the bulk
check needs URLs, and the OpenAPI document lists every status a route answers."""

from __future__ import annotations

import pytest

from tests.catalog.test_search import make_stock
from tests.factories import make_api_token, make_buyer


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


PROTECTED_WITH_BAD_INPUT = [
    ("post", "/api/v1/collections", {"json": {"name": 5, "extra": True}}),
    ("post", "/api/v1/collections", {"data": "not json", "content_type": "application/json"}),
    ("patch", "/api/v1/collections/1", {"json": {"shared": "maybe"}}),
    ("post", "/api/v1/collections/1/items", {"json": {}}),
    ("post", "/api/v1/collections/1/add-by-query", {"json": {"query": {"license": "nope"}}}),
    ("get", "/api/v1/collections/1/items", {"query_string": {"limit": "many"}}),
    ("get", "/api/v1/artist/works", {"query_string": {"limit": 0}}),
    ("post", "/api/v1/artist/works", {"data": {}, "content_type": "multipart/form-data"}),
    ("patch", "/api/v1/artist/works/1", {"json": {"title": ""}}),
    ("put", "/api/v1/artist/works/1/terms", {"json": {"kind": "sell"}}),
    ("post", "/api/v1/artist/optouts", {"json": {"kind": "phone"}}),
]


@pytest.mark.parametrize(("method", "url", "kwargs"), PROTECTED_WITH_BAD_INPUT)
def test_a_caller_without_a_token_gets_401_whatever_the_request_holds(client, method, url, kwargs):
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "missing_token"
    revoked = getattr(client, method)(url, headers=auth("mkt_not_a_token"), **kwargs)
    assert revoked.status_code == 401
    assert revoked.get_json()["error"]["code"] == "invalid_token"


@pytest.mark.parametrize("bad_id", ["0", "2147483648", "99999999999999999999", "007"])
@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("get", "/api/v1/collections/{}"),
        ("patch", "/api/v1/collections/{}"),
        ("delete", "/api/v1/collections/{}"),
        ("post", "/api/v1/collections/{}/items"),
        ("delete", "/api/v1/collections/1/items/{}"),
        ("put", "/api/v1/artist/works/{}/terms"),
        ("post", "/api/v1/artist/works/{}/withdraw"),
        ("delete", "/api/v1/artist/optouts/{}"),
        ("get", "/api/v1/works/{}"),
    ],
)
def test_ids_no_row_can_have_are_404_for_every_method(client, db, method, template, bad_id):
    token = make_api_token(db, make_buyer(db))
    response = getattr(client, method)(template.format(bad_id), headers=auth(token), json={})
    assert response.status_code == 404
    assert "Allow" not in response.headers
    assert response.get_json()["error"]["code"] == "not_found"


def test_ids_no_row_can_have_are_404_on_pages_too(client):
    assert client.post("/collections/0/delete").status_code == 404
    assert client.get("/catalog/items/2147483648").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", "/api/v1/collections/{cid}", {"shared": 0}),
        ("patch", "/api/v1/collections/{cid}", {"shared": "true"}),
        ("post", "/api/v1/collections/{cid}/items", {"item_id": True}),
        ("post", "/api/v1/collections/{cid}/items", {"item_id": "{item}"}),
        ("post", "/api/v1/collections/{cid}/add-by-query", {"query": {"has_image": 1}}),
        ("post", "/api/v1/collections/{cid}/add-by-query", {"query": {"year_from": "1800"}}),
    ],
    ids=str,
)
def test_json_booleans_and_integers_are_strict(client, db, method, path, body):
    item = make_stock(db, "Harbour")
    token = make_api_token(db, make_buyer(db))
    cid = client.post("/api/v1/collections", json={"name": "c"}, headers=auth(token)).get_json()[
        "id"
    ]
    body = {k: (v.format(item=item.id) if isinstance(v, str) else v) for k, v in body.items()}
    response = getattr(client, method)(path.format(cid=cid), json=body, headers=auth(token))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_request"
    state = client.get(f"/api/v1/collections/{cid}", headers=auth(token)).get_json()
    assert (state["share_url"], state["item_count"]) == (None, 0)


def test_json_booleans_and_integers_of_the_right_type_are_accepted(client, db):
    item = make_stock(db, "Harbour")
    token = make_api_token(db, make_buyer(db))
    cid = client.post("/api/v1/collections", json={"name": "c"}, headers=auth(token)).get_json()[
        "id"
    ]
    shared = client.patch(f"/api/v1/collections/{cid}", json={"shared": True}, headers=auth(token))
    assert shared.status_code == 200
    assert shared.get_json()["share_url"]
    added = client.post(
        f"/api/v1/collections/{cid}/items", json={"item_id": item.id}, headers=auth(token)
    )
    assert added.status_code == 201


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"data": b"", "content_type": "text/plain"},
        {"data": b"  \n \n", "content_type": "text/plain"},
        {"json": []},
    ],
    ids=["no body", "empty text", "blank lines", "empty list"],
)
def test_bulk_url_check_refuses_a_request_without_urls(client, kwargs):
    response = client.post("/api/v1/optout/check/urls", **kwargs)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "no_urls"


def test_openapi_documents_the_statuses_routes_answer_outside_the_schema(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "415" in paths["/api/v1/optout/check/urls"]["post"]["responses"]
    assert "422" in paths["/api/v1/artist/optouts/{rule_id}"]["delete"]["responses"]
    for path, method in [
        ("/api/v1/works", "get"),
        ("/api/v1/artist/works", "get"),
        ("/api/v1/collections/{collection_id}/items", "get"),
    ]:
        assert "422" in paths[path][method]["responses"], (path, "invalid_cursor")
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "400" in responses, (method, path)
            if operation.get("security"):
                assert "401" in responses, (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
