"""The artist's payouts pages against the Stripe emulator: connecting Stripe, what they see
of their money after sales, runs and refunds, and that they see only their own."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from marketplace.payouts.models import Payout, PayoutAccount
from tests.factories import make_artist, make_buyer
from tests.payouts.support import artist_id, onboard, refund, run, sell


@pytest.fixture
def app_config(stripe_config):
    return {**stripe_config, "PAYOUT_HOLD_DAYS": 0, "PAYOUT_MINIMUM_MINOR": 1000}


def text(response) -> str:
    return response.get_data(as_text=True)


def test_an_artist_connects_stripe_from_the_payouts_page(client, db, login, stripe_emulator):
    ada = make_artist(db)
    login(ada)
    page = text(client.get("/artists/payouts"))
    assert "Set up payouts with Stripe" in page
    assert "accrue" in page  # earnings accrue before onboarding

    started = client.post("/artists/payouts/onboard")
    assert started.status_code == 303
    link = started.headers["Location"]
    assert link.startswith(stripe_emulator.url + "/_onboarding/acctlink_")
    account = db.scalar(select(PayoutAccount))
    assert account.artist_id == artist_id(db, ada)
    assert not account.payouts_enabled

    back = stripe_emulator.visit_onboarding_link(link)
    assert urlsplit(back).path == "/artists/payouts/return"
    returned = client.get(urlsplit(back).path, follow_redirects=True)
    assert "Payouts are enabled" in text(returned)
    assert "Open your Stripe Express dashboard" in text(returned)
    db.expire_all()
    assert db.scalar(select(PayoutAccount)).payouts_enabled

    dashboard = client.post("/artists/payouts/stripe-dashboard")
    assert dashboard.status_code == 303
    assert f"/_express/{account.stripe_account_id}" in dashboard.headers["Location"]


def test_an_expired_link_brings_a_fresh_one(client, db, login, stripe_emulator):
    login(make_artist(db))
    first = client.post("/artists/payouts/onboard").headers["Location"]
    stripe_emulator.visit_onboarding_link(first)  # used: Stripe would send them to refresh_url
    fresh = client.get("/artists/payouts/refresh")
    assert fresh.status_code == 303
    assert fresh.headers["Location"] != first
    assert "/_onboarding/acctlink_" in fresh.headers["Location"]
    assert len(db.scalars(select(PayoutAccount)).all()) == 1


def test_unfinished_onboarding_says_what_stripe_needs(client, db, login, stripe_emulator):
    login(make_artist(db))
    client.post("/artists/payouts/onboard")
    returned = client.get("/artists/payouts/return", follow_redirects=True)
    assert "Stripe still needs" in text(returned) or "reviewing" in text(returned)
    assert "Onboarding not finished" in text(returned)
    refused = client.post("/artists/payouts/stripe-dashboard", follow_redirects=True)
    assert "Finish setting up payouts first" in text(refused)


def test_the_dashboard_after_a_sale_a_run_and_a_reversed_refund(
    client, db, login, run_jobs, stripe_emulator
):
    ada, buyer = make_artist(db), make_buyer(db, organization_name="Acme Vision Labs")
    onboard(db, ada, stripe_emulator)
    first = sell(db, buyer, ada, 2500, run_jobs)  # 20.00 to Ada
    login(ada)
    page = text(client.get("/artists/payouts"))
    assert re.search(r'data-testid="available">\$20\.00<', page)

    assert run(db).paid == 1
    page = text(client.get("/artists/payouts"))
    assert re.search(r'data-testid="paid">\$20\.00<', page)
    assert re.search(r'data-testid="available">\$0\.00<', page)
    transfer_id = re.search(r"<code>(tr_\w+)</code>", page).group(1)

    refund(db, first, 1250)  # half: 10.00 of Ada's share comes back by reversal
    run_jobs()
    db.rollback()
    page = text(client.get("/artists/payouts"))
    assert transfer_id in page
    assert re.search(r"reversed, <code>trr_\w+</code>", page)
    assert re.search(r'data-testid="paid">\$10\.00<', page)
    assert re.search(r'data-testid="reversed">\$10\.00<', page)

    earnings = text(client.get("/artists/earnings"))
    assert "Acme Vision Labs" in earnings
    assert f"#{first}" in earnings
    assert "$20.00" in earnings
    assert "$10.00" in earnings


def test_a_refund_stripe_cannot_reverse_shows_as_owed_back(
    client, db, login, run_jobs, stripe_emulator
):
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    order_id = sell(db, buyer, ada, 2500, run_jobs)
    assert run(db).paid == 1
    stripe_emulator.set_balance(account, 0)  # Ada already withdrew it
    refund(db, order_id)
    run_jobs()
    db.rollback()
    login(ada)
    page = text(client.get("/artists/payouts"))
    assert re.search(r'data-testid="owed-back">\$20\.00<', page)
    assert 'data-testid="owed-back-note"' in page
    assert 'data-testid="failed-reversals"' in page
    assert "Stripe could not reverse it" in page
    orders = text(client.get("/artists/earnings"))
    assert "owed back" in orders


def test_a_failed_reversal_a_later_payout_netted_is_shown_settled_not_owed(
    client, db, login, run_jobs, stripe_emulator
):
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    order_id = sell(db, buyer, ada, 2500, run_jobs)  # 20.00
    assert run(db).paid == 1
    stripe_emulator.set_balance(account, 0)  # Ada already withdrew it: the reversal fails
    refund(db, order_id)
    run_jobs()
    db.rollback()
    login(ada)
    page = text(client.get("/artists/payouts"))
    owed = re.search(r'data-testid="failed-reversals">(.*?)</div>', page, re.S)
    assert owed
    assert f"order #{order_id}, $20.00" in owed.group(1)

    sell(db, buyer, ada, 3750, run_jobs)  # 30.00: the next payout deducts the 20.00
    assert run(db).paid == 1
    netted = db.scalar(select(Payout.id).order_by(Payout.id.desc()).limit(1))
    assert db.get(Payout, netted).amount_minor == 1000
    page = text(client.get("/artists/payouts"))
    assert 'data-testid="failed-reversals"' not in page
    assert re.search(r'data-testid="owed-back"', page) is None
    settled = re.search(r'data-testid="settled-reversals">(.*?)</div>', page, re.S)
    assert settled, page
    assert f"order #{order_id}, $20.00" in settled.group(1)
    assert f"deducted from payout #{netted}" in settled.group(1)


def test_a_failed_payout_is_shown_with_stripes_message(
    client, db, login, run_jobs, stripe_emulator
):
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    sell(db, buyer, ada, 1250, run_jobs)
    stripe_emulator.restrict_account(account)
    assert run(db).failed == 1
    login(ada)
    page = text(client.get("/artists/payouts"))
    assert 'data-testid="payout-failure"' in page
    assert "Your balance is intact" in page
    assert re.search(r'data-testid="available">\$10\.00<', page)
    synced = text(client.get("/artists/payouts/return", follow_redirects=True))
    assert "Stripe still needs" in synced
    assert "Stripe has restricted payouts to your account" in synced


def test_an_artist_sees_only_their_own_money(client, db, login, run_jobs, stripe_emulator):
    ada, ben, buyer = make_artist(db), make_artist(db), make_buyer(db)
    onboard(db, ada, stripe_emulator)
    sell(db, buyer, ada, 2500, run_jobs)
    run(db)
    login(ben)
    page = text(client.get("/artists/payouts"))
    assert "$20.00" not in page
    assert "tr_" not in page
    assert "No earnings yet" in page
    assert "Acme" not in text(client.get("/artists/earnings"))
    assert "$20.00" not in text(client.get("/artists/earnings"))


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/artists/payouts"),
        ("get", "/artists/earnings"),
        ("get", "/artists/earnings/orders"),
        ("get", "/artists/payouts/history"),
        ("get", "/artists/payouts/refresh"),
        ("get", "/artists/payouts/return"),
        ("post", "/artists/payouts/onboard"),
        ("post", "/artists/payouts/stripe-dashboard"),
        ("get", "/artists/payouts/statements/2026-01.csv"),
    ],
)
def test_buyers_are_refused_and_strangers_sent_to_log_in(client, db, login, method, url):
    anonymous = getattr(client, method)(url)
    assert anonymous.status_code == 302
    assert "/accounts/login" in anonymous.headers["Location"]
    login(make_buyer(db))
    assert getattr(client, method)(url).status_code == 403


def test_a_forged_cursor_is_a_400(client, db, login):
    login(make_artist(db))
    assert client.get("/artists/earnings/orders?cursor=eyJhZnRlciI6MX0").status_code == 400


def test_posts_need_the_csrf_token(database_url, tmp_path, stripe_config, db):
    from tests.conftest import PASSWORD, make_test_app

    app = make_test_app(database_url, tmp_path, WTF_CSRF_ENABLED=True, **stripe_config)
    ada = make_artist(db)
    web = app.test_client()
    login_page = web.get("/accounts/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    web.post(
        "/accounts/login", data={"email": ada.email, "password": PASSWORD, "csrf_token": token}
    )
    for url in ("/artists/payouts/onboard", "/artists/payouts/stripe-dashboard"):
        assert web.post(url).status_code == 400
    page = web.get("/artists/payouts").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert web.post("/artists/payouts/onboard", data={"csrf_token": token}).status_code == 303


def test_long_lists_come_in_pages_newest_first(app, client, db, login, run_jobs, stripe_emulator):
    from marketplace import cursors
    from marketplace.payouts import earnings

    ada, buyer = make_artist(db), make_buyer(db)
    orders = [sell(db, buyer, ada, 1250, run_jobs) for _ in range(3)]
    ada_id = artist_id(db, ada)
    with app.app_context():
        first = earnings.by_order(db, ada_id, limit=2)
        second = earnings.by_order(db, ada_id, after=first.next_after, limit=2)
        works = earnings.by_work(db, ada_id, limit=2)
        more_works = earnings.by_work(db, ada_id, after=works.next_after, limit=2)
        cursor = cursors.encode_after("payouts-orders", first.next_after)
    db.rollback()
    assert [o.order_id for o in first.items] == orders[:0:-1]
    assert first.next_after == orders[1]
    assert [o.order_id for o in second.items] == [orders[0]]
    assert second.next_after is None
    assert len(works.items) == 2
    assert len(more_works.items) == 1
    assert more_works.next_after is None
    assert {w.share_minor for w in works.items + more_works.items} == {1000}
    login(ada)
    page = text(client.get(f"/artists/earnings/orders?cursor={cursor}"))
    assert f"#{orders[0]}" in page
    assert f"#{orders[2]}" not in page


def test_stripe_out_of_reach_is_a_message_not_a_500(database_url, tmp_path, stripe_config, db):
    from tests.conftest import PASSWORD, make_test_app

    dead = {**stripe_config, "STRIPE_API_BASE": "http://127.0.0.1:9"}  # nothing listens there
    app = make_test_app(database_url, tmp_path, **dead)
    ada = make_artist(db)
    web = app.test_client()
    web.post("/accounts/login", data={"email": ada.email, "password": PASSWORD})
    response = web.post("/artists/payouts/onboard", follow_redirects=True)
    assert response.status_code == 200
    assert "Stripe cannot be reached right now" in response.get_data(as_text=True)
    assert db.scalar(select(PayoutAccount)) is None
