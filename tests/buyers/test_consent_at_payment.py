"""Consent ends between checkout and payment: the order is not paid as it stands.

The buyer's payment page may have been opened before the artist withdrew; whatever the order
of events, a withdrawn work is never sold: the order is cancelled before the charge (and its
PaymentIntent with it), or, if the charge landed anyway, refunded in full and never fulfilled.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from marketplace.artists import services as artists
from marketplace.buyers import services as buyers
from marketplace.buyers.models import Bundle, Order, OrderItem, OrderStatus
from marketplace.db import transaction
from marketplace.ledger import money
from marketplace.ledger.kinds import EntryKind
from marketplace.ledger.models import LedgerEntry
from marketplace.payments import gateway
from tests.buyers.support import bundle, licence, work_item, work_of
from tests.buyers.test_stripe import pay, post_event
from tests.factories import make_api_token, make_artist, make_buyer


@pytest.fixture
def app_config(stripe_config):
    return stripe_config


@pytest.fixture
def priced_order(db, run_jobs):
    artist, buyer = make_artist(db), make_buyer(db)
    item = work_item(db, artist, licence(1250))
    bundle_id = bundle(db, buyer, [item])
    run_jobs()
    with db.info["app"].app_context(), transaction(db) as session:
        b = session.get(Bundle, bundle_id)
        order_id = buyers.checkout(
            session, session.merge(buyer), b, buyers.current_quote(session, b).public_id
        ).order.id
    return artist, buyer, item, bundle_id, order_id


def withdraw(db, artist, item):
    with db.info["app"].app_context(), transaction(db) as session:
        artists.withdraw_consent(session, session.merge(work_of(db, item)), artist)


def reload(db, order_id):
    db.rollback()
    db.expire_all()
    return db.get(Order, order_id)


def sold_entries(db):
    return db.scalar(
        select(func.count()).where(LedgerEntry.kind == EntryKind.DATASET_ITEM_SOLD.value)
    )


def test_the_payment_page_cancels_an_order_whose_work_was_withdrawn(
    client, db, login, priced_order
):
    artist, buyer, item, _bundle_id, order_id = priced_order
    withdraw(db, artist, item)
    login(buyer)

    response = client.get(f"/orders/{order_id}/pay", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "lost their artist" in page
    assert 'data-testid="order-status">cancelled' in page
    assert 'data-testid="pay-link"' not in page
    assert reload(db, order_id).status is OrderStatus.CANCELLED


def test_the_api_says_409_and_cancels_the_intent_opened_before_the_withdrawal(
    client, db, priced_order
):
    artist, buyer, item, _bundle_id, order_id = priced_order
    headers = {"Authorization": f"Bearer {make_api_token(db, buyer)}"}
    opened = client.post(f"/api/v1/orders/{order_id}/payment", headers=headers)
    assert opened.status_code == 200
    intent_id = opened.get_json()["payment_intent_id"]
    withdraw(db, artist, item)

    refused = client.post(f"/api/v1/orders/{order_id}/payment", headers=headers)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "consent_lost"
    assert reload(db, order_id).status is OrderStatus.CANCELLED
    with db.info["app"].app_context():
        assert gateway.retrieve_payment_intent(intent_id).status == "canceled"


def test_a_charge_that_lands_after_the_withdrawal_is_refunded_and_nothing_is_sold(
    client, db, app, priced_order, run_jobs
):
    artist, _buyer, item, _bundle_id, order_id = priced_order
    with db.info["app"].app_context(), transaction(db) as session:
        payment = buyers.payment_session(session, session.get(Order, order_id))
    withdraw(db, artist, item)  # the buyer's payment page is still open
    assert pay(db, payment).status == "succeeded"
    intent = {"id": payment.payment_intent_id, "object": "payment_intent"}
    post_event(client, app.config["STRIPE_WEBHOOK_SECRET"], "payment_intent.succeeded", intent)
    run_jobs()

    order = reload(db, order_id)
    assert order.status is OrderStatus.REFUNDED
    assert order.refunded_minor == order.total_minor == 1250
    assert order.fulfilled_at is None
    assert sold_entries(db) == 0
    assert money.balance(db, money.processor_clearing("usd")) == 0
    assert money.balance(db, money.artist_payable(artist.artist.id, "usd")) == 0


def test_a_newer_checkout_of_the_bundle_cancels_the_unpaid_older_order(db, priced_order, run_jobs):
    _artist, buyer, _item, bundle_id, order_id = priced_order
    with db.info["app"].app_context(), transaction(db) as session:
        first = buyers.payment_session(session, session.get(Order, order_id))
    with db.info["app"].app_context(), transaction(db) as session:
        b = session.get(Bundle, bundle_id)
        buyers.request_check(session, b)
    run_jobs()
    with db.info["app"].app_context(), transaction(db) as session:
        b = session.get(Bundle, bundle_id)
        quote = buyers.current_quote(session, b)
        second = buyers.checkout(session, session.merge(buyer), b, quote.public_id).order.id
    assert second != order_id
    assert reload(db, order_id).status is OrderStatus.CANCELLED
    with db.info["app"].app_context():
        assert gateway.retrieve_payment_intent(first.payment_intent_id).status == "canceled"
    assert db.scalar(select(func.count()).select_from(OrderItem)) == 2
