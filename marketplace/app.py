"""The application factory."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, abort, current_app, g, request
from flask.json.provider import DefaultJSONProvider
from flask_openapi3 import Info, OpenAPI
from werkzeug.routing import IntegerConverter, Map
from werkzeug.wrappers import Response

from marketplace import csp, db, errors, jobs, logredact, mail, storage
from marketplace.accounts import views as accounts_views
from marketplace.accounts.models import User
from marketplace.api import routes as api_routes
from marketplace.api.auth import SECURITY_SCHEMES
from marketplace.artists import views as artists_views
from marketplace.buyers import views as buyers_views
from marketplace.catalog import views as catalog_views
from marketplace.certificates import views as certificates_views
from marketplace.commands import register_commands
from marketplace.compliance import views as compliance_views
from marketplace.config import check_config, instance_path_from_env, load_config
from marketplace.db import MAX_ROW_ID
from marketplace.delivery import views as delivery_views
from marketplace.extensions import csrf, init_limiter, login_manager
from marketplace.governance import admin_views as governance_admin_views
from marketplace.governance import views as governance_views
from marketplace.ledger import services as ledger
from marketplace.optout import views as optout_views
from marketplace.payments import gateway as payments
from marketplace.payouts import admin_views as payouts_admin_views
from marketplace.payouts import views as payouts_views
from marketplace.provenance import views as provenance_views
from marketplace.reservations import views as reservations_views
from marketplace.site import views as site_views
from marketplace.storage import views as storage_views
from marketplace.webhooks import views as webhooks_views

PACKAGE_DIR = Path(__file__).resolve().parent


class BoundedJSONProvider(DefaultJSONProvider):
    """Request bodies nested deeper than the parser can follow ("[" * 5000) are invalid JSON
    (a ValueError, which every `get_json` caller answers with 400), not a RecursionError."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc


def create_app(
    config: Mapping[str, object] | None = None, *, instance_path: str | None = None
) -> Flask:
    """Build an app from the environment; tests pass `config` to override it."""
    app = OpenAPI(
        __name__.split(".")[0],
        info=Info(
            title="Marketplace API",
            version="1",
            description="Consent-first licensing of AI training images. Errors share one "
            'shape: `{"error": {"code": ..., "message": ...}}`.',
        ),
        security_schemes=_security_schemes(),
        doc_prefix="/api/v1",
        doc_url="/openapi.json",
        validation_error_status=400,
        validation_error_callback=_validation_error,
        instance_path=instance_path or instance_path_from_env(),
        instance_relative_config=True,
        template_folder=str(PACKAGE_DIR.parent / "templates"),
        static_folder=str(PACKAGE_DIR.parent / "static"),
    )
    app.json = BoundedJSONProvider(app)
    app.config.from_mapping(load_config(app.instance_path))
    app.config.setdefault("OPENAPI_HTML_STRING", _template_text("api/docs_index.html"))
    app.config.setdefault("REDOC_HTML_STRING", _template_text("api/redoc.html"))
    app.config.update(config or {})
    check_config(app.config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    _configure_logging(app)

    app.url_map.converters["id"] = IdConverter
    db.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    init_limiter(app)
    csp.init_app(app)
    storage.init_app(app)
    jobs.init_app(app)
    mail.init_app(app)
    ledger.init_app(app)
    payments.init_app(app)
    for directive, origins in payments.csp_sources(app.config).items():
        for origin in origins:  # Stripe.js (or the emulator's stand-in) and its API
            csp.allow(app, directive, origin)
    errors.init_app(app)
    _register_blueprints(app)
    _register_cli(app)
    _register_request_hooks(app)
    logredact.init_app(app)
    return app


def _template_text(name: str) -> str:
    """Our own pages for the API reference (the library's have inline script and style)."""
    return (PACKAGE_DIR.parent / "templates" / name).read_text()


def _security_schemes() -> dict[str, Any]:
    return dict(SECURITY_SCHEMES)


def _validation_error(exc: Exception) -> Response:
    """Requests the OpenAPI schema forbids are malformed: 400 in the API's error shape."""
    from pydantic import ValidationError

    problems = []
    if isinstance(exc, ValidationError):
        for item in exc.errors(include_url=False, include_context=False, include_input=False):
            problems.append(
                {"field": ".".join(str(p) for p in item.get("loc", ())), "problem": item["msg"]}
            )
    return errors.error_response(
        400,
        "invalid_request",
        "The request does not match the API's schema.",
        {"problems": problems},
    )


def _decimal_upto(limit: int) -> str:
    """A regex for the decimal numbers 1..limit, without leading zeros."""
    text = str(limit)
    options = [rf"[1-9]\d{{0,{len(text) - 2}}}"] if len(text) > 1 else []
    for i, digit in enumerate(text):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(text) - i - 1
            options.append(
                f"{text[:i]}[{low}-{int(digit) - 1}]" + (rf"\d{{{rest}}}" if rest else "")
            )
    options.append(text)
    return "(?:" + "|".join(options) + ")"


_VERSION = re.compile(r"[0-9]{1,9}")  # a session version in a login cookie


class IdConverter(IntegerConverter):
    """`<id:...>`: a positive row id that fits a 32-bit INTEGER column. Anything else does not
    match the route at all, so it is a 404 for every method (a converter that matched and then
    refused the value would make Werkzeug answer 405 with the other methods' Allow header)."""

    regex = _decimal_upto(MAX_ROW_ID)

    def __init__(self, map: Map) -> None:
        super().__init__(map, min=1, max=MAX_ROW_ID)


def _register_blueprints(app: OpenAPI) -> None:
    for bp in (
        site_views.bp,
        accounts_views.bp,
        artists_views.bp,
        buyers_views.bp,
        catalog_views.bp,
        certificates_views.bp,
        compliance_views.bp,
        delivery_views.bp,
        governance_views.bp,
        governance_admin_views.bp,
        optout_views.bp,
        payouts_admin_views.bp,
        payouts_views.bp,
        provenance_views.bp,
        reservations_views.bp,
        storage_views.bp,
        webhooks_views.bp,
    ):
        app.register_blueprint(bp)
    csrf.exempt(api_routes.bp)  # bearer tokens, no cookies: CSRF does not apply
    csrf.exempt(webhooks_views.bp)  # Stripe signs the body instead
    app.register_api(api_routes.bp)


@login_manager.user_loader
def _load_user(login_id: str) -> User | None:
    """The user of a session or remember cookie, if its session version is still current."""
    user_id, _, version = login_id.partition(":")
    row_id = db.parse_row_id(user_id)
    if row_id is None or not _VERSION.fullmatch(version):
        return None
    user = db.get_session().get(User, row_id)
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


def _register_cli(app: Flask) -> None:
    register_commands(app)


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        ok = 0 < len(incoming) <= 64 and incoming.replace("-", "").isalnum()
        g.request_id = incoming if ok else secrets.token_hex(8)

    @app.before_request
    def _refuse_long_query() -> None:
        # Checked before anything parses the query; the error handler answers in the API's
        # shape under /api/ and with a page elsewhere.
        limit = int(current_app.config["MAX_QUERY_STRING"])
        if len(request.query_string) > limit:
            abort(
                414,
                description=f"The query string is longer than {limit} characters: "
                "send fewer or shorter parameters.",
            )

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Request-ID", g.get("request_id", ""))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy", csp.header_value(current_app, request.path)
        )
        return response


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        from flask import has_request_context

        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def _configure_logging(app: Flask) -> None:
    root = logging.getLogger("marketplace")
    if not any(isinstance(f, _RequestIdFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
        handler.addFilter(_RequestIdFilter())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = True
