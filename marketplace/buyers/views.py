"""Organization settings: members, join code and API tokens."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.wrappers import Response

from marketplace.accounts import services as accounts
from marketplace.accounts.forms import ConfirmForm
from marketplace.accounts.models import Organization, OrganizationRole
from marketplace.buyers import bp
from marketplace.buyers.forms import NewApiTokenForm
from marketplace.db import get_session, transaction
from marketplace.security import role_required


def _organization() -> Organization:
    organization: Organization | None = current_user.organization
    if organization is None:
        abort(404)
    return organization


def _render_settings(
    form: NewApiTokenForm, new_token: str | None = None, status: int = 200
) -> ResponseReturnValue:
    organization = _organization()
    session = get_session()
    return (
        render_template(
            "buyers/organization.html",
            organization=organization,
            members=accounts.organization_members(session, organization),
            tokens=accounts.list_api_tokens(session, current_user),
            form=form,
            confirm=ConfirmForm(),
            new_token=new_token,
            is_owner=current_user.organization_role == OrganizationRole.OWNER,
        ),
        status,
    )


@bp.route("/organization")
@role_required("buyer")
def organization() -> ResponseReturnValue:
    return _render_settings(NewApiTokenForm())


@bp.route("/organization/tokens", methods=["POST"])
@role_required("buyer")
def create_token() -> ResponseReturnValue:
    form = NewApiTokenForm()
    if not form.validate_on_submit():
        return _render_settings(form, status=422)
    try:
        with transaction() as session:
            issued = accounts.create_api_token(session, current_user, form.name.data or "")
    except accounts.AccountError as exc:
        form.name.errors = [str(exc)]
        return _render_settings(form, status=422)
    flash("Token created. Copy it now: it is shown only once.", "success")
    return _render_settings(NewApiTokenForm(formdata=None), new_token=issued.plaintext, status=201)


@bp.route("/organization/tokens/<id:token_id>/revoke", methods=["POST"])
@role_required("buyer")
def revoke_token(token_id: int) -> Response:
    if ConfirmForm().validate_on_submit():
        try:
            with transaction() as session:
                token = accounts.revoke_api_token(session, current_user, token_id)
        except accounts.TokenNotFound:
            abort(404)
        flash(f"Token “{token.name}” is revoked.", "info")
    return redirect(url_for("buyers.organization"))


@bp.route("/organization/join-code", methods=["POST"])
@role_required("buyer")
def regenerate_join_code() -> Response:
    if current_user.organization_role != OrganizationRole.OWNER:
        abort(403)
    if ConfirmForm().validate_on_submit():
        with transaction() as session:
            accounts.regenerate_join_code(session, _organization())
        flash("New join code made; the old one no longer works.", "info")
    return redirect(url_for("buyers.organization"))
