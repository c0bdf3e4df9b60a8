"""Home page, health check and the admin overview."""

from __future__ import annotations

from flask import current_app, jsonify, render_template
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from marketplace import jobs
from marketplace.accounts import services as accounts
from marketplace.db import get_engine, get_session
from marketplace.security import role_required
from marketplace.site import bp


@bp.route("/")
def index() -> str:
    """Public."""
    return render_template("site/index.html")


@bp.route("/healthz")
def healthz() -> tuple[Response, int]:
    """Public: database and (when configured) Redis reachability; 503 if either is down."""
    checks: dict[str, dict[str, object]] = {}
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = {"ok": True, "backend": get_engine().dialect.name}
    except SQLAlchemyError as exc:
        current_app.logger.warning("health check: database unreachable (%s)", type(exc).__name__)
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    redis = jobs.redis_connection()
    if redis is None:
        checks["redis"] = {"ok": True, "configured": False}
    else:
        try:
            redis.ping()
            checks["redis"] = {"ok": True, "configured": True}
        except (RedisError, OSError) as exc:
            current_app.logger.warning("health check: redis unreachable (%s)", type(exc).__name__)
            checks["redis"] = {"ok": False, "configured": True, "error": type(exc).__name__}
    healthy = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return jsonify(body), 200 if healthy else 503


@bp.route("/admin")
@role_required("admin")
def admin() -> str:
    return render_template(
        "site/admin.html", users_by_role=accounts.count_users_by_role(get_session())
    )
