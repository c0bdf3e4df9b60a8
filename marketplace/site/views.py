"""Home page, health check and the admin overview."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from marketplace import jobs
from marketplace.accounts import services as accounts
from marketplace.artists import services as artists
from marketplace.db import get_engine, get_session, transaction
from marketplace.extensions import rate_limit_storage_status
from marketplace.forms import ConfirmForm
from marketplace.security import role_required
from marketplace.text import control_character_problem

bp = Blueprint("site", __name__)


@bp.route("/")
def index() -> str:
    """Public."""
    return render_template("site/index.html")


@bp.route("/healthz")
def healthz() -> tuple[Response, int]:
    """Public: database and (when configured) Redis reachability, 503 if either is down; where
    rate limits are counted (in memory while their Redis is down); jobs waiting in the outbox."""
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
    checks["rate_limits"] = rate_limit_storage_status()
    if redis is not None and checks["database"]["ok"]:
        # Jobs recorded but not yet handed to RQ (Redis was down); a sweep sends them.
        checks["job_outbox"] = {"ok": True, "pending": jobs.pending_count(get_session())}
    healthy = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return jsonify(body), 200 if healthy else 503


@bp.route("/admin")
@role_required("admin")
def admin() -> str:
    return render_template(
        "site/admin.html", users_by_role=accounts.count_users_by_role(get_session())
    )


@bp.route("/admin/reviews")
@role_required("admin")
def reviews() -> str:
    """Works held back as suspected duplicates of another account's work."""
    return render_template(
        "site/reviews.html", works=artists.works_in_review(get_session()), confirm=ConfirmForm()
    )


@bp.route("/admin/reviews/<id:work_id>/clear", methods=["POST"])
@role_required("admin")
def clear_review(work_id: int) -> Response:
    note = request.form.get("note", "")
    problem = control_character_problem(note)
    if problem is not None:
        flash(f"The note {problem}.", "error")
    elif ConfirmForm().validate_on_submit():
        try:
            with transaction() as session:
                work = artists.get_work(session, work_id)
                artists.clear_review(session, work, current_user, note)
        except artists.WorkNotFound:
            abort(404)
        except artists.ArtistError as exc:
            flash(str(exc), "error")
        else:
            flash(f"“{work.title}” cleared: it may be offered now.", "success")
    return redirect(url_for("site.reviews"))
