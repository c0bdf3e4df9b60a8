"""Organization settings: members and the join code (API tokens live in accounts)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.wrappers import Response

from marketplace.accounts import services as accounts
from marketplace.accounts.models import Organization
from marketplace.db import get_session, transaction
from marketplace.forms import ConfirmForm
from marketplace.security import role_required

bp = Blueprint("buyers", __name__, url_prefix="/buyers")


def _organization() -> Organization:
    organization: Organization | None = current_user.organization
    if organization is None:
        abort(404)
    return organization


@bp.route("/organization")
@role_required("buyer")
def organization() -> ResponseReturnValue:
    organization = _organization()
    return render_template(
        "buyers/organization.html",
        organization=organization,
        members=accounts.organization_members(get_session(), organization),
        confirm=ConfirmForm(),
        is_owner=accounts.is_organization_owner(current_user),
    )


@bp.route("/organization/join-code", methods=["POST"])
@role_required("buyer")
def regenerate_join_code() -> Response:
    if ConfirmForm().validate_on_submit():
        try:
            with transaction() as session:
                accounts.regenerate_join_code(session, current_user, _organization())
        except accounts.NotOrganizationOwner:
            abort(403)
        flash("New join code made; the old one no longer works.", "info")
    return redirect(url_for("buyers.organization"))
