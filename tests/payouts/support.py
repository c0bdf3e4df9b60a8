"""Artists with connected accounts and orders paid through the emulator, for payout tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.artists.models import Artist
from marketplace.buyers import services as buyers
from marketplace.buyers.models import Bundle, Order
from marketplace.db import transaction
from marketplace.payments import gateway
from marketplace.payouts import services as payouts
from tests.buyers.support import bundle, licence, work_item

RETURN_URL = "http://localhost/artist/payouts/return"
REFRESH_URL = "http://localhost/artist/payouts/refresh"


def artist_id(db: Session, user: Any) -> int:
    return int(db.scalar(select(Artist.id).where(Artist.user_id == user.id)))


def onboard(db: Session, user: Any, emulator: Any, *, finish: bool = True) -> str:
    """Open the artist's Express account and (with `finish`) complete Stripe's onboarding."""
    with db.info["app"].app_context(), transaction(db) as session:
        owner = session.merge(user)
        url = payouts.start_onboarding(
            session, owner.artist, email=owner.email, refresh_url=REFRESH_URL, return_url=RETURN_URL
        )
        account_id = payouts.payout_account(session, owner.artist.id).stripe_account_id
    if finish:
        assert emulator.visit_onboarding_link(url) == RETURN_URL
        with db.info["app"].app_context(), transaction(db) as session:
            payouts.sync_account(session, account_id)
    db.rollback()
    return account_id


def paid_order(db: Session, buyer: Any, item_ids: list[int], run_jobs: Any) -> int:
    """Check out a bundle of `item_ids` and pay it with a test card through the emulator."""
    bundle_id = bundle(db, buyer, item_ids)
    run_jobs()
    with db.info["app"].app_context(), transaction(db) as session:
        b = session.get(Bundle, bundle_id)
        order = buyers.checkout(
            session, session.merge(buyer), b, buyers.current_quote(session, b).public_id
        ).order
        order_id = order.id
    with db.info["app"].app_context(), transaction(db) as session:
        payment = buyers.payment_session(session, session.get(Order, order_id))
    with db.info["app"].app_context():
        gateway.confirm_payment_intent(
            payment.payment_intent_id,
            payment_method="pm_card_visa",
            idempotency_key=f"test-confirm-{payment.payment_intent_id}",
        )
    with db.info["app"].app_context(), transaction(db) as session:
        assert buyers.reconcile_payment(session, session.get(Order, order_id))
    run_jobs()
    db.rollback()
    db.expire_all()
    return order_id


def sell(db: Session, buyer: Any, artist_user: Any, price_minor: int, run_jobs: Any) -> int:
    """One new work by `artist_user` at `price_minor`, bought and paid; the order id."""
    return paid_order(db, buyer, [work_item(db, artist_user, licence(price_minor))], run_jobs)


def refund(db: Session, order_id: int, amount_minor: int | None = None) -> None:
    """Refund the order (all of it unless `amount_minor`), as the buyer's admin would."""
    with db.info["app"].app_context(), transaction(db) as session:
        buyers.refund_order(
            session, session.get(Order, order_id), amount_minor=amount_minor, reason="test"
        )
    db.rollback()
    db.expire_all()


def run(db: Session, **kwargs: Any) -> payouts.RunOutcome:
    with db.info["app"].app_context():
        outcome = payouts.run_payouts(**kwargs)
    db.rollback()
    db.expire_all()
    return outcome


def balances(db: Session, artist: int) -> payouts.Balances:
    with db.info["app"].app_context():
        found = payouts.balances(db, artist)
    db.rollback()
    return found[0] if found else payouts.Balances(currency="usd")


def transfers_to(db: Session, account_id: str) -> list[gateway.TransferInfo]:
    with db.info["app"].app_context():
        return list(gateway.list_transfers(destination=account_id))


def ledger_ok(db: Session) -> bool:
    """`marketplace ledger verify`: every hash, signature and balance recomputed."""
    from marketplace.ledger.audit import verify_all

    with db.info["app"].app_context():
        report = verify_all(db)
    db.rollback()
    assert report.ok, report.summary()
    return True
