"""A free order's package fetched from the running app over real HTTP, resuming with Range."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from marketplace.buyers.models import Order, OrderStatus
from tests.delivery.orders import checkout, mixed_items, museum_server, sha256
from tests.factories import make_api_token, make_buyer


@pytest.fixture
def app_config():
    return {"MIRROR_BACKOFF_SECONDS": 0.01, "MIRROR_RETRIES": 2}


def get(url: str, **headers: str) -> Any:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback)
    return urllib.request.urlopen(request, timeout=30)  # noqa: S310


def test_a_free_order_downloads_from_the_live_server_and_resumes(
    db, tmp_path, run_jobs, live_server
):
    _app, base_url = live_server
    with museum_server() as (_museum, museum):
        mixed = mixed_items(db, tmp_path, [f"{museum}/ok/9.png"])
        buyer = make_buyer(db)
        order_id = checkout(db, buyer, [mixed.donated, *mixed.stock], run_jobs)
        run_jobs()  # free: paid at once; fulfilment, then the package (queued with Redis)
        run_jobs()
    db.rollback()
    db.expire_all()
    assert db.get(Order, order_id).status is OrderStatus.FULFILLED

    token = make_api_token(db, buyer)
    with get(
        f"{base_url}/api/v1/orders/{order_id}/package", Authorization=f"Bearer {token}"
    ) as response:
        body = json.load(response)
    assert body["status"] == "ready"
    shard = body["files"][0]
    assert shard["url"].startswith(f"{base_url}/storage/download/")
    with get(shard["url"]) as response:
        whole = response.read()
        assert response.headers["Accept-Ranges"] == "bytes"
    assert sha256(whole) == shard["sha256"]
    with get(shard["url"], Range=f"bytes={len(whole) // 2}-") as response:
        assert response.status == 206
        assert whole[: len(whole) // 2] + response.read() == whole
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(shard["url"], Range=f"bytes={len(whole)}-")
    assert refused.value.code == 416

    other = make_api_token(db, make_buyer(db))
    with pytest.raises(urllib.error.HTTPError) as hidden:
        get(f"{base_url}/api/v1/orders/{order_id}/package", Authorization=f"Bearer {other}")
    assert hidden.value.code == 404
