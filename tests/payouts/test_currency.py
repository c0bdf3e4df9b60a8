"""A marketplace whose currency is not the dollar: the artist's payouts page, a failed
reversal, the admin's run message and the runs table all speak euros, never dollars."""

from __future__ import annotations

import re

import pytest

from tests.factories import make_admin, make_artist, make_buyer
from tests.payouts.support import onboard, refund, run, sell


@pytest.fixture
def app_config(stripe_config):
    return {
        **stripe_config,
        "DEFAULT_CURRENCY": "eur",
        "PAYOUT_HOLD_DAYS": 0,
        "PAYOUT_MINIMUM_MINOR": 1000,
        "REDIS_URL": None,  # the admin's run button runs the run in the request
        "RATELIMIT_STORAGE_URI": "memory://",
    }


def no_dollars(html: str) -> None:
    main = html.split("<main", 1)[-1].split("</main>", 1)[0]
    assert "$" not in main, re.findall(r".{60}\$.{60}", main)
    # "USD" as a word: Stripe's random ids (tr_WNUGKTKRGHXUSD) may hold the letters.
    assert not re.search(r"\bUSD\b", main, re.IGNORECASE), re.findall(r".{60}USD.{60}", main)


def test_an_artist_paid_in_euros_sees_no_dollars(client, db, login, run_jobs, stripe_emulator):
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    login(ada)
    before = client.get("/artists/payouts").get_data(as_text=True)
    assert "€10.00" in before  # the minimum payout, before any sale
    no_dollars(before)

    order_id = sell(db, buyer, ada, 2500, run_jobs)  # €20.00 to Ada
    assert run(db).paid == 1
    stripe_emulator.set_balance(account, 0, "eur")  # the reversal of the refund will fail
    refund(db, order_id)
    run_jobs()
    db.rollback()
    page = client.get("/artists/payouts").get_data(as_text=True)
    owed = re.search(r'data-testid="failed-reversals">(.*?)</div>', page, re.S)
    assert owed
    assert "€20.00" in owed.group(1)
    no_dollars(page)


def test_the_admins_run_message_and_runs_table_speak_euros(
    client, db, login, run_jobs, stripe_emulator
):
    ada, buyer = make_artist(db, display_name="Ada"), make_buyer(db)
    onboard(db, ada, stripe_emulator)
    sell(db, buyer, ada, 1250, run_jobs)  # €10.00
    login(make_admin(db))
    done = client.post("/admin/payouts/run", follow_redirects=True)
    html = done.get_data(as_text=True)
    assert re.search(r"Payout run \d+ finished: 1 paid \(€10\.00\)", html), html
    runs = re.search(r'data-testid="runs">(.*?)</table>', html, re.S)
    assert runs
    assert "€10.00" in runs.group(1)
    no_dollars(html)
