"""Statements are personal financial records and Stripe's onboarding and dashboard links are
bearer credentials: no cache (shared, disk or back/forward) may keep either."""

from __future__ import annotations

import pytest

from marketplace.db import utcnow
from tests.factories import make_api_token, make_artist, make_buyer
from tests.payouts.support import onboard, sell

NO_STORE = "private, no-store"
THIS_MONTH = f"{utcnow():%Y-%m}"


@pytest.fixture
def app_config(stripe_config):
    return {**stripe_config, "PAYOUT_HOLD_DAYS": 0, "PAYOUT_MINIMUM_MINOR": 1000}


def test_statement_downloads_are_not_stored(client, db, login, run_jobs, stripe_emulator):
    ada = make_artist(db)
    sell(db, make_buyer(db), ada, 1250, run_jobs)
    login(ada)
    for fmt in ("csv", "pdf"):
        response = client.get(f"/artists/payouts/statements/{THIS_MONTH}.{fmt}")
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == NO_STORE


def test_the_api_statement_is_not_stored(client, db, run_jobs, stripe_emulator):
    ada = make_artist(db)
    sell(db, make_buyer(db), ada, 1250, run_jobs)
    token = make_api_token(db, ada)
    response = client.get(
        f"/api/v1/artist/statements/{THIS_MONTH}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == NO_STORE


def test_redirects_to_stripe_links_are_not_stored(client, db, login, stripe_emulator):
    ada = make_artist(db)
    login(ada)
    started = client.post("/artists/payouts/onboard")
    assert started.status_code == 303
    assert started.headers["Cache-Control"] == NO_STORE
    again = client.get("/artists/payouts/refresh")
    assert again.status_code == 303
    assert again.headers["Cache-Control"] == NO_STORE

    ben = make_artist(db)
    onboard(db, ben, stripe_emulator)
    login(ben)
    dashboard = client.post("/artists/payouts/stripe-dashboard")
    assert dashboard.status_code == 303
    assert dashboard.headers["Location"].startswith(stripe_emulator.url)
    assert dashboard.headers["Cache-Control"] == NO_STORE
