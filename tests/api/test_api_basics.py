from __future__ import annotations

from tests.factories import make_api_token, make_buyer


def test_unknown_api_route_is_json_404(client):
    response = client.get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"]["code"] == "not_found"


def test_wrong_method_is_json_405(client):
    response = client.delete("/api/v1/me")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_missing_and_unknown_tokens_are_401(client, db):
    missing = client.get("/api/v1/me")
    assert missing.status_code == 401
    assert missing.get_json()["error"]["code"] == "missing_token"
    unknown = client.get("/api/v1/me", headers={"Authorization": "Bearer mkt_nope"})
    assert unknown.status_code == 401
    assert unknown.get_json()["error"] == {
        "code": "invalid_token",
        "message": "This API token is unknown or revoked.",
    }
    basic = client.get("/api/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401


def test_me_names_only_the_callers_organization(client, db):
    first, second = make_buyer(db), make_buyer(db)
    token = make_api_token(db, second)
    body = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert body["organization"] == {"id": second.organization_id, "name": second.organization.name}
    assert body["organization"]["id"] != first.organization_id


def test_openapi_document_is_generated_3_1(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.1")
    assert "/api/v1/me" in spec["paths"]
    assert "/api/v1/ledger/entries/{seq}" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_reference_page_is_served_locally(client):
    page = client.get("/api/v1/redoc")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "https://" not in html
    assert "http://" not in html
    script = client.get("/api/v1/redoc/js/redoc.standalone.js")
    assert script.status_code == 200
    assert len(script.data) > 100_000
