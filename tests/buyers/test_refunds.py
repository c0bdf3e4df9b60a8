"""Paid orders: the money transaction, and refunds that reverse it and revoke the licence."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from marketplace.buyers import services as buyers
from marketplace.buyers.models import Bundle, Order, OrderStatus
from marketplace.db import transaction
from marketplace.ledger import money
from marketplace.ledger.models import LedgerEntry
from tests.buyers.support import bundle, licence, work_item
from tests.factories import make_artist, make_buyer


@pytest.fixture
def paid_order(db, run_jobs):
    ada, ben = make_artist(db), make_artist(db)
    buyer = make_buyer(db)
    items = [work_item(db, ada, licence(333)), work_item(db, ben, licence(501))]
    bundle_id = bundle(db, buyer, items)
    run_jobs()
    with db.info["app"].app_context(), transaction(db) as session:
        user = session.merge(buyer)
        b = session.get(Bundle, bundle_id)
        order = buyers.checkout(session, user, b, buyers.current_quote(session, b).public_id).order
        assert buyers.record_payment(
            session, order, payment_intent_id="pi_1", amount_minor=834, currency="usd"
        )
        order_id = order.id
    run_jobs()
    db.expire_all()
    return db.get(Order, order_id), ada, ben


def artist_id(db, user):
    from marketplace.artists.models import Artist

    return db.scalar(select(Artist.id).where(Artist.user_id == user.id))


def test_payment_credits_each_artist_their_share_and_the_platform_the_rest(db, paid_order):
    order, ada, ben = paid_order
    assert order.status is OrderStatus.FULFILLED
    assert money.balance(db, money.processor_clearing("usd")) == 834
    assert money.balance(db, money.artist_payable(artist_id(db, ada), "usd")) == 266  # 333*0.8
    assert money.balance(db, money.artist_payable(artist_id(db, ben), "usd")) == 400  # 400.8
    assert money.balance(db, money.platform_revenue("usd")) == 834 - 266 - 400


def test_a_payment_of_another_amount_is_not_recorded(db, run_jobs):
    artist, buyer = make_artist(db), make_buyer(db)
    bundle_id = bundle(db, buyer, [work_item(db, artist, licence(300))])
    run_jobs()
    with db.info["app"].app_context(), transaction(db) as session:
        b = session.get(Bundle, bundle_id)
        order = buyers.checkout(
            session, session.merge(buyer), b, buyers.current_quote(session, b).public_id
        ).order
        assert not buyers.record_payment(
            session, order, payment_intent_id="pi_x", amount_minor=299, currency="usd"
        )
        assert order.status is OrderStatus.AWAITING_PAYMENT
    assert money.balance(db, money.processor_clearing("usd")) == 0


def refund(db, order, refund_id, amount):
    with db.info["app"].app_context(), transaction(db) as session:
        buyers.record_refund(
            session, session.get(Order, order.id), refund_id=refund_id, amount_minor=amount
        )
    db.expire_all()


def test_partial_then_full_refund_reverses_every_cent_and_revokes_the_licence(db, paid_order):
    order, ada, ben = paid_order
    refund(db, order, "re_1", 100)
    assert db.get(Order, order.id).status is OrderStatus.PARTIALLY_REFUNDED
    refund(db, order, "re_1", 100)  # the same refund reported again changes nothing
    assert db.get(Order, order.id).refunded_minor == 100
    refund(db, order, "re_2", 734)
    order = db.get(Order, order.id)
    assert order.status is OrderStatus.REFUNDED
    assert money.balance(db, money.processor_clearing("usd")) == 0
    assert money.balance(db, money.artist_payable(artist_id(db, ada), "usd")) == 0
    assert money.balance(db, money.artist_payable(artist_id(db, ben), "usd")) == 0
    assert money.balance(db, money.refunds("usd")) == money.balance(
        db, money.platform_revenue("usd")
    )
    entries = db.scalars(
        select(LedgerEntry).where(
            LedgerEntry.order_id == order.id, LedgerEntry.kind == "order.refunded"
        )
    ).all()
    assert len(entries) == 2


def test_refunds_beyond_the_total_are_refused(db, paid_order):
    order, _, _ = paid_order
    with (
        db.info["app"].app_context(),
        transaction(db) as session,
        pytest.raises(buyers.OrderStateError),
    ):
        buyers.record_refund(
            session, session.get(Order, order.id), refund_id="re_9", amount_minor=835
        )
    assert db.get(Order, order.id).refunded_minor == 0
