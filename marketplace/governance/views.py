"""Claim pages: anyone files a claim on an item and follows it by link; the uploading artist
answers once. The administrators' side is `admin_views.py`."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from marketplace import jobs
from marketplace.artists.models import Artist
from marketplace.catalog.models import CatalogItem
from marketplace.db import get_session, transaction
from marketplace.governance import services
from marketplace.governance.forms import ClaimForm, CounterNoticeForm
from marketplace.security import role_required

bp = Blueprint("governance", __name__)

TASKS = "marketplace.governance.tasks"


def _item(item_id: int) -> CatalogItem:
    item = get_session().get(CatalogItem, item_id)
    if item is None:
        abort(404)
    return item


@bp.route("/items/<id:item_id>/claim", methods=["GET", "POST"])
def file_claim(item_id: int) -> ResponseReturnValue:
    """Public (logged in or not): report a work or museum record that should not be offered."""
    item = _item(item_id)
    form = ClaimForm()
    if not form.is_submitted() and current_user.is_authenticated:
        form.email.data = current_user.email
        form.name.data = current_user.display_name
    if form.validate_on_submit():
        evidence = [
            services.Evidence(upload.filename or "evidence", upload.read())
            for upload in form.evidence.data or []
            if upload and upload.filename
        ]
        try:
            with transaction() as session:
                claim = services.file_claim(
                    session,
                    item_id=item.id,
                    kind=form.kind.data or "",
                    name=form.name.data or "",
                    email=form.email.data or "",
                    statement=form.statement.data or "",
                    links=form.links.data or "",
                    evidence=evidence,
                    user=current_user if current_user.is_authenticated else None,
                )
                jobs.enqueue_after_commit(session, f"{TASKS}.send_claim_confirmation", claim.id)
                token = services.status_token(claim)
        except services.ClaimError as exc:
            flash(str(exc), "error")
        else:
            flash(f"Claim #{claim.id} received. We emailed you a link to follow it.", "success")
            return redirect(url_for("governance.claim_status", token=token))
    status = 422 if form.is_submitted() else 200
    return render_template("governance/claim_form.html", item=item, form=form), status


@bp.route("/claims/status/<token>")
def claim_status(token: str) -> ResponseReturnValue:
    """The claimant's view of their claim, by the signed link we emailed (no login)."""
    try:
        claim = services.claim_for_token(get_session(), token)
    except services.ClaimNotFound:
        abort(404)
    response = render_template("governance/claim_status.html", claim=claim)
    return response, 200, {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}


def _own_claim(claim_id: int) -> tuple[Artist, services.Claim]:
    artist: Artist | None = current_user.artist
    if artist is None:
        abort(404)
    session = get_session()
    try:
        claim = services.get_claim(session, claim_id)
    except services.ClaimNotFound:
        abort(404)
    owner = services.uploading_artist(session, claim)
    if owner is None or owner.id != artist.id:
        abort(404)  # another artist's claim reads as absent
    return artist, claim


@bp.route("/artists/claims")
@role_required("artist")
def artist_claims() -> ResponseReturnValue:
    artist: Artist | None = current_user.artist
    if artist is None:
        abort(404)
    return render_template(
        "governance/artist_claims.html", claims=services.claims_on_artist(get_session(), artist)
    )


@bp.route("/artists/claims/<id:claim_id>", methods=["GET", "POST"])
@role_required("artist")
def counter_notice(claim_id: int) -> ResponseReturnValue:
    """The uploading artist reads a claim on their work and may answer it once."""
    artist, claim = _own_claim(claim_id)
    form = CounterNoticeForm()
    if claim.counter_at is None and form.validate_on_submit():
        try:
            with transaction() as session:
                services.counter_notice(
                    session, services.get_claim(session, claim.id), artist, form.text.data or ""
                )
        except services.ClaimError as exc:
            flash(str(exc), "error")
        else:
            flash("Your answer was recorded; an administrator will read it.", "success")
            return redirect(url_for("governance.counter_notice", claim_id=claim.id))
    status = 422 if form.is_submitted() else 200
    return render_template("governance/counter_notice.html", claim=claim, form=form), status
