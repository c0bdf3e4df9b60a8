"""Buyer pages: the organization, bundles (build, check, quote, check out) and orders."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qs

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.wrappers import Response

from marketplace import amounts
from marketplace.accounts import services as accounts
from marketplace.accounts.models import Organization
from marketplace.artists.terms import format_money
from marketplace.buyers import eligibility
from marketplace.buyers import services as buyers
from marketplace.buyers.forms import BundleForm, CheckoutForm, RefundForm
from marketplace.buyers.models import Bundle, BundleStatus, Order, OrderStatus
from marketplace.catalog import services as catalog
from marketplace.db import get_session, parse_row_id, transaction
from marketplace.forms import ConfirmForm
from marketplace.governance import services as governance
from marketplace.payments import gateway as payments
from marketplace.security import role_required

log = logging.getLogger(__name__)
_POSITION = re.compile(r"[0-9]{1,9}")
bp = Blueprint("buyers", __name__)

_ID_SEPARATORS = re.compile(r"[\s,;]+")
PAGE = 50


def _organization() -> Organization:
    organization: Organization | None = current_user.organization
    if organization is None:
        abort(404)
    return organization


@bp.route("/buyers/organization")
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


@bp.route("/buyers/organization/join-code", methods=["POST"])
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


# --- Bundles -------------------------------------------------------------------------------


def _bundle(bundle_id: int) -> Bundle:
    try:
        return buyers.get_bundle(get_session(), current_user, bundle_id)
    except buyers.NotFound:
        abort(404)


def _parse_ids(text: str) -> list[int]:
    ids = []
    for part in _ID_SEPARATORS.split(text.strip()):
        if not part:
            continue
        work_id = parse_row_id(part)
        if work_id is None:
            raise buyers.InvalidBundle(f"{part[:20]!r} is not a work id (ids are whole numbers).")
        ids.append(work_id)
    return ids


def _request_from(form: BundleForm) -> buyers.BundleRequest:
    source = form.source.data
    common: dict[str, Any] = {
        "name": form.name.data or "",
        "intended_uses": list(form.intended_uses.data or []),
    }
    if source == "collection":
        if not form.collection_id.data:
            raise buyers.InvalidBundle("Choose a collection.")
        return buyers.BundleRequest(**common, collection_id=int(form.collection_id.data))
    if source == "query":
        text = (form.query.data or "").strip().lstrip("?")
        if not text:
            raise buyers.InvalidBundle("Give the search to bundle.")
        return buyers.BundleRequest(**common, query=parse_qs(text, keep_blank_values=False))
    return buyers.BundleRequest(**common, work_ids=_parse_ids(form.work_ids.data or ""))


@bp.route("/bundles")
@role_required("buyer")
def bundles() -> ResponseReturnValue:
    session = get_session()
    return render_template(
        "buyers/bundles.html",
        bundles=buyers.list_bundles(session, current_user),
        orders=buyers.list_orders(session, current_user)[:10],
    )


@bp.route("/bundles/new", methods=["GET", "POST"])
@role_required("buyer")
def new_bundle() -> ResponseReturnValue:
    session = get_session()
    form = BundleForm()
    collections = catalog.list_collections(session, current_user)
    form.collection_id.choices = [(c.id, f"{c.name} ({n} works)") for c, n in collections]
    if request.method == "GET":
        collection_id = parse_row_id(request.args.get("collection"))
        if collection_id is not None:
            form.source.data = "collection"
            form.collection_id.data = collection_id
        elif request.args.get("query"):
            form.source.data = "query"
            form.query.data = request.args["query"][:2000]
        form.intended_uses.data = form.intended_uses.data or ["generative_training"]
    if form.validate_on_submit():
        try:
            with transaction() as session:
                bundle = buyers.create_bundle(session, current_user, _request_from(form))
                bundle_id = bundle.id
        except buyers.BuyersError as exc:
            form.form_errors.append(str(exc))
        else:
            return redirect(url_for("buyers.bundle_page", bundle_id=bundle_id))
    status = 422 if request.method == "POST" else 200
    return render_template("buyers/bundle_new.html", form=form), status


@bp.route("/bundles/<id:bundle_id>")
@role_required("buyer", "admin")
def bundle_page(bundle_id: int) -> ResponseReturnValue:
    session = get_session()
    bundle = _bundle(bundle_id)
    quote = buyers.current_quote(session, bundle)
    previous = buyers.previous_quote(session, quote) if quote is not None else None
    changes = (
        buyers.quote_changes(session, previous, quote)
        if quote is not None and previous is not None
        else None
    )
    show = request.args.get("show", "included")
    after_id = parse_row_id(request.args.get("after")) or 0
    rows = buyers.bundle_items(
        session, bundle, excluded=show == "excluded", after=after_id, limit=PAGE + 1
    )
    return render_template(
        "buyers/bundle.html",
        bundle=bundle,
        building=bundle.status is BundleStatus.BUILDING,
        quote=quote,
        expired=quote is not None and buyers.is_expired(quote),
        changes=changes,
        excluded=buyers.excluded_counts(session, bundle),
        reasons=eligibility.REASON_TITLES,
        reason_text=eligibility.REASONS,
        use_labels=eligibility.INTENDED_USE_LABELS,
        show=show,
        rows=rows[:PAGE],
        next_after=rows[PAGE - 1][0].item_id if len(rows) > PAGE else None,
        checkout=CheckoutForm(quote_id=quote.public_id if quote else ""),
        confirm=ConfirmForm(),
    )


@bp.route("/bundles/<id:bundle_id>/check", methods=["POST"])
@role_required("buyer")
def check_bundle(bundle_id: int) -> Response:
    bundle = _bundle(bundle_id)
    if ConfirmForm().validate_on_submit():
        try:
            with transaction() as session:
                buyers.request_check(session, session.merge(bundle))
        except buyers.BundleNotReady as exc:
            flash(str(exc), "warning")
    return redirect(url_for("buyers.bundle_page", bundle_id=bundle_id))


@bp.route("/bundles/<id:bundle_id>/items/<id:item_id>/drop", methods=["POST"])
@role_required("buyer")
def drop_item(bundle_id: int, item_id: int) -> Response:
    bundle = _bundle(bundle_id)
    if ConfirmForm().validate_on_submit():
        try:
            with transaction() as session:
                buyers.drop_item(session, session.merge(bundle), item_id)
        except buyers.NotFound:
            abort(404)
        except buyers.BundleNotReady as exc:
            flash(str(exc), "warning")
        else:
            flash("Item removed; the bundle is being quoted again.", "info")
    return redirect(url_for("buyers.bundle_page", bundle_id=bundle_id))


@bp.route("/bundles/<id:bundle_id>/checkout", methods=["POST"])
@role_required("buyer")
def checkout(bundle_id: int) -> ResponseReturnValue:
    bundle = _bundle(bundle_id)
    form = CheckoutForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        with transaction() as session:
            result = buyers.checkout(
                session, current_user, session.merge(bundle), form.quote_id.data
            )
            order_id = result.order.id
            dropped = result.dropped
            payable = result.order.status is OrderStatus.AWAITING_PAYMENT
    except buyers.NotFound:
        abort(404)
    except buyers.BuyersError as exc:
        flash(str(exc), "error")
        return redirect(url_for("buyers.bundle_page", bundle_id=bundle_id))
    if dropped:
        flash(
            "Left out since the quote: "
            + ", ".join(f"{eligibility.REASON_TITLES[r].lower()}: {n}" for r, n in dropped.items())
            + ". The total was recomputed.",
            "warning",
        )
    if payable:
        return redirect(url_for("buyers.pay", order_id=order_id))
    return redirect(url_for("buyers.order_page", order_id=order_id))


# --- Orders --------------------------------------------------------------------------------


def _order(order_id: int) -> Order:
    try:
        return buyers.get_order(get_session(), current_user, order_id)
    except buyers.NotFound:
        abort(404)


@bp.route("/orders")
@role_required("buyer", "admin")
def orders() -> ResponseReturnValue:
    return render_template(
        "buyers/orders.html", orders=buyers.list_orders(get_session(), current_user)
    )


@bp.route("/orders/<id:order_id>/pay")
@role_required("buyer")
def pay(order_id: int) -> ResponseReturnValue:
    """The checkout page: Stripe's Payment Element for the order's PaymentIntent."""
    order = _order(order_id)
    if order.status not in (OrderStatus.AWAITING_PAYMENT, OrderStatus.PAYMENT_FAILED):
        return redirect(url_for("buyers.order_page", order_id=order_id))
    try:
        with transaction() as session:
            payment = buyers.payment_session(session, session.merge(order))
    except buyers.ConsentLost as exc:
        buyers.cancel_unpayable(order_id)
        flash(str(exc), "error")
        return redirect(url_for("buyers.order_page", order_id=order_id))
    except buyers.OrderStateError:
        return redirect(url_for("buyers.order_page", order_id=order_id))
    except payments.PaymentsError:
        log.exception("payment session for order %s", order_id)
        flash("The payment service cannot be reached right now; try again in a minute.", "error")
        return redirect(url_for("buyers.order_page", order_id=order_id))
    return render_template(
        "buyers/pay.html",
        order=_order(order_id),
        payment=payment,
        return_url=url_for("buyers.order_page", order_id=order_id, _external=True),
    )


@bp.route("/orders/<id:order_id>")
@role_required("buyer", "admin")
def order_page(order_id: int) -> ResponseReturnValue:
    session = get_session()
    order = _order(order_id)
    if request.args.get("payment_intent") and order.payment_intent_id:
        # Back from Stripe.js: ask Stripe (not the address bar) whether it is paid.
        try:
            with transaction() as session:
                buyers.reconcile_payment(session, session.merge(order))
        except payments.PaymentsError:
            log.warning("could not reconcile order %s after payment", order_id)
        order = _order(order_id)
    after = request.args.get("after", "")
    after_position = int(after) if _POSITION.fullmatch(after) else -1  # ASCII digits only
    rows = buyers.order_items(session, order, after=after_position, limit=PAGE + 1)
    return render_template(
        "buyers/order.html",
        order=order,
        counts=buyers.order_counts(session, order),
        attribution=buyers.attribution_count(session, order),
        reasons=eligibility.REASON_TITLES,
        rows=rows[:PAGE],
        next_after=rows[PAGE - 1][0].position if len(rows) > PAGE else None,
        refund=RefundForm() if current_user.has_role("admin") else None,
        recalls=governance.recalls_for_order(session, order.id),
    )


@bp.route("/orders/<id:order_id>/refund", methods=["POST"])
@role_required("admin")
def refund(order_id: int) -> Response:
    """Admins refund an order through Stripe, whole or in part."""
    order = _order(order_id)
    form = RefundForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for("buyers.order_page", order_id=order_id))
    try:
        with transaction() as session:
            buyers.refund_order(
                session,
                session.merge(order),
                amount_minor=form.amount_minor(
                    order.currency, amounts.locale_for(request.accept_languages.values())
                ),
                reason=form.reason.data or "",
            )
    except buyers.OrderStateError as exc:
        flash(str(exc), "error")
    except payments.PaymentsError as exc:
        flash(f"Stripe refused the refund: {exc}", "error")
    else:
        flash("Refunded.", "info")
    return redirect(url_for("buyers.order_page", order_id=order_id))


@bp.app_template_filter("money")
def money_filter(amount_minor: int, currency: str = "usd") -> str:
    return format_money(int(amount_minor), currency)
