"""Two events about one transfer handled at once (Stripe sends `transfer.reversed` and
`transfer.updated` together for a reversal made from the Dashboard), on PostgreSQL.

FAILING until `services._sync_transfer` locks the transfer row before comparing it with
Stripe's reversals: both handlers see the reversal as new, both insert a row for it, one loses
on the unique Stripe id, and the webhook answers that event "duplicate" without recording it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

import pytest
from sqlalchemy import func, select

from marketplace.ledger.kinds import EntryKind
from marketplace.ledger.models import LedgerEntry
from marketplace.payments import gateway
from marketplace.payments.signing import stripe_signature
from marketplace.payouts import services as payouts
from marketplace.payouts.models import PayoutReversal
from marketplace.webhooks import services as webhooks
from marketplace.webhooks.models import StripeEvent
from tests.factories import make_artist, make_buyer
from tests.payouts.support import onboard, run, sell, transfers_to


@pytest.fixture
def database_url(postgres_database_url):
    """PostgreSQL: the race needs its row locks."""
    return postgres_database_url


@pytest.fixture
def app_config(stripe_config):
    return {**stripe_config, "PAYOUT_HOLD_DAYS": 0, "PAYOUT_MINIMUM_MINOR": 1000}


def signed(app, event_type, object_id, event_id):
    payload = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": {"id": object_id, "object": "transfer"}},
        }
    ).encode()
    return payload, stripe_signature(payload, app.config["STRIPE_WEBHOOK_SECRET"], int(time.time()))


def test_two_events_for_one_dashboard_reversal_at_once_are_both_recorded(
    app, db, run_jobs, stripe_emulator, monkeypatch
):
    ada = make_artist(db)
    account = onboard(db, ada, stripe_emulator)
    sell(db, make_buyer(db), ada, 2500, run_jobs)
    assert run(db).paid == 1
    [transfer] = transfers_to(db, account)
    with app.app_context():
        gateway.create_transfer_reversal(
            transfer.id, amount_minor=500, idempotency_key=f"dashboard-{transfer.id}"
        )

    # Both handlers read Stripe's reversals before either writes (as two deliveries at once
    # can); a handler that waits for a row lock first just finds the barrier broken.
    barrier = threading.Barrier(2, timeout=3)
    list_reversals = payouts.payments.list_transfer_reversals

    def in_step(transfer_id):
        found = list(list_reversals(transfer_id))
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return found

    monkeypatch.setattr(payouts.payments, "list_transfer_reversals", in_step)
    answers = {}

    def deliver(event_type, event_id):
        with app.app_context():
            answers[event_id] = webhooks.receive(*signed(app, event_type, transfer.id, event_id))

    threads = [
        threading.Thread(target=deliver, args=("transfer.reversed", "evt_race_a")),
        threading.Thread(target=deliver, args=("transfer.updated", "evt_race_b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    db.rollback()
    assert db.scalar(select(func.count()).select_from(PayoutReversal)) == 1
    assert (
        db.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.kind == EntryKind.PAYOUT_REVERSED.value)
        )
        == 1
    )
    assert "duplicate" not in answers.values(), answers  # neither was a replay
    recorded = set(db.scalars(select(StripeEvent.id)))
    assert {"evt_race_a", "evt_race_b"} <= recorded
