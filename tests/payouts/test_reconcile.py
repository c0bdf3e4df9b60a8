"""`marketplace payouts reconcile`: exit 0 when payouts, the ledger and Stripe agree; each kind
of difference listed, exit 1."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from marketplace.payments import gateway
from marketplace.payouts.models import PayoutTransfer, TransferStatus
from tests.factories import make_artist, make_buyer
from tests.payouts.support import ledger_ok, onboard, run, sell, transfers_to
from tests.payouts.test_crash_and_concurrency import finish, start_run


@pytest.fixture
def app_config(stripe_config):
    return {**stripe_config, "PAYOUT_HOLD_DAYS": 0, "PAYOUT_MINIMUM_MINOR": 1000}


def reconcile(app):
    result = app.test_cli_runner().invoke(args=["payouts", "reconcile"])
    return result.exit_code, result.output


@pytest.fixture
def paid_artist(db, run_jobs, stripe_emulator):
    """Ada, paid 20.00 by a run: the state every test starts from; its connected account."""
    ada = make_artist(db)
    account = onboard(db, ada, stripe_emulator)
    sell(db, make_buyer(db), ada, 2500, run_jobs)
    assert run(db).paid == 1
    return account


def test_nothing_to_compare_agrees(app):
    assert reconcile(app) == (0, "Payouts, ledger and Stripe agree.\n")


def test_a_clean_state_agrees(app, paid_artist):
    assert reconcile(app) == (0, "Payouts, ledger and Stripe agree.\n")


def test_a_transfer_at_stripe_that_no_payout_knows_is_listed(app, paid_artist):
    with app.app_context():  # made from Stripe's Dashboard, say
        stray = gateway.create_transfer(
            amount_minor=700,
            currency="usd",
            destination=paid_artist,
            transfer_group=None,
            idempotency_key=f"dashboard-{paid_artist}",
        )
    code, output = reconcile(app)
    assert code == 1
    assert (
        f"unknown_at_stripe: Stripe transfer {stray.id} (700 usd to {paid_artist}) "
        "matches no payout"
    ) in output
    assert output.endswith("1 difference(s).\n")


def test_a_transfer_stripe_made_but_a_killed_run_left_pending_is_listed(
    app, db, run_jobs, stripe_emulator
):
    ada = make_artist(db)
    account = onboard(db, ada, stripe_emulator)
    sell(db, make_buyer(db), ada, 1250, run_jobs)
    code, output = finish(start_run(app, fault_point="payout.transfer_created"))
    assert code == -9, output
    [made] = transfers_to(db, account)
    row = db.scalar(select(PayoutTransfer))
    assert row.status is TransferStatus.PENDING

    code, output = reconcile(app)
    assert code == 1
    assert (
        f"unrecorded_transfer: Stripe made {made.id} for transfer row {row.id}, "
        "still in transit here (the next run records it)"
    ) in output
    assert output.endswith("1 difference(s).\n")  # the ledger holds it in transit, as the row

    assert run(db).resumed == 1  # the next run records it without paying again
    assert reconcile(app) == (0, "Payouts, ledger and Stripe agree.\n")
    assert len(transfers_to(db, account)) == 1
    assert ledger_ok(db)


def test_a_reversal_at_stripe_not_recorded_here_is_listed(app, paid_artist, db):
    [transfer] = transfers_to(db, paid_artist)
    with app.app_context():  # from the Dashboard, its event not (yet) delivered
        gateway.create_transfer_reversal(
            transfer.id, amount_minor=500, idempotency_key=f"dashboard-{transfer.id}"
        )
    code, output = reconcile(app)
    assert code == 1
    assert f"reversal_mismatch: transfer {transfer.id}: Stripe reversed 500, the ledger 0" in output
    assert output.endswith("1 difference(s).\n")
