"""Items that cannot be delivered are not charged: their handling fee is refunded through
Stripe (the emulator), once, however often the package is rebuilt."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from marketplace.buyers import services as buyers
from marketplace.buyers.models import Order, OrderRefund, OrderStatus
from marketplace.db import transaction
from marketplace.delivery.models import Package, PackageStatus
from marketplace.payments import gateway
from tests.delivery.orders import checkout, mixed_items, museum_server, order_rows
from tests.factories import make_admin, make_buyer


@pytest.fixture
def app_config(stripe_config):
    return {
        **stripe_config,
        "HANDLING_FEE_MINOR": 30,
        "MIRROR_BACKOFF_SECONDS": 0.01,
        "MIRROR_RETRIES": 2,
    }


def test_the_fee_of_an_undelivered_item_is_refunded_exactly_once(
    client, db, login, tmp_path, run_jobs
):
    with museum_server() as (museum, base):
        mixed = mixed_items(db, tmp_path, [f"{base}/ok/1.png", f"{base}/ok/2.png"])
        buyer = make_buyer(db)
        order_id = checkout(db, buyer, [mixed.licensed, *mixed.stock], run_jobs)
        assert db.get(Order, order_id).total_minor == 400 + 30 + 30
        with db.info["app"].app_context(), transaction(db) as session:
            payment = buyers.payment_session(session, session.get(Order, order_id))
        with db.info["app"].app_context():
            gateway.confirm_payment_intent(
                payment.payment_intent_id, payment_method="pm_card_visa", idempotency_key="t-1"
            )
        museum.up = False  # the museum goes down before the package is built
        with db.info["app"].app_context(), transaction(db) as session:
            assert buyers.reconcile_payment(session, session.get(Order, order_id))
        run_jobs()
        run_jobs()

        db.rollback()
        db.expire_all()
        package = db.scalar(select(Package).where(Package.order_id == order_id))
        assert package.status is PackageStatus.READY, package.error
        assert package.items_missing == 2
        assert package.missing_refunded_minor == 60
        order = db.get(Order, order_id)
        assert (order.status, order.refunded_minor) == (OrderStatus.PARTIALLY_REFUNDED, 60)
        with db.info["app"].app_context():
            intent = gateway.retrieve_payment_intent(payment.payment_intent_id)
            assert gateway.retrieve_charge(intent.latest_charge).amount_refunded_minor == 60
        missing = [r for r in order_rows(db, order_id) if r.missing_reason]
        assert len(missing) == 2
        assert all("503" in r.missing_reason for r in missing)

        login(make_admin(db))
        client.post(f"/orders/{order_id}/package/rebuild")
        run_jobs()
        db.rollback()
        db.expire_all()
        assert db.get(Order, order_id).refunded_minor == 60
        refunds = db.scalar(
            select(func.count()).select_from(OrderRefund).where(OrderRefund.order_id == order_id)
        )
        assert refunds == 1
        with db.info["app"].app_context():
            assert gateway.retrieve_charge(intent.latest_charge).amount_refunded_minor == 60
