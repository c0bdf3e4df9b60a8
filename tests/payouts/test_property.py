"""Property: whatever happens (sales, refunds, drained connected accounts, runs at any time),
for every artist pending + available + in transit + paid = shares - refunded shares, and the
ledger and Stripe agree with those figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from marketplace.buyers import services as buyers
from marketplace.buyers.models import Order, OrderItem, OrderRefund, OrderStatus
from marketplace.db import transaction, utcnow
from marketplace.ledger import money
from marketplace.payouts import services as payouts
from tests.factories import make_artist, make_buyer
from tests.payouts.support import artist_id, ledger_ok, onboard, run, sell, transfers_to

pytestmark = pytest.mark.slow


@pytest.fixture
def app_config(stripe_config):
    return {**stripe_config, "PAYOUT_HOLD_DAYS": 1, "PAYOUT_MINIMUM_MINOR": 400}


steps = st.lists(
    st.one_of(
        st.tuples(st.just("sell"), st.integers(0, 1), st.sampled_from([625, 1250, 2500])),
        st.tuples(st.just("refund"), st.integers(0, 7), st.sampled_from([1, 2])),  # 1/n left
        st.tuples(st.just("run"), st.sampled_from([2, 2, 0])),  # days from now
        st.tuples(st.just("drain"), st.integers(0, 1)),
    ),
    min_size=4,
    max_size=9,
)


def expected_owed(db, artist):
    shares = db.scalar(
        select(func.coalesce(func.sum(OrderItem.artist_share_minor), 0))
        .join(Order, Order.id == OrderItem.order_id)
        .where(OrderItem.artist_id == artist, Order.paid_at.is_not(None))
    )
    refunded = sum(
        int(r.artists.get(str(artist), 0)) for r in db.scalars(select(OrderRefund)).all()
    )
    return int(shares) - refunded


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=steps)
def test_money_is_conserved_for_every_artist(db, run_jobs, stripe_emulator, plan):
    buyer = make_buyer(db)
    users = [make_artist(db), make_artist(db)]
    accounts = [onboard(db, user, stripe_emulator) for user in users]
    artists = [artist_id(db, user) for user in users]
    orders: list[int] = []
    for step in plan:
        if step[0] == "sell":
            orders.append(sell(db, buyer, users[step[1]], step[2], run_jobs))
        elif step[0] == "refund" and orders:
            order = db.get(Order, orders[step[1] % len(orders)])
            left = order.total_minor - order.refunded_minor
            if order.status is not OrderStatus.REFUNDED and left > 0:
                with db.info["app"].app_context(), transaction(db) as session:
                    buyers.refund_order(
                        session,
                        session.get(Order, order.id),
                        amount_minor=max(1, left // step[2]),
                        reason="property",
                    )
                run_jobs()
                db.rollback()
                db.expire_all()
        elif step[0] == "run":
            run(db, now=utcnow() + timedelta(days=step[1]))
            run_jobs()
        elif step[0] == "drain":
            stripe_emulator.set_balance(accounts[step[1]], 0)
        db.rollback()
        db.expire_all()
        for artist, account in zip(artists, accounts, strict=True):
            with db.info["app"].app_context():
                [state] = payouts.balances(db, artist) or [payouts.Balances("usd")]
            total = (
                state.pending_minor
                + state.available_minor
                + state.in_transit_minor
                + state.paid_minor
            )
            assert total == expected_owed(db, artist), (step, state)
            assert money.balance(db, money.artist_payable(artist, "usd")) == (
                state.pending_minor + state.available_minor
            )
            made = transfers_to(db, account)
            at_stripe = sum(t.amount_minor - t.amount_reversed_minor for t in made)
            assert at_stripe == state.paid_minor, (step, state, made)
    assert money.balance(db, money.payouts_in_transit("usd")) == 0
    assert ledger_ok(db)
