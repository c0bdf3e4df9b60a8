"""Browser-side protections: a Content-Security-Policy that admits only our own assets (and the
origins configured for them), pages that need no inline script or style, no secrets in access
logs, and long query strings answered by the app in the API's shape."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from werkzeug._internal import _log as werkzeug_log

from marketplace import csp
from tests.conftest import ROOT, make_test_app


def policy(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    directives = [part.strip().split() for part in header.split(";")]
    return {name: sources for name, *sources in directives}


@pytest.mark.parametrize("path", ["/", "/catalog", "/accounts/login", "/api/v1/works", "/healthz"])
def test_every_response_allows_only_our_own_scripts_and_styles(client, path):
    found = policy(client.get(path))
    assert found["script-src"][0] == "'self'"  # then only the Stripe.js origin (see below)
    assert "'unsafe-inline'" not in found["script-src"]
    assert found["style-src"] == ["'self'"]
    assert found["default-src"] == ["'self'"]
    assert found["object-src"] == ["'none'"]
    assert found["frame-ancestors"] == ["'none'"]


def test_configured_origins_are_admitted_where_they_are_named(database_url, tmp_path):
    app = make_test_app(
        database_url,
        tmp_path,
        CSP_SCRIPT_SRC="https://js.stripe.com",
        CSP_FRAME_SRC="https://js.stripe.com https://hooks.stripe.com",
        CSP_CONNECT_SRC="https://api.stripe.com",
    )
    found = policy(app.test_client().get("/"))
    assert "https://js.stripe.com" in found["script-src"]
    assert {"https://js.stripe.com", "https://hooks.stripe.com"} <= set(found["frame-src"])
    assert "'none'" not in found["frame-src"]
    assert "https://api.stripe.com" in found["connect-src"]
    assert found["style-src"] == ["'self'"]


def test_the_stripe_js_origins_payments_names_are_admitted(app, client):
    from marketplace.payments import gateway

    found = policy(client.get("/"))
    for directive, origins in gateway.csp_sources(app.config).items():
        assert set(origins) <= set(found[directive]), directive
    assert found["style-src"] == ["'self'"]


def test_an_extension_can_admit_an_origin_for_its_own_pages(app, client):
    csp.allow(app, "script-src", "http://127.0.0.1:8420")
    assert "http://127.0.0.1:8420" in policy(client.get("/"))["script-src"]
    with pytest.raises(ValueError, match="not a CSP source"):
        csp.allow(app, "script-src", "https://x.example; script-src *")


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "event-handler attribute"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def inline_code(html: str) -> list[str]:
    return [what for pattern, what in INLINE if pattern.search(html)]


def test_no_template_uses_inline_script_or_style_that_the_policy_would_block():
    offenders = {
        str(path.relative_to(ROOT)): inline_code(path.read_text())
        for path in sorted((ROOT / "templates").rglob("*.html"))
    }
    assert {path: found for path, found in offenders.items() if found} == {}


@pytest.mark.parametrize("path", ["/api/v1/", "/api/v1/redoc"])
def test_the_api_reference_pages_run_no_inline_script(client, path):
    response = client.get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert inline_code(html) == []
    if path.endswith("redoc"):
        assert "/static/js/redoc-init.js" in html
        # Redoc builds its styles at run time: this page alone allows inline styles.
        assert "'unsafe-inline'" in policy(response)["style-src"]
        assert "'unsafe-inline'" not in policy(response)["script-src"]


def test_a_too_long_query_string_gets_the_api_error_shape(client):
    response = client.get("/api/v1/works", query_string={"q": "x" * 10_000})
    assert response.status_code == 414
    error = response.get_json()["error"]
    assert error["code"] == "query_too_long"
    assert "8192" in error["message"]
    page = client.get("/catalog", query_string={"q": "x" * 10_000})
    assert page.status_code == 414
    assert page.mimetype == "text/html"


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/password/reset/eyJ1aWQiOjF9.Z2Vf.c2VjcmV0",
        "/accounts/verify/eyJ1aWQiOjF9.Z2Vf.c2VjcmV0",
        "/storage/download/eyJ1aWQiOjF9.Z2Vf.c2VjcmV0",
        "/c/eyJ1aWQiOjF9.Z2Vf.c2VjcmV0",
    ],
)
def test_tokens_in_paths_are_kept_out_of_access_logs(app, caplog, path):
    secret = path.rsplit("/", 1)[1]
    with caplog.at_level(logging.INFO):
        # What the dev server writes for each request.
        werkzeug_log(
            "info",
            '127.0.0.1 - - [02/Dec/2026 10:00:00] "%s" %s %s',
            f"GET {path} HTTP/1.1",
            200,
            10,
        )
        # gunicorn's access line (its format puts the path in the message arguments).
        logging.getLogger("gunicorn.access").info('%s "%s"', "127.0.0.1", f"GET {path} HTTP/1.1")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert secret not in logged
    assert logged.count("[redacted]") == 2
    assert path.rsplit("/", 1)[0] in logged  # the route stays readable


def test_paths_without_secrets_are_logged_as_they_are(app, caplog):
    with caplog.at_level(logging.INFO):
        werkzeug_log("info", '"%s" %s %s', "GET /catalog?q=harbour HTTP/1.1", 200, 10)
    assert "GET /catalog?q=harbour HTTP/1.1" in caplog.records[-1].getMessage()


def test_gunicorn_config_lets_the_app_answer_long_queries():
    namespace: dict[str, object] = {}
    exec((Path(ROOT) / "gunicorn.conf.py").read_text(), namespace)  # noqa: S102 - our own file
    # 0: up to gunicorn's 1 MiB cap, so the app (MAX_QUERY_STRING) answers, in JSON.
    assert namespace["limit_request_line"] == 0
    assert "%(U)s" in str(namespace["access_log_format"])  # paths without query strings
