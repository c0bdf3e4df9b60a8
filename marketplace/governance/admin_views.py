"""/admin/claims and /admin/audit: the claims queue, decisions, evidence, the audit log.
Admins only."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from marketplace import jobs, storage
from marketplace.db import get_session, parse_row_id, transaction
from marketplace.governance import services
from marketplace.governance.forms import DecisionForm
from marketplace.security import role_required

bp = Blueprint("governance_admin", __name__, url_prefix="/admin")

TASKS = "marketplace.governance.tasks"


@bp.route("/claims")
@role_required("admin")
def claims() -> ResponseReturnValue:
    open_claims, decided = services.claims_queue(get_session())
    return render_template("governance/admin_claims.html", open_claims=open_claims, decided=decided)


def _claim(claim_id: int) -> services.Claim:
    try:
        return services.get_claim(get_session(), claim_id)
    except services.ClaimNotFound:
        abort(404)


@bp.route("/claims/<id:claim_id>")
@role_required("admin")
def claim(claim_id: int) -> ResponseReturnValue:
    found = _claim(claim_id)
    session = get_session()
    return render_template(
        "governance/admin_claim.html",
        claim=found,
        item=services.item_of(session, found),
        artist=services.uploading_artist(session, found),
        recalls=services.recalls_for_claim(session, found.id),
        form=DecisionForm(),
    )


@bp.route("/claims/<id:claim_id>/<any(accept, reject):decision>", methods=["POST"])
@role_required("admin")
def decide(claim_id: int, decision: str) -> ResponseReturnValue:
    """Accept (take the item down, recall it from every paid order) or reject, with a reason
    that is mailed to the claimant and the artist."""
    found = _claim(claim_id)
    form = DecisionForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for("governance_admin.claim", claim_id=found.id))
    try:
        with transaction() as session:
            locked = services.get_claim(session, found.id)
            if decision == "accept":
                recalls = services.accept_claim(
                    session, locked, current_user, form.reason.data or ""
                )
                jobs.enqueue_after_commit(session, f"{TASKS}.send_recall_notices", locked.id)
            else:
                recalls = []
                services.reject_claim(session, locked, current_user, form.reason.data or "")
            jobs.enqueue_after_commit(session, f"{TASKS}.send_decision", locked.id)
    except services.ClaimError as exc:
        flash(str(exc), "error")
    else:
        if decision == "accept":
            flash(
                f"Claim #{found.id} accepted: the item was taken down and recalled from "
                f"{len(recalls)} order{'s' if len(recalls) != 1 else ''}.",
                "success",
            )
        else:
            flash(f"Claim #{found.id} rejected.", "success")
    return redirect(url_for("governance_admin.claim", claim_id=found.id))


@bp.route("/claims/<id:claim_id>/files/<id:file_id>")
@role_required("admin")
def evidence(claim_id: int, file_id: int) -> ResponseReturnValue:
    """A file of evidence, as an attachment with the type read from its bytes."""
    try:
        file = services.evidence_file(get_session(), claim_id, file_id)
    except services.ClaimNotFound:
        abort(404)
    return (
        services.evidence_bytes(file),
        200,
        {
            "Content-Type": file.media_type,
            "Content-Disposition": storage.attachment_header(file.filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


@bp.route("/audit")
@role_required("admin")
def audit() -> ResponseReturnValue:
    """Every administrator's action, newest first, 100 a page."""
    before = request.args.get("before")
    before_id = parse_row_id(before)
    if before and before_id is None:
        abort(404)
    actions = services.audit_log(get_session(), before=before_id, limit=101)
    return render_template(
        "governance/admin_audit.html",
        actions=actions[:100],
        next_before=actions[99].id if len(actions) > 100 else None,
    )
