"""The admin payouts page with more artists than it lists: each list (to pay, waiting, in
transit) shows its 50 largest amounts, says how many more there are, keeps totals over every
row, and costs the same number of SQL statements however many rows there are."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select

from marketplace.buyers.models import Order
from marketplace.db import get_database
from marketplace.payouts.models import (
    Payout,
    PayoutAccount,
    PayoutStatus,
    PayoutTransfer,
    TransferStatus,
)
from tests.buyers.support import licence, work_item
from tests.factories import make_admin, make_artist, make_buyer
from tests.payouts.support import artist_id, balances, paid_order

MANY = 56  # LIST_ROWS + 6


@pytest.fixture
def app_config(stripe_config):
    return {**stripe_config, "PAYOUT_HOLD_DAYS": 0, "PAYOUT_MINIMUM_MINOR": 1000}


@contextmanager
def statements(app):
    """Count the SQL statements the app's engine runs inside the block."""
    seen: list[str] = []
    engine = get_database(app).engine

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def admin_page(app, client) -> tuple[str, int]:
    with statements(app) as seen:
        response = client.get("/admin/payouts")
    assert response.status_code == 200
    return response.get_data(as_text=True), len(seen)


def table(html: str, testid: str) -> str:
    found = re.search(rf'<table class="table" data-testid="{testid}">(.*?)</table>', html, re.S)
    assert found, f"no {testid} table"
    return found.group(1)


def rows(html: str, testid: str) -> list[str]:
    return re.findall(r"<tr>(.*?)</tr>", table(html, testid).split("<tbody>")[1], re.S)


def usd(minor: int) -> str:
    return f"${minor // 100:,}.{minor % 100:02d}"


def sell_to(db, buyer, users, prices, run_jobs) -> list[int]:
    """One order with a work of each artist; their artist ids."""
    items = [work_item(db, user, licence(p)) for user, p in zip(users, prices, strict=True)]
    paid_order(db, buyer, items, run_jobs)
    return [artist_id(db, user) for user in users]


def open_accounts(db, artist_ids) -> None:
    for aid in artist_ids:
        db.add(
            PayoutAccount(
                artist_id=aid,
                stripe_account_id=f"acct_list{aid}",
                country="US",
                charges_enabled=True,
                payouts_enabled=True,
                details_submitted=True,
            )
        )
    db.commit()


def put_in_transit(db, artist_ids, amounts, order_id) -> None:
    """A payout of each artist with one transfer Stripe has not answered yet."""
    for aid, amount in zip(artist_ids, amounts, strict=True):
        payout = Payout(
            artist_id=aid, currency="usd", amount_minor=amount, status=PayoutStatus.IN_TRANSIT
        )
        db.add(payout)
        db.flush()
        db.add(
            PayoutTransfer(
                payout_id=payout.id,
                artist_id=aid,
                order_id=order_id,
                amount_minor=amount,
                status=TransferStatus.PENDING,
            )
        )
    db.commit()


def test_each_list_shows_the_50_largest_with_exact_totals_in_constant_queries(
    app, client, db, login, run_jobs, stripe_emulator
):
    buyer = make_buyer(db)
    # A small page first: one artist to pay, one waiting on a payout in transit.
    few = [make_artist(db, display_name=f"Few {i}") for i in range(2)]
    few_ids = sell_to(db, buyer, few, [5000, 6000], run_jobs)
    open_accounts(db, few_ids)
    first_order = db.scalar(select(Order.id).order_by(Order.id))
    put_in_transit(db, few_ids[1:], [4000], first_order)
    login(make_admin(db))
    html, small = admin_page(app, client)
    assert len(rows(html, "upcoming")) == 1
    assert len(rows(html, "in-transit")) == 1

    many = [make_artist(db, display_name=f"Many {i:02d}") for i in range(MANY)]
    prices = [2000 + 125 * ((i * 37) % MANY) for i in range(MANY)]  # shuffled, all distinct
    many_ids = sell_to(db, buyer, many, prices, run_jobs)
    owed = {aid: balances(db, aid).available_minor for aid in many_ids}
    assert sorted(owed.values()) == sorted(p * 4 // 5 for p in prices)
    few_owed = {aid: balances(db, aid).available_minor for aid in few_ids}

    # Nobody of the many has set up payouts: they all wait.
    html, count = admin_page(app, client)
    assert count == small
    waiting = rows(html, "waiting")
    assert len(waiting) == 50
    amounts = [
        int(a.replace(",", "").replace(".", ""))
        for a in re.findall(r"\$([\d,.]+)", "".join(waiting))
    ]
    assert amounts == sorted(amounts, reverse=True)
    assert amounts[0] == max(owed.values())
    assert f"{MANY + 1 - 50} more artists waiting" in html  # the many and Few 1
    waiting_total = sum(owed.values()) + few_owed[few_ids[1]]
    totals = table(html, "upcoming-totals")
    assert (
        f"<td>USD</td><td>1</td><td>{usd(few_owed[few_ids[0]])}</td><td>1</td>"
        f"<td>{MANY + 1}</td><td>{usd(waiting_total)}</td>"
    ) in totals

    # They all set up payouts: a run would pay them all.
    open_accounts(db, many_ids)
    html, count = admin_page(app, client)
    assert count == small
    upcoming = rows(html, "upcoming")
    assert len(upcoming) == 50
    assert usd(max(owed.values())) in upcoming[0]
    assert f"{MANY + 1 - 50} more artists to pay" in html
    paying = sum(owed.values()) + few_owed[few_ids[0]]
    assert (
        f"<td>USD</td><td>{MANY + 1}</td><td>{usd(paying)}</td><td>{MANY + 1}</td>"
        f"<td>1</td><td>{usd(few_owed[few_ids[1]])}</td>"
    ) in table(html, "upcoming-totals")

    # Each has a payout in transit: they wait again, and the in-transit list is cut too.
    in_transit = [5000 + 10 * i for i in range(MANY)]  # each more than Few 1's
    put_in_transit(db, many_ids, in_transit, first_order)
    html, count = admin_page(app, client)
    assert count == small
    transit = rows(html, "in-transit")
    assert len(transit) == 50
    assert usd(max(in_transit)) in transit[0]
    assert usd(sorted(in_transit)[-50]) in transit[-1]
    assert f"{MANY + 1 - 50} more payouts in transit" in html
    assert f"<td>USD</td><td>{MANY + 1}</td><td>{usd(sum(in_transit) + 4000)}</td>" in table(
        html, "in-transit-totals"
    )
    assert len(rows(html, "waiting")) == 50
