"""The package page of an order: files with size, SHA-256 and links; build progress; rebuild."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.wrappers import Response

from marketplace import storage
from marketplace.buyers.models import Order
from marketplace.db import get_session, transaction
from marketplace.delivery import services
from marketplace.delivery.models import Package, PackageStatus
from marketplace.forms import ConfirmForm
from marketplace.ledger.canonical import format_timestamp
from marketplace.security import role_required

bp = Blueprint("delivery", __name__)


def _package(order_id: int) -> tuple[Order, Package | None]:
    try:
        return services.get_package(get_session(), current_user, order_id)
    except services.NotFound:
        abort(404)


def status_json(package: Package | None) -> dict[str, Any]:
    if package is None:
        return {"status": "none", "items_done": 0, "items_total": 0, "percent": 0, "error": ""}
    return {
        "status": package.status.value,
        "items_done": package.items_done,
        "items_total": package.items_total,
        "items_missing": package.items_missing,
        "percent": services.progress_percent(package),
        "error": package.error,
    }


@bp.route("/orders/<id:order_id>/package")
@role_required("buyer", "admin")
def package_page(order_id: int) -> ResponseReturnValue:
    """Members of the buying organization and administrators; anyone else gets 404."""
    order, package = _package(order_id)
    session = get_session()
    return render_template(
        "delivery/package.html",
        order=order,
        package=package,
        status=status_json(package),
        files=services.manifest_files(order, package) if package is not None else [],
        missing=services.missing_items(session, order) if package is not None else [],
        rebuild=ConfirmForm() if current_user.role == "admin" else None,
        building=package is not None
        and package.status in (PackageStatus.QUEUED, PackageStatus.BUILDING),
    )


@bp.route("/orders/<id:order_id>/package/status.json")
@role_required("buyer", "admin")
def package_status(order_id: int) -> Response:
    """The build's progress, polled by static/js/package.js while the package page is open."""
    _order, package = _package(order_id)
    body = status_json(package)
    if package is not None and package.finished_at is not None:
        body["finished_at"] = format_timestamp(package.finished_at)
    response = jsonify(body)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/orders/<id:order_id>/ai-act-summary")
@role_required("buyer", "admin")
def ai_act_summary_page(order_id: int) -> ResponseReturnValue:
    """The EU AI Act Art. 53(1)(d) draft of the order, as in its package (404 until built)."""
    order, package = _package(order_id)
    text = services.ai_act_summary(order, package, "md")
    if text is None:
        abort(404)
    return render_template(
        "delivery/ai_act_summary.html", order=order, summary=text.decode("utf-8")
    )


@bp.route("/orders/<id:order_id>/ai-act-summary.<any(md, json):fmt>")
@role_required("buyer", "admin")
def ai_act_summary_file(order_id: int, fmt: str) -> ResponseReturnValue:
    order, package = _package(order_id)
    data = services.ai_act_summary(order, package, fmt)
    if data is None:
        abort(404)
    mime = "application/json" if fmt == "json" else "text/markdown; charset=utf-8"
    response = Response(data, mimetype=mime)
    response.headers["Content-Disposition"] = storage.attachment_header(services.AI_ACT_FILES[fmt])
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/orders/<id:order_id>/package/rebuild", methods=["POST"])
@role_required("admin")
def rebuild(order_id: int) -> Response:
    """Administrators rebuild a package (the same files, byte for byte)."""
    _package(order_id)
    if ConfirmForm().validate_on_submit():
        try:
            with transaction() as session:
                services.rebuild(session, current_user, order_id)
        except services.NotFound:
            abort(404)
        except services.DeliveryError as exc:
            flash(str(exc), "error")
        else:
            flash("The package is being rebuilt.", "info")
    return redirect(url_for("delivery.package_page", order_id=order_id))
