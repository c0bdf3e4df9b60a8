"""A refund after the money went out: reversed where Stripe can, else owed and netted."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from marketplace.ledger import money
from marketplace.payments import gateway
from marketplace.payouts.models import PayoutReversal, ReversalStatus
from tests.factories import make_artist, make_buyer
from tests.payouts.support import (
    artist_id,
    balances,
    ledger_ok,
    onboard,
    refund,
    run,
    sell,
    transfers_to,
)


@pytest.fixture
def app_config(stripe_config):
    return {**stripe_config, "PAYOUT_HOLD_DAYS": 0, "PAYOUT_MINIMUM_MINOR": 1000}


def test_a_refund_after_payout_reverses_the_artists_transfer(db, run_jobs, stripe_emulator):
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    order_id = sell(db, buyer, ada, 2500, run_jobs)
    ada_id = artist_id(db, ada)
    assert run(db).paid == 1
    refund(db, order_id, 1250)  # half the order: half of Ada's 20.00 comes back
    run_jobs()
    db.rollback()
    reversal = db.scalar(select(PayoutReversal))
    assert (reversal.status, reversal.amount_minor) == (ReversalStatus.REVERSED, 1000)
    [transfer] = transfers_to(db, account)
    assert transfer.amount_reversed_minor == 1000
    with db.info["app"].app_context():
        [at_stripe] = gateway.list_transfer_reversals(transfer.id)
    assert at_stripe.id == reversal.stripe_reversal_id
    state = balances(db, ada_id)
    assert (state.available_minor, state.paid_minor, state.reversed_minor) == (0, 1000, 1000)
    assert money.balance(db, money.artist_payable(ada_id, "usd")) == 0
    assert ledger_ok(db)


def test_when_stripe_cannot_reverse_the_share_is_taken_from_the_next_payout(
    db, run_jobs, stripe_emulator
):
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    first = sell(db, buyer, ada, 2500, run_jobs)  # 20.00
    ada_id = artist_id(db, ada)
    assert run(db).paid == 1
    stripe_emulator.set_balance(account, 0)  # the artist already withdrew it
    refund(db, first)
    run_jobs()
    db.rollback()
    reversal = db.scalar(select(PayoutReversal))
    assert reversal.status is ReversalStatus.FAILED
    assert reversal.failure_message
    assert balances(db, ada_id).available_minor == -2000  # owed back, shown to the artist

    sell(db, buyer, ada, 2500, run_jobs)  # another 20.00: nets to zero
    assert run(db).paid == 0
    sell(db, buyer, ada, 1875, run_jobs)  # + 15.00: pays 15.00
    assert run(db).paid == 1
    amounts = [t.amount_minor for t in transfers_to(db, account)]
    assert sorted(amounts) == [1500, 2000]
    state = balances(db, ada_id)
    assert (state.available_minor, state.paid_minor) == (0, 3500)
    assert ledger_ok(db)
