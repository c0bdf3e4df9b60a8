"""The artist's payouts pages: connecting Stripe, earnings, payout history, statements.

Artists only, and only their own: nothing here takes an artist or account id from the URL.
The Stripe links (onboarding, Express dashboard) are bearer credentials: they go straight into
a redirect and are never logged or stored.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from marketplace import cursors, storage
from marketplace.artists.models import Artist
from marketplace.db import get_session, transaction
from marketplace.payments import gateway as payments
from marketplace.payouts import earnings, exports, services, statements
from marketplace.payouts.models import PayoutAccount
from marketplace.security import role_required

log = logging.getLogger(__name__)

bp = Blueprint("payouts", __name__)

ORDERS_CURSOR = "payouts-orders"
WORKS_CURSOR = "payouts-works"
PAYOUTS_CURSOR = "payouts-history"
STRIPE_DOWN = "Stripe cannot be reached right now; try again in a minute."
# Statements are personal financial records and Stripe links are bearer credentials: neither
# may be kept by a shared cache, the browser's disk cache or its back/forward history.
NO_STORE = "private, no-store"


def _to_stripe(link: str) -> ResponseReturnValue:
    """303 to a Stripe-hosted page; the link itself is the credential."""
    response = redirect(link, code=303)
    response.headers["Cache-Control"] = NO_STORE
    return response


def _artist() -> Artist:
    artist: Artist | None = current_user.artist
    if artist is None:
        abort(404)
    return artist


def _after(purpose: str) -> int | None:
    try:
        return cursors.decode_after(purpose, request.args.get("cursor"))
    except cursors.InvalidCursor as exc:
        abort(400, description=f"{exc} Start again from the first page.")


def _next(purpose: str, page: earnings.Page[Any]) -> str | None:
    return cursors.encode_after(purpose, page.next_after) if page.next_after else None


def _account_state(account: PayoutAccount | None) -> str:
    if account is None:
        return "none"
    if account.payouts_enabled:
        return "enabled"
    return "restricted" if account.restricted else "incomplete"


@bp.route("/artists/payouts")
@role_required("artist")
def payouts_page() -> ResponseReturnValue:
    artist = _artist()
    session = get_session()
    account = services.payout_account(session, artist.id)
    history = earnings.payouts(session, artist.id)
    return render_template(
        "payouts/payouts.html",
        artist=artist,
        account=account,
        state=_account_state(account),
        balances=services.balances(session, artist.id),
        hold_days=int(current_app.config["PAYOUT_HOLD_DAYS"]),
        minimum_minor=int(current_app.config["PAYOUT_MINIMUM_MINOR"]),
        default_currency=str(current_app.config["DEFAULT_CURRENCY"]),
        failed_reversals=earnings.failed_reversals(session, artist.id),
        history=history,
        history_next=_next(PAYOUTS_CURSOR, history),
        months=earnings.by_month(session, artist.id),
        currencies=statements.currencies(session, artist.id),
    )


@bp.route("/artists/payouts/history")
@role_required("artist")
def payout_history() -> ResponseReturnValue:
    artist = _artist()
    history = earnings.payouts(get_session(), artist.id, before=_after(PAYOUTS_CURSOR), limit=25)
    return render_template(
        "payouts/history.html",
        history=history,
        history_next=_next(PAYOUTS_CURSOR, history),
    )


@bp.route("/artists/earnings")
@role_required("artist")
def earnings_page() -> ResponseReturnValue:
    artist = _artist()
    session = get_session()
    orders = earnings.by_order(session, artist.id)
    works = earnings.by_work(session, artist.id)
    return render_template(
        "payouts/earnings.html",
        artist=artist,
        balances=services.balances(session, artist.id),
        months=earnings.by_month(session, artist.id),
        orders=orders,
        orders_next=_next(ORDERS_CURSOR, orders),
        works=works,
        works_next=_next(WORKS_CURSOR, works),
        buyers=earnings.buyers(session, artist.id),
    )


@bp.route("/artists/earnings/orders")
@role_required("artist")
def earnings_orders() -> ResponseReturnValue:
    artist = _artist()
    orders = earnings.by_order(get_session(), artist.id, after=_after(ORDERS_CURSOR), limit=100)
    return render_template(
        "payouts/earnings_orders.html",
        orders=orders,
        orders_next=_next(ORDERS_CURSOR, orders),
    )


@bp.route("/artists/earnings/works")
@role_required("artist")
def earnings_works() -> ResponseReturnValue:
    artist = _artist()
    works = earnings.by_work(get_session(), artist.id, after=_after(WORKS_CURSOR), limit=100)
    return render_template(
        "payouts/earnings_works.html",
        works=works,
        works_next=_next(WORKS_CURSOR, works),
    )


# --- Connecting Stripe ----------------------------------------------------------------------


def _onboarding_link() -> str:
    """A fresh Stripe onboarding link for the artist (their account opened on first use)."""
    with transaction() as session:
        artist = session.merge(_artist())
        return services.start_onboarding(
            session,
            artist,
            email=current_user.email,
            refresh_url=url_for("payouts.onboarding_refresh", _external=True),
            return_url=url_for("payouts.onboarding_return", _external=True),
        )


@bp.route("/artists/payouts/onboard", methods=["POST"])
@role_required("artist")
def start_onboarding() -> ResponseReturnValue:
    try:
        link = _onboarding_link()
    except payments.PaymentsError as exc:
        log.warning("onboarding link for artist %s: %s", _artist().id, exc.code)
        flash(_stripe_message(exc), "error")
        return redirect(url_for("payouts.payouts_page"))
    return _to_stripe(link)


@bp.route("/artists/payouts/refresh")
@role_required("artist")
def onboarding_refresh() -> ResponseReturnValue:
    """Stripe sends the artist here when their onboarding link expired or was used: a new one."""
    if services.payout_account(get_session(), _artist().id) is None:
        return redirect(url_for("payouts.payouts_page"))
    try:
        link = _onboarding_link()
    except payments.PaymentsError as exc:
        log.warning("onboarding refresh for artist %s: %s", _artist().id, exc.code)
        flash(_stripe_message(exc), "error")
        return redirect(url_for("payouts.payouts_page"))
    return _to_stripe(link)


@bp.route("/artists/payouts/return")
@role_required("artist")
def onboarding_return() -> ResponseReturnValue:
    """Back from Stripe's onboarding: ask Stripe (not the address bar) where the account is."""
    account = services.payout_account(get_session(), _artist().id)
    if account is None:
        return redirect(url_for("payouts.payouts_page"))
    try:
        with transaction() as session:
            synced = services.sync_account(session, account.stripe_account_id)
            enabled = bool(synced and synced.payouts_enabled)
            due = list(synced.requirements_due) if synced else []
    except payments.PaymentsError as exc:
        log.warning("sync of account for artist %s: %s", _artist().id, exc.code)
        flash(_stripe_message(exc), "error")
        return redirect(url_for("payouts.payouts_page"))
    if enabled:
        flash("Payouts are enabled: your earnings are paid to your Stripe account.", "info")
    elif due:
        flash("Stripe still needs: " + ", ".join(_requirement(r) for r in due) + ".", "warning")
    else:
        flash("Stripe is reviewing your details; payouts start once it enables them.", "warning")
    return redirect(url_for("payouts.payouts_page"))


@bp.route("/artists/payouts/stripe-dashboard", methods=["POST"])
@role_required("artist")
def stripe_dashboard() -> ResponseReturnValue:
    try:
        link = services.login_link(get_session(), _artist().id)
    except services.PayoutsError as exc:
        flash(str(exc), "warning")
        return redirect(url_for("payouts.payouts_page"))
    except payments.PaymentsError as exc:
        log.warning("login link for artist %s: %s", _artist().id, exc.code)
        flash(_stripe_message(exc), "error")
        return redirect(url_for("payouts.payouts_page"))
    return _to_stripe(link)


def _stripe_message(exc: payments.PaymentsError) -> str:
    if isinstance(exc, payments.PaymentsUnavailable):
        return STRIPE_DOWN
    return f"Stripe refused: {exc.message}"


def _requirement(code: str) -> str:
    """Stripe's requirement codes ('individual.verification.document') in words."""
    return code.replace("_", " ").replace(".", " ")


# --- Statements -----------------------------------------------------------------------------


@bp.route("/artists/payouts/statements/<month>.<any(csv, pdf):fmt>")
@role_required("artist")
def statement_file(month: str, fmt: str) -> ResponseReturnValue:
    artist = _artist()
    try:
        first = statements.parse_month(month)
    except statements.InvalidMonth:
        abort(404)
    session = get_session()
    available = statements.currencies(session, artist.id)
    currency = request.args.get("currency", available[0]).lower()
    if currency not in available:
        abort(404)
    st = statements.statement(session, artist.id, artist.display_name, first, currency)
    name = f"statement-{st.label}-{currency}.{fmt}"
    if fmt == "csv":
        return Response(
            statements_csv_bytes(st),
            mimetype="text/csv",
            headers={
                "Content-Disposition": storage.attachment_header(name),
                "Cache-Control": NO_STORE,
            },
        )
    return Response(
        exports.statement_pdf(st),
        mimetype="application/pdf",
        headers={"Content-Disposition": storage.attachment_header(name), "Cache-Control": NO_STORE},
    )


def statements_csv_bytes(st: statements.Statement) -> bytes:
    """UTF-8 with a byte-order mark, so spreadsheets read names in any script."""
    return exports.statement_csv(st).encode("utf-8-sig")
