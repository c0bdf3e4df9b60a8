"""Page cursors are signed: a cursor we did not hand out is a clear 4xx on every paged list
(422 invalid_cursor in the API, 400 on pages), never a 500, and pages walk forward and back
without repeats or gaps."""

from __future__ import annotations

import base64
import json

import pytest

from tests.catalog.test_search import make_stock
from tests.factories import make_api_token, make_artist, make_buyer


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unsigned(payload: dict) -> str:
    """A cursor as the old, unsigned codec made them: base64 of JSON anyone can write."""
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


HOSTILE_CURSORS = [
    unsigned({"s": "newest", "k": 2**63, "i": 2**63}),
    unsigned({"after": 2**63}),
    unsigned({"after": 5}),
    unsigned({"s": "relevance", "i": 1}),
    "not-a-cursor",
    "\u00e9" * 40,
]


@pytest.fixture
def shared_collection(client, db):
    """A buyer's token, a collection with three items, and its public share link."""
    items = [make_stock(db, f"Harbour {n}") for n in range(3)]
    token = make_api_token(db, make_buyer(db))
    cid = client.post("/api/v1/collections", json={"name": "c"}, headers=auth(token)).get_json()[
        "id"
    ]
    for item in items:
        client.post(
            f"/api/v1/collections/{cid}/items", json={"item_id": item.id}, headers=auth(token)
        )
    share = client.patch(f"/api/v1/collections/{cid}", json={"shared": True}, headers=auth(token))
    return token, cid, share.get_json()["share_url"].rsplit("/", 1)[-1]


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS)
def test_a_cursor_we_did_not_issue_is_refused_on_every_paged_list(
    client, db, shared_collection, cursor
):
    token, cid, share = shared_collection
    artist_token = make_api_token(db, make_artist(db))
    api = [
        client.get("/api/v1/works", query_string={"cursor": cursor}),
        client.get("/api/v1/works", query_string={"cursor": cursor, "q": "harbour"}),
        client.get(
            f"/api/v1/collections/{cid}/items", query_string={"cursor": cursor}, headers=auth(token)
        ),
        client.get(
            "/api/v1/artist/works", query_string={"cursor": cursor}, headers=auth(artist_token)
        ),
    ]
    for response in api:
        assert response.status_code == 422, response.get_data(as_text=True)
        assert response.get_json()["error"]["code"] == "invalid_cursor"
    pages = [
        client.get("/catalog", query_string={"cursor": cursor}),
        client.get(f"/c/{share}", query_string={"cursor": cursor}),
    ]
    for response in pages:
        assert response.status_code == 400
        assert "cursor" in response.get_data(as_text=True)


def test_collection_owner_page_refuses_a_forged_cursor(client, db, login):
    buyer = make_buyer(db)
    login(buyer)
    client.post("/collections", data={"name": "Mine"})
    response = client.get("/collections/1", query_string={"cursor": unsigned({"after": 2**63})})
    assert response.status_code == 400


def test_a_cursor_altered_by_one_character_is_refused(client, db):
    for n in range(3):
        make_stock(db, f"Harbour {n}")
    cursor = client.get("/api/v1/works?limit=1").get_json()["next_cursor"]
    assert (
        client.get("/api/v1/works", query_string={"limit": 1, "cursor": cursor}).status_code == 200
    )
    # The first character: every bit of it counts (the last one of unpadded base64 may carry
    # ignored bits, so changing it can leave the signature's bytes as they were).
    flipped = ("A" if cursor[0] != "A" else "B") + cursor[1:]
    response = client.get("/api/v1/works", query_string={"limit": 1, "cursor": flipped})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_cursor"


def test_a_cursor_reused_with_another_sort_is_refused(client, db):
    for n in range(3):
        make_stock(db, f"Harbour {n}")
    relevance = client.get("/api/v1/works?q=harbour&limit=1").get_json()["next_cursor"]
    response = client.get(
        "/api/v1/works", query_string={"q": "harbour", "sort": "price_asc", "cursor": relevance}
    )
    assert response.status_code == 422
    assert "sort" in response.get_json()["error"]["message"]
    newest = client.get("/api/v1/works?limit=1").get_json()["next_cursor"]
    assert (
        client.get("/catalog", query_string={"q": "harbour", "cursor": newest}).status_code == 400
    )


def test_a_cursor_of_one_list_is_refused_by_another(client, db, shared_collection):
    token, cid, _share = shared_collection
    page = client.get(f"/api/v1/collections/{cid}/items?limit=1", headers=auth(token)).get_json()
    response = client.get("/api/v1/works", query_string={"cursor": page["next_cursor"]})
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("sort", "q"),
    [("newest", ""), ("price_asc", ""), ("price_desc", ""), ("relevance", "harbour")],
)
def test_previous_page_walks_back_over_exactly_the_pages_seen(client, db, sort, q):
    for n in range(7):
        make_stock(db, f"Harbour {n}" + " harbour" * (n % 3))
    params = {"limit": 3, "sort": sort, **({"q": q} if q else {})}
    forward, cursor = [], None
    while True:
        body = client.get(
            "/api/v1/works", query_string={**params, "cursor": cursor or ""}
        ).get_json()
        forward.append(([i["id"] for i in body["items"]], body))
        if not body["next_cursor"]:
            break
        cursor = body["next_cursor"]
    assert [len(ids) for ids, _ in forward] == [3, 3, 1]
    assert forward[0][1]["previous_cursor"] is None
    backward, body = [], forward[-1][1]
    while body["previous_cursor"]:
        body = client.get(
            "/api/v1/works", query_string={**params, "cursor": body["previous_cursor"]}
        ).get_json()
        backward.append([i["id"] for i in body["items"]])
    assert backward == [forward[1][0], forward[0][0]]


def test_catalog_page_links_to_the_previous_page(client, db):
    for n in range(5):
        make_stock(db, f"Harbour {n}")
    first = client.get("/catalog?limit=2").get_data(as_text=True)
    assert "Next page" in first
    assert "Previous page" not in first
    second = client.get("/api/v1/works?limit=2").get_json()["next_cursor"]
    html = client.get("/catalog", query_string={"limit": 2, "cursor": second}).get_data(
        as_text=True
    )
    assert 'rel="prev"' in html
    assert "Previous page" in html


def test_shared_collection_pages_continue_by_signed_cursor(
    client, db, shared_collection, monkeypatch
):
    from marketplace.catalog import views

    _token, _cid, share = shared_collection
    monkeypatch.setattr(views, "COLLECTION_PAGE", 2)
    html = client.get(f"/c/{share}").get_data(as_text=True)
    assert "Harbour 1" in html
    assert "Harbour 2" not in html
    link = html.split('rel="next" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    rest = client.get(f"/c/{share}{link}")
    assert rest.status_code == 200
    assert "Harbour 2" in rest.get_data(as_text=True)
