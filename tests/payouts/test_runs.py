"""Payout runs against the Stripe emulator (real `stripe` library over HTTP): who gets paid,
when, how much, and that nobody is paid twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketplace.db import utcnow
from marketplace.ledger import money
from marketplace.payouts.models import (
    Payout,
    PayoutRun,
    PayoutStatus,
    PayoutTransfer,
    TransferStatus,
)
from tests.factories import make_artist, make_buyer
from tests.payouts.support import (
    artist_id,
    balances,
    ledger_ok,
    onboard,
    run,
    sell,
    transfers_to,
)


@pytest.fixture
def app_config(stripe_config):
    return {**stripe_config, "PAYOUT_HOLD_DAYS": 0, "PAYOUT_MINIMUM_MINOR": 1000}


def test_a_run_pays_an_onboarded_artist_their_share_once(db, run_jobs, stripe_emulator):
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    order_id = sell(db, buyer, ada, 1250, run_jobs)  # 80 % of 12.50 = 10.00 to Ada
    ada_id = artist_id(db, ada)
    assert balances(db, ada_id).available_minor == 1000

    outcome = run(db)
    assert (outcome.paid, outcome.failed, outcome.paid_minor) == (1, 0, 1000)

    [transfer] = transfers_to(db, account)
    assert transfer.amount_minor == 1000
    assert transfer.transfer_group == f"order_{order_id}"
    assert transfer.source_transaction  # the order's charge
    assert transfer.metadata["order"] == str(order_id)
    row = db.scalar(select(PayoutTransfer))
    assert (row.status, row.stripe_transfer_id) == (TransferStatus.SENT, transfer.id)
    assert db.scalar(select(Payout)).status is PayoutStatus.PAID
    state = balances(db, ada_id)
    assert (state.available_minor, state.in_transit_minor, state.paid_minor) == (0, 0, 1000)
    assert money.balance(db, money.artist_payable(ada_id, "usd")) == 0
    assert money.balance(db, money.payouts_in_transit("usd")) == 0

    again = run(db)
    assert again.paid == 0
    assert len(transfers_to(db, account)) == 1
    assert ledger_ok(db)


def test_earnings_wait_for_the_holding_period(app, db, run_jobs, stripe_emulator):
    app.config["PAYOUT_HOLD_DAYS"] = 14
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    sell(db, buyer, ada, 2500, run_jobs)
    ada_id = artist_id(db, ada)
    state = balances(db, ada_id)
    assert (state.pending_minor, state.available_minor) == (2000, 0)
    assert state.next_available_at is not None
    assert timedelta(days=13) < state.next_available_at - utcnow() <= timedelta(days=14)

    assert run(db).paid == 0
    assert transfers_to(db, account) == []

    assert run(db, now=utcnow() + timedelta(days=14, minutes=1)).paid == 1
    assert [t.amount_minor for t in transfers_to(db, account)] == [2000]


def test_below_the_minimum_earnings_accrue_until_they_reach_it(db, run_jobs, stripe_emulator):
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    sell(db, buyer, ada, 1000, run_jobs)  # 8.00
    assert run(db).paid == 0
    sell(db, buyer, ada, 500, run_jobs)  # + 4.00 = 12.00
    assert run(db).paid == 1
    amounts = sorted(t.amount_minor for t in transfers_to(db, account))
    assert amounts == [400, 800]  # one transfer per order, each in its order's transfer group
    assert len({t.transfer_group for t in transfers_to(db, account)}) == 2


def test_earnings_accrue_before_onboarding_and_are_paid_once_enabled(db, run_jobs, stripe_emulator):
    ada, buyer = make_artist(db), make_buyer(db)
    sell(db, buyer, ada, 1250, run_jobs)
    assert run(db).paid == 0  # no account yet: nothing is lost, nothing fails
    account = onboard(db, ada, stripe_emulator, finish=False)
    assert run(db).paid == 0  # onboarding not finished
    assert db.scalar(select(func.count()).select_from(Payout)) == 0
    onboard(db, ada, stripe_emulator)
    assert run(db).paid == 1
    assert [t.amount_minor for t in transfers_to(db, account)] == [1000]


def test_a_restricted_account_is_a_visible_failure_and_the_next_run_retries(
    db, run_jobs, stripe_emulator
):
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    sell(db, buyer, ada, 1250, run_jobs)
    ada_id = artist_id(db, ada)
    stripe_emulator.restrict_account(account)
    # Our copy of the account is stale (no webhook here): Stripe refuses the transfer itself.
    outcome = run(db)
    assert (outcome.paid, outcome.failed) == (0, 1)
    payout = db.scalar(select(Payout))
    assert payout.status is PayoutStatus.FAILED
    assert payout.failure_message
    assert balances(db, ada_id).available_minor == 1000  # intact
    assert money.balance(db, money.payouts_in_transit("usd")) == 0

    with db.info["app"].app_context():
        from marketplace.db import transaction
        from marketplace.payouts import services

        with transaction(db) as session:
            services.sync_account(session, account)
    db.rollback()
    outcome = run(db)  # now we know: a failure recorded without asking Stripe
    assert (outcome.paid, outcome.failed) == (0, 1)
    assert db.scalar(select(Payout).order_by(Payout.id.desc())).failure_code == (
        "account_restricted"
    )

    stripe_emulator.enable_account(account)
    with db.info["app"].app_context(), transaction(db) as session:
        services.sync_account(session, account)
    db.rollback()
    assert run(db).paid == 1
    assert [t.amount_minor for t in transfers_to(db, account)] == [1000]
    assert balances(db, ada_id).paid_minor == 1000
    assert ledger_ok(db)


def test_each_run_is_recorded_with_its_results(db, run_jobs, stripe_emulator):
    ada, ben, buyer = make_artist(db), make_artist(db), make_buyer(db)
    onboard(db, ada, stripe_emulator)
    onboard(db, ben, stripe_emulator)
    sell(db, buyer, ada, 1250, run_jobs)
    sell(db, buyer, ben, 2500, run_jobs)
    outcome = run(db, trigger="admin")
    record = db.get(PayoutRun, outcome.run_id)
    assert record.status.value == "finished"
    assert (record.trigger, record.paid_count, record.paid_minor) == ("admin", 2, 3000)


def test_a_transfer_webhook_recorded_first_does_not_stop_the_payout(
    db, run_jobs, stripe_emulator, monkeypatch
):
    """Stripe's `transfer.created` may be handled before the run records the answer itself."""
    from marketplace.db import transaction
    from marketplace.payments import gateway
    from marketplace.payouts import services

    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    sell(db, buyer, ada, 1250, run_jobs)
    sell(db, buyer, ada, 2500, run_jobs)

    def webhook_first(name):
        with transaction() as session:
            for made in gateway.list_transfers(destination=account):
                services._sync_transfer(session, made.id)

    monkeypatch.setattr(services, "_fault_point", webhook_first)
    outcome = run(db)
    assert (outcome.paid, outcome.paid_minor) == (1, 3000)
    rows = db.scalars(select(PayoutTransfer)).all()
    assert [r.status for r in rows] == [TransferStatus.SENT, TransferStatus.SENT]
    assert db.scalar(select(Payout)).status is PayoutStatus.PAID
    assert ledger_ok(db)
