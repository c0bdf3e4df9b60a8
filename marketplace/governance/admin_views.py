"""/admin/claims and /admin/audit: the claims queue, decisions, evidence, the audit log.
Admins only."""

from __future__ import annotations

import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from marketplace import jobs, storage
from marketplace.db import get_session, parse_row_id, transaction
from marketplace.forms import ConfirmForm
from marketplace.governance import console, services
from marketplace.governance.forms import DecisionForm
from marketplace.ledger import services as ledger
from marketplace.security import role_required

bp = Blueprint("governance_admin", __name__, url_prefix="/admin")

TASKS = "marketplace.governance.tasks"
_SEQ = re.compile(r"[0-9]{1,18}")


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
                for recall in recalls:  # each order's certificate lists its recalled items
                    jobs.enqueue_after_commit(
                        session,
                        "marketplace.certificates.tasks.reissue_certificate",
                        recall.order_id,
                        job_id=f"certificate-reissue-{recall.order_id}-{locked.id}",
                    )
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


@bp.route("/users")
@role_required("admin")
def users() -> ResponseReturnValue:
    """Accounts newest first, 50 a page, searchable by email."""
    email = request.args.get("email", "")[:254]
    before = request.args.get("before")
    before_id = parse_row_id(before)
    if before and before_id is None:
        abort(404)
    found = console.list_users(get_session(), email=email, before=before_id, limit=51)
    return render_template(
        "governance/admin_users.html",
        users=found[:50],
        email=email,
        next_before=found[49].id if len(found) > 50 else None,
        form=DecisionForm(),
    )


@bp.route(
    "/users/<id:user_id>/<any(suspend, reactivate, verify, unverify):action>", methods=["POST"]
)
@role_required("admin")
def user_action(user_id: int, action: str) -> ResponseReturnValue:
    """Suspend or reactivate an account, give or take back an artist's identity badge; the
    reason goes into the audit log."""
    form = DecisionForm()
    if not form.validate_on_submit():
        flash("Give a reason: it goes into the audit log.", "error")
        return redirect(url_for("governance_admin.users"))
    try:
        with transaction() as session:
            user = console.get_user(session, user_id, lock=True)
            reason = form.reason.data or ""
            if action == "suspend":
                console.suspend(session, current_user, user, reason)
            elif action == "reactivate":
                console.reactivate(session, current_user, user, reason)
            else:
                console.set_identity_verified(
                    session, current_user, user, action == "verify", reason
                )
    except console.ConsoleError as exc:
        if str(exc).startswith("No user"):
            abort(404)
        flash(str(exc), "error")
    else:
        flash(f"Done: {action} for {user.email}.", "success")
    return redirect(url_for("governance_admin.users"))


@bp.route("/jobs")
@role_required("admin")
def jobs_page() -> ResponseReturnValue:
    """Failed background jobs with their error, and a retry button."""
    return render_template(
        "governance/admin_jobs.html",
        failed=jobs.failed_jobs(),
        pending=jobs.pending_count(get_session()),
        form=DecisionForm(),
    )


@bp.route("/jobs/retry", methods=["POST"])
@role_required("admin")
def retry_job() -> ResponseReturnValue:
    form = DecisionForm()
    job_id = request.form.get("job_id", "")
    if not form.validate_on_submit():
        flash("Give a reason: it goes into the audit log.", "error")
    elif not jobs.retry_failed(job_id):
        flash("No such failed job (it may have been retried already).", "error")
    else:
        with transaction() as session:
            services.record_admin_action(
                session,
                current_user,
                "job.retry",
                target_type="job",
                target_id=None,
                reason=form.reason.data or "",
                details={"job": job_id[:200]},
            )
        flash("Queued again.", "success")
    return redirect(url_for("governance_admin.jobs_page"))


@bp.route("/ledger", methods=["GET", "POST"])
@role_required("admin")
def ledger_page() -> ResponseReturnValue:
    """The latest checkpoint, an entry lookup (to its page with the proof) and a button that
    verifies the whole ledger in a job, its result kept on the audit-log row."""
    session = get_session()
    if request.method == "POST":
        if not ConfirmForm().validate_on_submit():
            flash("The form expired; try again.", "error")
            return redirect(url_for("governance_admin.ledger_page"))
        with transaction() as tx:
            action = services.record_admin_action(
                tx, current_user, "ledger.verify", target_type="ledger", target_id=None
            )
            tx.flush()
            jobs.enqueue_after_commit(tx, f"{TASKS}.verify_ledger", action.id)
        flash("Verification started: its result appears below when it is done.", "success")
        return redirect(url_for("governance_admin.ledger_page"))
    seq = request.args.get("seq")
    if seq is not None:
        found = int(seq) if _SEQ.fullmatch(seq) else None  # entries count from 0
        if found is None or ledger.find_entry(session, found) is None:
            flash(f"No ledger entry {seq[:20]!r}.", "error")
        else:
            return redirect(url_for("provenance.entry", seq=found))
    return render_template(
        "governance/admin_ledger.html",
        checkpoint=ledger.latest_checkpoint(session),
        runs=services.audit_log(session, action="ledger.verify", limit=10),
        confirm=ConfirmForm(),
    )
