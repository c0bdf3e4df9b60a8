"""/admin/payouts: the next run, the last runs, failures, a run button and a check against
Stripe. Admins only (the artist's payout pages are `views.py`)."""

from __future__ import annotations

import logging

from flask import Blueprint, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from marketplace import jobs
from marketplace.artists.terms import format_money
from marketplace.db import get_session
from marketplace.forms import ConfirmForm
from marketplace.payments import gateway as payments
from marketplace.payouts import overview, services, tasks
from marketplace.payouts.models import PayoutRun
from marketplace.security import role_required

log = logging.getLogger(__name__)

bp = Blueprint("payouts_admin", __name__, url_prefix="/admin/payouts")

# One id for every run started from this page: a double click finds the first job still
# queued or running and queues nothing (the run lock would refuse a second run anyway).
ADMIN_RUN_JOB_ID = "payouts-admin-run"


@bp.route("")
@role_required("admin")
def index() -> str:
    return render_template(
        "payouts/admin/index.html",
        overview=overview.overview(get_session()),
        job=jobs.job_state(ADMIN_RUN_JOB_ID),
        confirm=ConfirmForm(),
    )


@bp.route("/run", methods=["POST"])
@role_required("admin")
def start_run() -> Response:
    """Queue a run (with Redis), or run it now (inline) and say what it did."""
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for("payouts_admin.index"))
    before = overview.latest_run_id(get_session())
    get_session().rollback()  # no read transaction held across the run
    if jobs.enqueue(tasks.admin_run, job_id=ADMIN_RUN_JOB_ID) is not None:
        flash("Payout run queued: refresh this page in a moment to see its result.", "success")
        return redirect(url_for("payouts_admin.index"))
    session = get_session()
    latest = overview.latest_run_id(session)
    run = session.get(PayoutRun, latest) if latest is not None and latest != before else None
    if run is None:
        flash("Another payout run is in progress; this one did not start.", "error")
    else:
        paid = ", ".join(
            format_money(t.amount_minor, t.currency)
            for t in overview.run_totals(session, [run.id]).get(run.id, [])
        )
        flash(
            f"Payout run {run.id} {run.status.value}: {run.paid_count} paid"
            + (f" ({paid})" if paid else "")
            + f", {run.failed_count} failed, "
            f"{run.resumed_count} resumed." + (f" {run.note}" if run.note else ""),
            "success" if run.failed_count == 0 else "error",
        )
    return redirect(url_for("payouts_admin.index"))


@bp.route("/reconcile")
@role_required("admin")
def reconcile() -> str:
    """Compare payout rows, the ledger and Stripe's transfers (read only; asks Stripe)."""
    try:
        differences: list[services.Difference] | None = services.reconcile()
        problem = ""
    except payments.PaymentsError as exc:
        log.warning("reconcile: Stripe unavailable (%s)", exc.code)
        differences, problem = None, "Stripe did not answer; try again in a moment."
    return render_template("payouts/admin/reconcile.html", differences=differences, problem=problem)
