from __future__ import annotations

from flask import Flask

from tests.conftest import make_test_app


def test_healthz_reports_database_ok(app, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"] == {"ok": True, "configured": bool(app.config["REDIS_URL"])}


def test_healthz_without_redis_does_not_check_it(database_url, tmp_path):
    app = make_test_app(database_url, tmp_path, REDIS_URL=None)
    body = app.test_client().get("/healthz").get_json()
    assert body["checks"]["redis"] == {"ok": True, "configured": False}


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path):
    app: Flask = make_test_app(f"sqlite:///{tmp_path}/missing-dir/x.sqlite", tmp_path)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"]["ok"] is False


def test_healthz_is_503_when_redis_is_configured_but_down(database_url, tmp_path):
    app = make_test_app(database_url, tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_healthz_checks_real_redis(database_url, tmp_path, redis_url):
    app = make_test_app(database_url, tmp_path, REDIS_URL=redis_url)
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["redis"] == {"ok": True, "configured": True}


def test_home_page_renders_without_external_assets(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "/static/css/app.css" in html
    assert "http://" not in html.replace("http://localhost", "")
    assert "https://" not in html
