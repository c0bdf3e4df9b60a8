"""A double click on "Set up payouts" on PostgreSQL: two requests open the artist's Stripe
account at once. Both answer with Stripe's onboarding link, and the artist has one account,
here and at Stripe."""

from __future__ import annotations

import contextlib
import threading
import uuid

import pytest
from sqlalchemy import func, select

from marketplace.payments import gateway
from marketplace.payouts import services as payouts
from marketplace.payouts.models import PayoutAccount
from tests.conftest import PASSWORD
from tests.factories import make_artist


@pytest.fixture
def database_url(postgres_database_url):
    """PostgreSQL: the race needs its row locks."""
    return postgres_database_url


@pytest.fixture
def app_config(stripe_config):
    return stripe_config


def logged_in(app, user):
    device = app.test_client()
    response = device.post("/accounts/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return device


def test_two_set_up_requests_at_once_both_succeed_with_one_account(
    app, db, stripe_emulator, monkeypatch
):
    email = f"race-{uuid.uuid4().hex[:12]}@example.com"
    ada = make_artist(db, email=email)
    devices = [logged_in(app, ada), logged_in(app, ada)]

    # Both requests have Stripe's account before either records it (as two requests at once
    # can); a request that waits for the artist's row lock first just finds the barrier broken.
    barrier = threading.Barrier(2, timeout=3)
    one_call = threading.Lock()
    create = payouts.payments.create_connected_account

    def in_step(**kwargs):
        with one_call:  # Stripe answers 409 to the same key while its first call runs
            info = create(**kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return info

    monkeypatch.setattr(payouts.payments, "create_connected_account", in_step)
    answers: dict[int, object] = {}

    def click(n):
        answers[n] = devices[n].post("/artists/payouts/onboard")

    threads = [threading.Thread(target=click, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(answers[n].status_code for n in range(2))
    assert statuses == [303, 303], [answers[n].get_data(as_text=True)[:500] for n in range(2)]
    for n in range(2):
        assert answers[n].headers["Location"].startswith(stripe_emulator.url + "/_onboarding/")
    db.rollback()
    assert db.scalar(select(func.count()).select_from(PayoutAccount)) == 1
    with app.app_context():
        at_stripe = [
            a.id
            for a in gateway._client().v1.accounts.list(params={"limit": 100}).auto_paging_iter()
            if a.email == email
        ]
    assert at_stripe == [db.scalar(select(PayoutAccount.stripe_account_id))]
