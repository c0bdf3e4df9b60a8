"""Paying with Stripe (the emulator over HTTP, the real `stripe` library), webhooks, refunds."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from marketplace.buyers import services as buyers
from marketplace.buyers.models import Bundle, Order, OrderStatus
from marketplace.db import transaction
from marketplace.ledger import money
from marketplace.payments import gateway
from marketplace.payments.signing import stripe_signature
from marketplace.webhooks.models import StripeEvent
from tests.browser.conftest import run_queued_jobs
from tests.buyers.support import bundle, licence, work_item
from tests.factories import make_artist, make_buyer


@pytest.fixture
def app_config(stripe_config):
    return stripe_config


@pytest.fixture
def order_awaiting_payment(db, run_jobs):
    artist, buyer = make_artist(db), make_buyer(db)
    bundle_id = bundle(db, buyer, [work_item(db, artist, licence(1250))])
    run_jobs()
    with db.info["app"].app_context(), transaction(db) as session:
        b = session.get(Bundle, bundle_id)
        order = buyers.checkout(
            session, session.merge(buyer), b, buyers.current_quote(session, b).public_id
        ).order
        order_id = order.id
    with db.info["app"].app_context(), transaction(db) as session:
        payment = buyers.payment_session(session, session.get(Order, order_id))
    db.rollback()
    db.expire_all()
    return db.get(Order, order_id), payment


def pay(db, payment, method="pm_card_visa"):
    with db.info["app"].app_context():
        return gateway.confirm_payment_intent(
            payment.payment_intent_id,
            payment_method=method,
            idempotency_key=f"t-{payment.payment_intent_id}-{method}",
        )


def post_event(client, secret, event_type, obj, event_id="evt_test_1", signature=None):
    payload = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": obj},
        }
    ).encode()
    header = signature or stripe_signature(payload, secret, int(time.time()))
    return client.post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def test_the_payment_intent_carries_the_order_amount_and_transfer_group(db, order_awaiting_payment):
    order, payment = order_awaiting_payment
    with db.info["app"].app_context():
        intent = gateway.retrieve_payment_intent(payment.payment_intent_id)
    assert (intent.amount_minor, intent.currency) == (1250, "usd")
    assert intent.transfer_group == f"order_{order.id}"
    assert intent.metadata["order_id"] == str(order.id)
    # Asking again gives the same PaymentIntent, not a second charge.
    with db.info["app"].app_context(), transaction(db) as session:
        again = buyers.payment_session(session, session.get(Order, order.id))
    assert again.payment_intent_id == payment.payment_intent_id


def test_a_signed_webhook_from_the_emulator_pays_and_fulfils_the_order(
    db, order_awaiting_payment, live_server, stripe_webhooks, stripe_emulator, run_jobs
):
    app, base_url = live_server
    register = stripe_webhooks
    register(f"{base_url}/webhooks/stripe", app.config["STRIPE_WEBHOOK_SECRET"])
    order, payment = order_awaiting_payment
    assert pay(db, payment).status == "succeeded"
    deliveries = stripe_emulator.flush_webhooks()
    assert any(d.get("status") == 200 for d in deliveries), deliveries
    run_queued_jobs(app)  # the live server's queue (with Redis), where the webhook queued them
    db.rollback()
    db.expire_all()
    order = db.get(Order, order.id)
    assert order.status is OrderStatus.FULFILLED
    assert money.balance(db, money.processor_clearing("usd")) == 1250
    assert money.balance(db, money.platform_revenue("usd")) == 250


def test_replayed_duplicated_and_late_events_change_nothing(
    client, db, app, order_awaiting_payment, run_jobs
):
    order, payment = order_awaiting_payment
    pay(db, payment)
    secret = app.config["STRIPE_WEBHOOK_SECRET"]
    intent = {"id": payment.payment_intent_id, "object": "payment_intent"}
    first = post_event(client, secret, "payment_intent.succeeded", intent, "evt_a")
    assert first.get_json()["outcome"].endswith("paid")
    assert (
        post_event(client, secret, "payment_intent.succeeded", intent, "evt_a").get_json()[
            "outcome"
        ]
        == "duplicate"
    )
    # Another delivery of the same fact under a new id, and a stale failure, arrive later.
    post_event(client, secret, "payment_intent.succeeded", intent, "evt_b")
    late = post_event(client, secret, "payment_intent.payment_failed", intent, "evt_c")
    assert late.status_code == 200
    run_jobs()
    db.rollback()
    db.expire_all()
    assert db.get(Order, order.id).status is OrderStatus.FULFILLED
    assert money.balance(db, money.processor_clearing("usd")) == 1250  # charged once


def test_a_forged_webhook_is_refused_and_changes_nothing(client, db, app, order_awaiting_payment):
    order, payment = order_awaiting_payment
    pay(db, payment)
    intent = {"id": payment.payment_intent_id, "object": "payment_intent"}
    forged = post_event(client, "whsec_not_ours", "payment_intent.succeeded", intent, "evt_f")
    assert forged.status_code == 400
    unsigned = post_event(
        client, "", "payment_intent.succeeded", intent, "evt_g", signature="t=1,v1=00"
    )
    assert unsigned.status_code == 400
    db.rollback()
    db.expire_all()
    assert db.get(Order, order.id).status is OrderStatus.AWAITING_PAYMENT
    assert db.scalar(select(func.count()).select_from(StripeEvent)) == 0


def test_a_webhook_for_an_unknown_payment_is_acknowledged_and_ignored(client, db, app):
    secret = app.config["STRIPE_WEBHOOK_SECRET"]
    response = post_event(client, secret, "payment_intent.succeeded", {"id": "pi_unknown"}, "evt_u")
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "unknown payment"
    assert db.scalar(select(func.count()).select_from(Order)) == 0


def test_a_declined_card_leaves_the_order_payable(client, db, app, order_awaiting_payment):
    order, payment = order_awaiting_payment
    with pytest.raises(gateway.PaymentDeclined):
        pay(db, payment, "pm_card_chargeDeclined")
    secret = app.config["STRIPE_WEBHOOK_SECRET"]
    post_event(
        client, secret, "payment_intent.payment_failed", {"id": payment.payment_intent_id}, "e1"
    )
    db.rollback()
    db.expire_all()
    assert db.get(Order, order.id).status is OrderStatus.PAYMENT_FAILED
    assert pay(db, payment).status == "succeeded"
    post_event(client, secret, "payment_intent.succeeded", {"id": payment.payment_intent_id}, "e2")
    db.rollback()
    db.expire_all()
    assert db.get(Order, order.id).status in (OrderStatus.PAID, OrderStatus.FULFILLED)


def test_admin_refund_goes_through_stripe_once_whatever_the_webhook_says(
    client, db, app, order_awaiting_payment, run_jobs
):
    order, payment = order_awaiting_payment
    pay(db, payment)
    with db.info["app"].app_context(), transaction(db) as session:
        assert buyers.reconcile_payment(session, session.get(Order, order.id))
    run_jobs()
    with db.info["app"].app_context(), transaction(db) as session:
        buyers.refund_order(session, session.get(Order, order.id), amount_minor=250, reason="x")
    secret = app.config["STRIPE_WEBHOOK_SECRET"]
    with db.info["app"].app_context():
        charge = gateway.retrieve_payment_intent(payment.payment_intent_id).latest_charge
    post_event(
        client,
        secret,
        "charge.refunded",
        {"id": charge, "object": "charge", "payment_intent": payment.payment_intent_id},
        "evt_r1",
    )
    db.rollback()
    db.expire_all()
    order = db.get(Order, order.id)
    assert (order.status, order.refunded_minor) == (OrderStatus.PARTIALLY_REFUNDED, 250)
    with db.info["app"].app_context(), transaction(db) as session:
        buyers.refund_order(session, session.get(Order, order.id), amount_minor=None, reason="")
    db.rollback()
    db.expire_all()
    order = db.get(Order, order.id)
    assert (order.status, order.refunded_minor) == (OrderStatus.REFUNDED, 1250)
    assert money.balance(db, money.processor_clearing("usd")) == 0


def test_the_return_from_stripe_and_the_webhook_record_one_payment_between_them(
    client, db, app, order_awaiting_payment, run_jobs
):
    from marketplace.ledger.models import LedgerEntry

    order, payment = order_awaiting_payment
    stale = db.get(Order, order.id)  # read before the webhook, as a page request would
    assert stale.status is OrderStatus.AWAITING_PAYMENT
    pay(db, payment)
    secret = app.config["STRIPE_WEBHOOK_SECRET"]
    post_event(client, secret, "payment_intent.succeeded", {"id": payment.payment_intent_id})
    with db.info["app"].app_context(), transaction(db):
        buyers.reconcile_payment(db, stale)
    run_jobs()
    db.rollback()
    db.expire_all()
    paid_entries = db.scalar(
        select(func.count()).where(
            LedgerEntry.kind == "order.paid", LedgerEntry.order_id == order.id
        )
    )
    assert paid_entries == 1
    assert money.balance(db, money.processor_clearing("usd")) == 1250


def test_two_different_refunds_of_the_same_amount_are_two_refunds(
    client, db, app, order_awaiting_payment, run_jobs
):
    """An administrator's refund and the package build's refund of undelivered items, both of
    the same amount and started from the same refunded total, must not collapse into one at
    Stripe (their idempotency keys name their purpose)."""
    from marketplace.db import get_database

    order, payment = order_awaiting_payment
    pay(db, payment)
    intent = {"id": payment.payment_intent_id, "object": "payment_intent"}
    post_event(client, app.config["STRIPE_WEBHOOK_SECRET"], "payment_intent.succeeded", intent)
    run_jobs()
    with app.app_context():
        build = get_database().sessions()  # the package build's session, as a worker has it
        stale = build.get(Order, order.id)
        build.commit()  # its copy still says nothing was refunded
        with transaction() as session:
            buyers.refund_order(
                session, session.get(Order, order.id), amount_minor=100, reason="goodwill"
            )
        buyers.refund_order(
            build, stale, amount_minor=100, reason="undelivered", purpose="missing-items"
        )
        build.commit()
        build.close()
    db.rollback()
    db.expire_all()
    assert db.get(Order, order.id).refunded_minor == 200
    with app.app_context():
        charge = gateway.retrieve_payment_intent(payment.payment_intent_id).latest_charge
        assert gateway.retrieve_charge(charge).amount_refunded_minor == 200
