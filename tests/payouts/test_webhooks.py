"""Connect events from the emulator, signed and delivered to a live server: accounts kept in
sync, reversals made at Stripe recorded once, a transfer a crashed run left pending recorded
as sent; events about transfers and accounts that are not ours are acknowledged and ignored."""

from __future__ import annotations

import json
import time
from urllib.request import Request, urlopen

import pytest
from sqlalchemy import func, select

from marketplace.db import transaction
from marketplace.ledger import money
from marketplace.ledger.kinds import EntryKind
from marketplace.ledger.models import LedgerEntry
from marketplace.payments import gateway
from marketplace.payments.signing import stripe_signature
from marketplace.payouts import services as payouts
from marketplace.payouts.models import (
    Payout,
    PayoutAccount,
    PayoutReversal,
    PayoutStatus,
    PayoutTransfer,
    ReversalStatus,
    TransferStatus,
)
from marketplace.webhooks.models import StripeEvent
from tests.factories import make_artist, make_buyer
from tests.payouts.support import (
    REFRESH_URL,
    RETURN_URL,
    artist_id,
    balances,
    ledger_ok,
    onboard,
    run,
    sell,
    transfers_to,
)
from tests.payouts.test_crash_and_concurrency import finish, start_run


@pytest.fixture
def app_config(stripe_config):
    return {**stripe_config, "PAYOUT_HOLD_DAYS": 0, "PAYOUT_MINIMUM_MINOR": 1000}


@pytest.fixture
def server(live_server, stripe_webhooks):
    """The live server, with the emulator delivering every event to its webhook."""
    app, base_url = live_server
    stripe_webhooks(f"{base_url}/webhooks/stripe", app.config["STRIPE_WEBHOOK_SECRET"])
    return app, base_url


def delivered(emulator, event_type):
    """The deliveries of `event_type` since the last flush; each answered 200."""
    found = [d for d in emulator.flush_webhooks() if d["type"] == event_type]
    assert found
    assert all(d["status"] == 200 for d in found), found
    return found


def outcome(db, event_id):
    db.rollback()
    return db.scalar(select(StripeEvent.outcome).where(StripeEvent.id == event_id))


def post_event(server, event_type, object_id, event_id):
    """Deliver an event as Stripe would (signed), e.g. once more under a new id."""
    app, base_url = server
    payload = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": {"id": object_id, "object": event_type.split(".")[0]}},
        }
    ).encode()
    request = Request(  # noqa: S310 - the live server on loopback
        f"{base_url}/webhooks/stripe",
        data=payload,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": stripe_signature(
                payload, app.config["STRIPE_WEBHOOK_SECRET"], int(time.time())
            ),
        },
    )
    with urlopen(request, timeout=30) as response:  # noqa: S310
        assert response.status == 200
        return json.loads(response.read())["outcome"]


def account_of(db, stripe_account_id):
    db.rollback()
    return db.scalar(
        select(PayoutAccount).where(PayoutAccount.stripe_account_id == stripe_account_id)
    )


def test_account_updated_enables_the_account_after_onboarding_and_disables_it_when_restricted(
    server, db, stripe_emulator
):
    ada = make_artist(db)
    with db.info["app"].app_context(), transaction(db) as session:
        owner = session.merge(ada)
        link = payouts.start_onboarding(
            session, owner.artist, email=owner.email, refresh_url=REFRESH_URL, return_url=RETURN_URL
        )
        account_id = payouts.payout_account(session, owner.artist.id).stripe_account_id
    stripe_emulator.flush_webhooks()
    assert not account_of(db, account_id).payouts_enabled

    assert stripe_emulator.visit_onboarding_link(link) == RETURN_URL  # no return visit here
    [event] = delivered(stripe_emulator, "account.updated")
    assert outcome(db, event["event"]) == f"account {account_id}: payouts enabled"
    account = account_of(db, account_id)
    assert (account.payouts_enabled, account.details_submitted) == (True, True)
    assert account.requirements_due == []

    stripe_emulator.restrict_account(account_id)
    [event] = delivered(stripe_emulator, "account.updated")
    assert outcome(db, event["event"]) == f"account {account_id}: payouts disabled"
    account = account_of(db, account_id)
    assert not account.payouts_enabled
    assert account.restricted
    assert account.requirements_due
    assert account.disabled_reason


def test_a_reversal_made_at_stripe_is_recorded_once(server, db, run_jobs, stripe_emulator):
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    sell(db, buyer, ada, 2500, run_jobs)  # 20.00 to Ada
    assert run(db).paid == 1
    [transfer] = transfers_to(db, account)
    stripe_emulator.flush_webhooks()

    with db.info["app"].app_context():  # as from Stripe's Dashboard
        at_stripe = gateway.create_transfer_reversal(
            transfer.id, amount_minor=500, idempotency_key=f"dashboard-{transfer.id}"
        )
    deliveries = stripe_emulator.flush_webhooks()  # transfer.reversed, then transfer.updated
    assert {d["type"] for d in deliveries} == {"transfer.reversed", "transfer.updated"}
    assert all(d["status"] == 200 for d in deliveries), deliveries
    row = db.scalar(select(PayoutTransfer))
    outcomes = [outcome(db, d["event"]) for d in deliveries]
    assert outcomes.count(f"payout transfer {row.id}: sent, 1 reversal(s) recorded") == 1
    # The other event finds it recorded, or (PostgreSQL, both handled at once) loses the race
    # on the reversal's unique Stripe id and is acknowledged as a duplicate, unrecorded.
    assert {o for o in outcomes if "reversal" not in (o or "")} <= {
        f"payout transfer {row.id}: sent",
        None,
    }
    [event] = [d for d in deliveries if d["type"] == "transfer.reversed"]
    # The same fact again: the same event replayed, then under another id.
    assert post_event(server, "transfer.reversed", transfer.id, event["event"]) == "duplicate"
    again = post_event(server, "transfer.reversed", transfer.id, "evt_redelivered_1")
    assert again == f"payout transfer {row.id}: sent"

    db.rollback()
    [reversal] = db.scalars(select(PayoutReversal)).all()
    assert (reversal.status, reversal.amount_minor) == (ReversalStatus.REVERSED, 500)
    assert reversal.stripe_reversal_id == at_stripe.id
    assert reversal.refund_id is None
    assert (
        db.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.kind == EntryKind.PAYOUT_REVERSED.value)
        )
        == 1
    )
    state = balances(db, artist_id(db, ada))
    assert (state.available_minor, state.paid_minor, state.reversed_minor) == (500, 1500, 500)
    assert money.balance(db, money.artist_payable(artist_id(db, ada), "usd")) == 500
    with db.info["app"].app_context():
        assert payouts.reconcile() == []
    assert ledger_ok(db)


def test_transfer_created_records_a_transfer_a_crashed_run_left_pending(
    server, db, run_jobs, stripe_emulator
):
    app, _base_url = server
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    sell(db, buyer, ada, 1250, run_jobs)
    stripe_emulator.flush_webhooks()

    code, output = finish(start_run(app, fault_point="payout.transfer_created"))
    assert code == -9, output  # killed after Stripe made the transfer, before recording it
    [event] = delivered(stripe_emulator, "transfer.created")
    row = db.scalar(select(PayoutTransfer))
    assert outcome(db, event["event"]) == f"payout transfer {row.id}: sent"
    [transfer] = transfers_to(db, account)
    db.rollback()
    row = db.scalar(select(PayoutTransfer))
    assert (row.status, row.stripe_transfer_id) == (TransferStatus.SENT, transfer.id)
    assert db.scalar(select(Payout)).status is PayoutStatus.PAID
    assert money.balance(db, money.payouts_in_transit("usd")) == 0

    assert run(db).paid == 0  # the next run finds nothing left to pay or resume
    assert len(transfers_to(db, account)) == 1
    assert ledger_ok(db)


def test_transfers_and_accounts_that_are_not_ours_are_acknowledged_and_ignored(
    server, db, run_jobs, stripe_emulator
):
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    sell(db, buyer, ada, 1250, run_jobs)  # a charge to fund a transfer from
    stripe_emulator.flush_webhooks()
    with db.info["app"].app_context():
        gateway.create_transfer(
            amount_minor=300,
            currency="usd",
            destination=account,
            transfer_group=None,
            idempotency_key=f"dashboard-{account}",
        )
        stranger = gateway.create_connected_account(
            email="someone@example.com",
            country="US",
            idempotency_key=f"stranger-{account}",
            metadata={},
        )
    [created] = delivered(stripe_emulator, "transfer.created")
    assert outcome(db, created["event"]) == "unknown transfer"
    stripe_emulator.enable_account(stranger.id)
    [updated] = delivered(stripe_emulator, "account.updated")
    assert outcome(db, updated["event"]) == "unknown account"
    assert post_event(server, "transfer.created", "tr_nowhere", "evt_nowhere") == "unknown transfer"
    db.rollback()
    assert db.scalar(select(func.count()).select_from(PayoutTransfer)) == 0
    assert db.scalar(select(func.count()).select_from(PayoutAccount)) == 1
