"""Review of issue 13 (branch review-payouts): each test shows one defect and fails on main.

They are the lead's to keep, fix against, or drop; none changes the services.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from marketplace.buyers import services as buyers
from marketplace.buyers.models import Order
from marketplace.db import transaction
from marketplace.ledger import money
from marketplace.payments import gateway
from marketplace.payouts import services
from marketplace.payouts.models import PayoutReversal, ReversalStatus
from tests.buyers.test_stripe import post_event
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


def test_a_refund_while_the_transfer_is_in_transit_is_reversed_once_stripe_answers(
    db, run_jobs, stripe_emulator, monkeypatch
):
    """order_refunded only queues a reversal when a transfer of the order is already `sent`.
    A refund recorded while it is `pending` (Stripe asked, answer not recorded; or a refund
    committed between the run's planning and its intent on PostgreSQL) is never reversed:
    the artist keeps the share and it is only ever recovered from future sales."""
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    order_id = sell(db, buyer, ada, 2500, run_jobs)  # 20.00 to Ada
    ada_id = artist_id(db, ada)

    def refund_meanwhile(name):  # Stripe made the transfer; our row is still pending
        if name != "payout.transfer_created":
            return
        with transaction() as session:
            buyers.refund_order(
                session, session.get(Order, order_id), amount_minor=None, reason="review"
            )

    monkeypatch.setattr(services, "_fault_point", refund_meanwhile)
    assert run(db).paid == 1
    monkeypatch.undo()
    run_jobs()
    run(db)  # even a later run does not take it back
    run_jobs()
    db.rollback()
    [transfer] = transfers_to(db, account)
    assert transfer.amount_reversed_minor == 2000, "the refunded share was never reversed"
    state = balances(db, ada_id)
    assert (state.available_minor, state.paid_minor) == (0, 0)


def test_a_refund_after_the_intent_but_before_stripe_is_asked_sends_nothing_for_it(
    db, run_jobs, stripe_emulator, monkeypatch
):
    """_record_intent commits the transfer row; a refund recorded before _send asks Stripe
    (or one committed between _record_intent's planning read and its ledger lock on
    PostgreSQL) does not stop the transfer: the full share goes out, and (as above) is never
    reversed. Either not sending it or reversing it afterwards makes this pass."""
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    order_id = sell(db, buyer, ada, 2500, run_jobs)
    ada_id = artist_id(db, ada)
    real_send = services._send

    def refund_first(payout_id, **kwargs):
        with transaction() as session:
            buyers.refund_order(
                session, session.get(Order, order_id), amount_minor=None, reason="review"
            )
        return real_send(payout_id, **kwargs)

    monkeypatch.setattr(services, "_send", refund_first)
    run(db)
    monkeypatch.undo()
    run_jobs()
    run(db)
    run_jobs()
    db.rollback()
    kept = sum(t.amount_minor - t.amount_reversed_minor for t in transfers_to(db, account))
    assert kept == 0, f"Ada keeps {kept} of a refunded order"
    state = balances(db, ada_id)
    assert (state.available_minor, state.in_transit_minor, state.paid_minor) == (0, 0, 0)


def test_a_second_partial_refund_reverses_only_what_is_still_owed_after_netting(
    db, run_jobs, stripe_emulator
):
    """_plan_reversals takes -(order's net) as what is owed back. Netting a failed reversal
    against another order's transfer leaves the first order's net negative for good, so the
    next refund of that order reverses the already-recovered debt a second time."""
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    first = sell(db, buyer, ada, 2500, run_jobs)  # 20.00 to Ada
    ada_id = artist_id(db, ada)
    assert run(db).paid == 1
    stripe_emulator.set_balance(account, 0)
    refund(db, first, 1250)  # 10.00 of Ada's share back; Stripe cannot reverse it
    run_jobs()
    assert balances(db, ada_id).available_minor == -1000
    sell(db, buyer, ada, 2500, run_jobs)  # another 20.00: 10.00 nets the debt
    assert run(db).paid_minor == 1000
    stripe_emulator.set_balance(account, 100_000)
    refund(db, first, 1250)  # the rest of the first order: 10.00 more to take back
    run_jobs()
    db.rollback()
    # Ada is owed 20.00 (the second order) and received 20.00 + 10.00: 10.00 comes back.
    made = transfers_to(db, account)
    assert sum(t.amount_reversed_minor for t in made) == 1000
    state = balances(db, ada_id)
    assert (state.available_minor, state.paid_minor) == (0, 2000)
    assert ledger_ok(db)


def test_a_stripe_hiccup_listing_one_reversal_does_not_stop_the_whole_run(
    db, run_jobs, stripe_emulator, monkeypatch
):
    """_send_reversal calls list_transfer_reversals outside any try: a 5xx there, while a run
    resumes a pending reversal, fails the run before it pays anybody."""
    ada, ben, buyer = make_artist(db), make_artist(db), make_buyer(db)
    onboard(db, ada, stripe_emulator)
    ben_account = onboard(db, ben, stripe_emulator)
    first = sell(db, buyer, ada, 2500, run_jobs)
    assert run(db).paid == 1

    def unavailable(*args, **kwargs):
        raise gateway.PaymentsUnavailable("Stripe 503", code="payments_unavailable")

    monkeypatch.setattr(gateway, "create_transfer_reversal", unavailable)
    refund(db, first)
    run_jobs()
    assert db.scalar(select(PayoutReversal)).status is ReversalStatus.PENDING
    sell(db, buyer, ben, 2500, run_jobs)
    monkeypatch.setattr(gateway, "list_transfer_reversals", unavailable)
    outcome = run(db)  # raises PaymentsUnavailable on main
    assert outcome.paid == 1
    assert [t.amount_minor for t in transfers_to(db, ben_account)] == [2000]


@pytest.mark.parametrize(
    "mark", ["99999999999999999999999", "\u00b2"], ids=["bigint", "superscript"]
)
def test_a_transfer_event_with_an_odd_payout_mark_is_acknowledged_not_a_500(
    app, client, db, stripe_emulator, mark
):
    """_sync_transfer (and _sync_reversals) trust `str.isdigit()`: '²' passes it and int()
    raises; a number beyond BIGINT reaches the driver (OverflowError / DataError)."""
    ada = make_artist(db)
    account = onboard(db, ada, stripe_emulator)
    with app.app_context():
        made = gateway.create_transfer(
            amount_minor=100,
            currency="usd",
            destination=account,
            transfer_group=None,
            idempotency_key=f"review-odd-{mark.encode().hex()}",
            metadata={"payout_transfer": mark},
        )
    response = post_event(
        client,
        app.config["STRIPE_WEBHOOK_SECRET"],
        "transfer.created",
        {"id": made.id, "object": "transfer"},
        f"evt_review_{mark.encode().hex()}",
    )
    assert response.status_code == 200


def test_reconcile_is_linear_in_transfers_and_ledger_keys(
    db, run_jobs, stripe_emulator, monkeypatch
):
    """reconcile() scans every `payout:` ledger key once per transfer row
    (`{k for k in keys if k.startswith(base)}` inside the loop): O(transfers x keys), hours at
    a few hundred thousand transfers. Counted here with padding keys that match no row."""
    ada, buyer = make_artist(db), make_buyer(db)
    onboard(db, ada, stripe_emulator)
    for price in (1250, 1250, 1250, 1250):
        sell(db, buyer, ada, price, run_jobs)
    assert run(db).paid == 1  # four transfers
    real = services._ledger_keys

    class CountingSet(set):
        visited = 0

        def __iter__(self):
            for key in super().__iter__():
                CountingSet.visited += 1
                yield key

    def padded(session, prefix):
        keys = real(session, prefix)
        if prefix == "payout:":
            keys |= {f"payout:{10**9 + n}:transfer:{n}:initiated" for n in range(2000)}
        return CountingSet(keys)

    monkeypatch.setattr(services, "_ledger_keys", padded)
    with db.info["app"].app_context():
        assert services.reconcile() == []
    db.rollback()
    assert CountingSet.visited <= 2 * (4 + 2008), CountingSet.visited  # main: 4 x 2008


def test_a_run_does_not_rework_orders_that_are_settled(db, run_jobs, stripe_emulator, monkeypatch):
    """order_nets() groups every payable posting ever by order and keeps the zero nets, and
    _paid_at() then loads every one of those orders: each run (and each artist's re-plan in
    _record_intent, and each balances() call) scales with all history, not with what is due."""
    ada, buyer = make_artist(db), make_buyer(db)
    onboard(db, ada, stripe_emulator)
    for price in (1250, 1250, 1250):
        sell(db, buyer, ada, price, run_jobs)
    assert run(db).paid == 1  # all three orders settled: their nets are 0
    looked_up: list[int] = []
    real = services._paid_at

    def spy(session, order_ids):
        looked_up.extend(order_ids)
        return real(session, order_ids)

    monkeypatch.setattr(services, "_paid_at", spy)
    assert run(db).paid == 0
    assert looked_up == [], f"a run with nothing due looked up {len(looked_up)} settled orders"


def test_the_payable_ledger_account_agrees_with_pending_plus_available(
    db, run_jobs, stripe_emulator
):
    """Guard for the fixes above: the artist's payable account is what balances() calls owed."""
    ada, buyer = make_artist(db), make_buyer(db)
    onboard(db, ada, stripe_emulator)
    order_id = sell(db, buyer, ada, 2500, run_jobs)
    ada_id = artist_id(db, ada)
    run(db)
    refund(db, order_id, 1250)
    run_jobs()
    state = balances(db, ada_id)
    assert money.balance(db, money.artist_payable(ada_id, "usd")) == state.owed_minor
