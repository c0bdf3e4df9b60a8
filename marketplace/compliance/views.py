"""Buyer pages: upload a manifest, follow its check, read the summary, download the rows."""

from __future__ import annotations

import tempfile
from pathlib import Path

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from marketplace.accounts.models import Organization
from marketplace.compliance import services
from marketplace.compliance.classifier import CLASS_LABELS, CLASSES
from marketplace.compliance.forms import CheckForm
from marketplace.compliance.models import CheckStatus
from marketplace.db import get_session, transaction
from marketplace.security import role_required

bp = Blueprint("compliance", __name__, url_prefix="/compliance")


def _organization() -> Organization:
    organization: Organization | None = current_user.organization
    if organization is None:
        abort(404)
    return organization


def allow_large_upload() -> None:
    """Manifests may be far larger than other uploads: this request's own limit, set before
    anything reads the body (werkzeug spools file parts to disk, never to memory)."""
    request.max_content_length = int(current_app.config["COMPLIANCE_UPLOAD_MAX_BYTES"])


@bp.route("", methods=["GET", "POST"])
@role_required("buyer")
def checks() -> ResponseReturnValue:
    organization = _organization()
    if request.method == "POST":
        allow_large_upload()
    form = CheckForm()
    if form.validate_on_submit():
        upload = form.manifest.data
        with tempfile.TemporaryDirectory(prefix="manifest-") as folder:
            path = Path(folder) / "manifest"
            upload.save(path)
            try:
                with transaction() as session:
                    check = services.create_check(
                        session,
                        current_user,
                        organization,
                        services.Upload(path, upload.filename or "manifest"),
                        columns=form.columns(),
                        intended_uses=form.intended_uses.data or [],
                    )
            except services.ComplianceError as exc:
                form.manifest.errors = [*form.manifest.errors, str(exc)]
            else:
                return redirect(url_for("compliance.check_page", check_id=check.id))
    return render_template(
        "compliance/checks.html",
        form=form,
        checks=services.list_checks(get_session(), organization),
    )


@bp.route("/checks/<id:check_id>")
@role_required("buyer")
def check_page(check_id: int) -> ResponseReturnValue:
    try:
        check = services.get_check(get_session(), _organization(), check_id)
    except services.CheckNotFound:
        abort(404)
    state = services.state_of(check)
    return render_template(
        "compliance/check.html",
        check=check,
        state=state,
        running=state.status in (CheckStatus.QUEUED.value, CheckStatus.RUNNING.value),
        classes=CLASSES,
        labels=CLASS_LABELS,
        format_label=services.format_label(check),
    )


@bp.route("/checks/<id:check_id>/rows.csv")
@role_required("buyer")
def rows_csv(check_id: int) -> ResponseReturnValue:
    try:
        check = services.get_check(get_session(), _organization(), check_id)
        return redirect(services.rows_url(check))
    except services.CheckNotFound:
        abort(404)
    except services.ComplianceError:
        abort(409)
