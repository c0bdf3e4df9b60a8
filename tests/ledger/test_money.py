"""Double-entry money: balance in code and in the database, idempotency keys."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import DBAPIError

from marketplace.db import transaction
from marketplace.ledger import money
from marketplace.ledger import services as ledger
from marketplace.ledger.kinds import EntryKind
from marketplace.ledger.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerPosting,
    LedgerTransaction,
)

USD = "usd"


def capture(session, key: str = "evt_1", gross: int = 10_000, fee: int = 320, artist: int = 5):
    """A card payment: cash arrives net of the fee; 70% is owed to the artist."""
    share = gross * 70 // 100
    return money.record_transaction(
        session,
        key=key,
        kind=EntryKind.PAYMENT_CAPTURED,
        currency=USD,
        subject={"order": 1, "artist": artist},
        postings=[
            money.debit(money.processor_clearing(USD), gross - fee),
            money.debit(money.processor_fees(USD), fee),
            money.credit(money.artist_payable(artist, USD), share),
            money.credit(money.platform_revenue(USD), gross - share),
        ],
    )


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_balanced_transaction_is_recorded_with_its_log_entry(app, db):
    with app.app_context(), transaction(db) as session:
        recorded = capture(session)
    assert money.balance(db, money.processor_clearing(USD)) == 9_680
    assert money.balance(db, money.processor_fees(USD)) == 320
    assert money.balance(db, money.artist_payable(5, USD)) == 7_000
    assert money.balance(db, money.platform_revenue(USD)) == 3_000
    entry = db.get(LedgerEntry, recorded.entry_seq)
    assert entry.kind == "payment.captured"
    payload = json.loads(entry.entry)["payload"]
    assert payload["key"] == "evt_1"
    assert (
        sum(p["amount_minor"] for p in payload["postings"] if p["direction"] == "debit") == 10_000
    )


def test_same_key_twice_returns_the_first_and_writes_nothing(app, db):
    with app.app_context():
        with transaction(db) as session:
            first = capture(session)
        with transaction(db) as session:
            again = capture(session)
    assert again.id == first.id
    assert count(db, LedgerTransaction) == 1
    assert count(db, LedgerPosting) == 4
    assert count(db, LedgerEntry) == 1
    assert money.balance(db, money.artist_payable(5, USD)) == 7_000


def test_same_key_with_other_postings_is_a_conflict(app, db):
    with app.app_context():
        with transaction(db) as session:
            capture(session)
        with pytest.raises(money.IdempotencyConflict), transaction(db) as session:
            capture(session, gross=20_000)
    assert count(db, LedgerTransaction) == 1


@pytest.mark.parametrize(
    ("postings", "error"),
    [
        ([money.debit("processor_clearing:usd", 100)], money.Unbalanced),
        (
            [money.debit("processor_clearing:usd", 100), money.credit("platform_revenue:usd", 99)],
            money.Unbalanced,
        ),
        (
            [money.debit("processor_clearing:usd", 0), money.credit("platform_revenue:usd", 0)],
            money.MoneyError,
        ),
        (
            [money.debit("processor_clearing:usd", 1.5), money.credit("platform_revenue:usd", 1.5)],
            money.MoneyError,
        ),
        (
            [money.debit("processor_clearing:eur", 100), money.credit("platform_revenue:usd", 100)],
            money.MoneyError,
        ),
        (
            [money.debit("petty_cash:usd", 100), money.credit("platform_revenue:usd", 100)],
            money.UnknownAccount,
        ),
    ],
)
def test_malformed_transactions_are_refused_in_code(app, db, postings, error):
    with app.app_context(), pytest.raises(error), transaction(db) as session:
        money.record_transaction(
            session, key="k1", kind=EntryKind.PAYMENT_CAPTURED, currency=USD, postings=postings
        )
    assert count(db, LedgerPosting) == 0
    assert count(db, LedgerEntry) == 0
    assert count(db, LedgerAccount) == 0


def test_database_refuses_an_unbalanced_transaction(app, db):
    """Even code that bypasses the service cannot record money that does not balance."""
    with app.app_context(), transaction(db) as session:
        capture(session)  # makes the accounts
        free_seq = ledger.append(session, EntryKind.PAYMENT_CAPTURED)  # an entry to point at
    clearing = db.scalar(
        select(LedgerAccount).where(LedgerAccount.code == "processor_clearing:usd")
    )
    revenue = db.scalar(select(LedgerAccount).where(LedgerAccount.code == "platform_revenue:usd"))
    with pytest.raises(DBAPIError, match="does not balance"), transaction(db) as session:
        session.execute(
            insert(LedgerPosting),
            [
                {
                    "transaction_key": "bad",
                    "account_id": clearing.id,
                    "direction": "debit",
                    "amount_minor": 100,
                    "currency": USD,
                },
                {
                    "transaction_key": "bad",
                    "account_id": revenue.id,
                    "direction": "credit",
                    "amount_minor": 90,
                    "currency": USD,
                },
            ],
        )
        session.execute(
            insert(LedgerTransaction),
            [
                {
                    "idempotency_key": "bad",
                    "kind": "payment.captured",
                    "currency": USD,
                    "memo": "",
                    "entry_seq": free_seq,
                    "created_at": clearing.created_at,
                }
            ],
        )
    assert count(db, LedgerTransaction) == 1


def test_database_refuses_postings_without_a_transaction(app, db):
    with app.app_context(), transaction(db) as session:
        capture(session)
    clearing = db.scalar(
        select(LedgerAccount).where(LedgerAccount.code == "processor_clearing:usd")
    )
    with pytest.raises(DBAPIError), transaction(db) as session:
        session.execute(
            insert(LedgerPosting),
            [
                {
                    "transaction_key": "orphan",
                    "account_id": clearing.id,
                    "direction": "debit",
                    "amount_minor": 100,
                    "currency": USD,
                }
            ],
        )
    assert count(db, LedgerPosting) == 4


def test_database_refuses_adding_postings_to_a_recorded_transaction(app, db):
    with app.app_context(), transaction(db) as session:
        capture(session)
    clearing = db.scalar(
        select(LedgerAccount).where(LedgerAccount.code == "processor_clearing:usd")
    )
    with pytest.raises(DBAPIError, match="already recorded"), transaction(db) as session:
        session.execute(
            insert(LedgerPosting),
            [
                {
                    "transaction_key": "evt_1",
                    "account_id": clearing.id,
                    "direction": "debit",
                    "amount_minor": 1,
                    "currency": USD,
                }
            ],
        )


def test_payout_moves_money_from_payable_through_transit(app, db):
    with app.app_context():
        with transaction(db) as session:
            capture(session)
        with transaction(db) as session:
            money.record_transaction(
                session,
                key="payout-1",
                kind=EntryKind.PAYOUT_SENT,
                currency=USD,
                subject={"artist": 5, "payout": 1},
                postings=[
                    money.debit(money.artist_payable(5, USD), 7_000),
                    money.credit(money.payouts_in_transit(USD), 7_000),
                ],
            )
    assert money.balance(db, money.artist_payable(5, USD)) == 0
    assert money.balance(db, money.payouts_in_transit(USD)) == 7_000
