"""Registry pages: an artist's opt-outs, and the public snapshot download."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from marketplace import imaging
from marketplace.db import get_session, transaction, utcnow
from marketplace.extensions import limiter
from marketplace.forms import ConfirmForm
from marketplace.optout import services
from marketplace.optout.forms import OptOutAddressForm, OptOutImageForm
from marketplace.optout.models import RuleKind
from marketplace.security import role_required

bp = Blueprint("optout", __name__, url_prefix="/optout")


def _render(
    image_form: OptOutImageForm | None = None,
    address_form: OptOutAddressForm | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    return render_template(
        "optout/registry.html",
        rules=services.list_rules(get_session(), current_user),
        image_form=image_form or OptOutImageForm(formdata=None),
        address_form=address_form or OptOutAddressForm(formdata=None),
        confirm=ConfirmForm(),
    ), status


@bp.route("/")
@role_required("artist")
def registry() -> ResponseReturnValue:
    return _render()


@bp.route("/image", methods=["POST"])
@role_required("artist")
def add_image() -> ResponseReturnValue:
    form = OptOutImageForm()
    if not form.validate_on_submit():
        return _render(image_form=form, status=422)
    config = current_app.config
    try:
        with transaction() as session:
            services.register_image(
                session,
                current_user,
                form.image.data.read(),
                label=form.label.data or "",
                keep_image=bool(form.keep_image.data),
                max_bytes=int(config["MAX_UPLOAD_BYTES"]),
                max_pixels=int(config["MAX_IMAGE_PIXELS"]),
            )
    except imaging.ImageRejected as exc:
        form.image.errors = [imaging.rejection(form.image.data.filename, exc)]
        return _render(image_form=form, status=422)
    flash("Image registered: it is now in the opt-out registry.", "success")
    return redirect(url_for("optout.registry"))


@bp.route("/address", methods=["POST"])
@role_required("artist")
def add_address() -> ResponseReturnValue:
    form = OptOutAddressForm()
    if not form.validate_on_submit():
        return _render(address_form=form, status=422)
    try:
        with transaction() as session:
            services.register_address(
                session,
                current_user,
                RuleKind(form.kind.data),
                form.address.data or "",
                label=form.label.data or "",
            )
    except services.OptOutError as exc:
        form.address.errors = [str(exc)]
        return _render(address_form=form, status=422)
    flash("Registered in the opt-out registry.", "success")
    return redirect(url_for("optout.registry"))


@bp.route("/<id:rule_id>/remove", methods=["POST"])
@role_required("artist")
def remove(rule_id: int) -> ResponseReturnValue:
    if ConfirmForm().validate_on_submit():
        try:
            with transaction() as session:
                services.remove_rule(session, current_user, rule_id)
        except services.RuleNotFound:
            abort(404)
        except services.OptOutError as exc:
            flash(str(exc), "error")
            return redirect(url_for("optout.registry"))
        flash("Removed from the registry.", "info")
    return redirect(url_for("optout.registry"))


@bp.route("/snapshot.jsonl")
@limiter.shared_limit(services.SNAPSHOT_RATE_LIMIT, scope=services.SNAPSHOT_RATE_LIMIT_SCOPE)
def snapshot() -> Response:
    """Public: the whole registry (hashes and URL rules, no personal data) for offline checks."""
    lines = services.snapshot_stream(int(current_app.config["OPTOUT_PHASH_DISTANCE"]))
    response = Response(lines, mimetype="application/x-ndjson")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="optout-snapshot-{utcnow():%Y%m%d}.jsonl"'
    )
    return response
