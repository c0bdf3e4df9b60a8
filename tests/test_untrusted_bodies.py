"""Request bodies built to hurt: nested past the parser, larger than declared, chunked past a
cap, images that decode to gigabytes. Each gets a 4xx in the API's shape, never a 500."""

from __future__ import annotations

import gc
import io
import re

import pytest
from PIL import Image

from marketplace.db import get_database
from tests.factories import make_api_token, make_buyer

DEEP = b"[" * 5000


def json_post_routes(app):
    """Every API route whose request body may be JSON, from the OpenAPI document."""
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {})
            if method in ("post", "put", "patch") and "application/json" in content:
                yield method, path


def test_json_nested_past_the_parser_is_a_400_on_every_json_route(app, client, db):
    token = make_api_token(db, make_buyer(db))
    routes = list(json_post_routes(app))
    assert len(routes) >= 5
    for method, path in routes:
        response = client.open(
            re.sub(r"\{[^}]+\}", "1", path),
            method=method.upper(),
            data=DEEP,
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code != 500, (method, path, response.get_data(True)[:300])
        assert response.status_code in (400, 404, 409, 415, 422), (method, path)
        assert "error" in response.get_json(), (method, path)


@pytest.mark.parametrize("path", ["/api/v1/optout/check", "/api/v1/optout/check/urls"])
def test_public_checks_answer_deep_json_with_400(client, path):
    response = client.post(path, data=DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_request"


def test_a_chunked_webhook_body_past_the_cap_is_refused_unread(client):
    big = b'{"id":"evt_1","pad":"' + b"x" * 2_000_000 + b'"}'
    response = client.post(
        "/webhooks/stripe",
        input_stream=io.BytesIO(big),
        headers={"Stripe-Signature": "t=1,v1=00", "Transfer-Encoding": "chunked"},
        environ_base={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"


def sixteen_bit_png(width: int, height: int) -> bytes:
    """A few hundred KB on the wire, gigabytes-scale work to decode and convert."""
    out = io.BytesIO()
    Image.new("I;16", (width, height), 300).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "path", ["/api/v1/works/similar", "/api/v1/optout/check", "/catalog/similar"]
)
def test_images_sent_only_to_compare_are_capped_in_pixels(client, path):
    data = sixteen_bit_png(5000, 4000)  # 20 MP
    assert len(data) < 500_000
    response = client.post(
        path,
        data={"image": (io.BytesIO(data), "query.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code in (400, 422)
    assert "pixels" in response.get_data(True)


@pytest.mark.parametrize("app_config", [{"MAX_UPLOAD_BYTES": 100_000}])
@pytest.mark.parametrize("path", ["/api/v1/works/similar", "/api/v1/optout/check"])
def test_a_body_larger_than_one_image_is_refused_before_it_is_read(client, path):
    response = client.post(
        path,
        data={"image": (io.BytesIO(b"\x89PNG" + b"\0" * 400_000), "big.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413


def test_snapshot_downloads_give_their_connections_back(app, client):
    pool = get_database(app).engine.pool
    gc.disable()  # no collector to hide a leak
    try:
        for n in range(12):
            for path in ("/optout/snapshot.jsonl", "/api/v1/optout/snapshot"):
                response = client.get(path, environ_base={"REMOTE_ADDR": f"192.0.2.{n + 1}"})
                assert response.status_code == 200
                assert response.get_data(True).startswith('{"format"')
                response.close()
        assert pool.checkedout() == 0
    finally:
        gc.enable()


def test_the_similar_works_budget_is_one_per_client_for_api_and_page(client):
    """Both routes decode images: one budget per client, not one per route."""
    client_ip = {"environ_base": {"REMOTE_ADDR": "192.0.2.77"}}
    for _ in range(60):  # similar.RATE_LIMIT
        answer = client.post("/api/v1/works/similar", json={"work_id": 1}, **client_ip)
        assert answer.status_code == 404
    assert client.post("/catalog/similar", data={}, **client_ip).status_code == 429
