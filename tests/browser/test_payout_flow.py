"""In Chromium, the payouts issue's "done when": an artist onboards with Stripe (the emulator's
hosted onboarding), a buyer pays for a bundle with her work, the holding period is shortened by
configuration, an administrator starts a payout run, and the artist's page and monthly
statement show the transfer."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from marketplace.db import get_database, utcnow
from tests.browser.conftest import run_queued_jobs
from tests.buyers.support import bundle, licence, work_item
from tests.conftest import PASSWORD
from tests.factories import make_admin, make_artist, make_buyer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def app_config(stripe_config):
    return {**stripe_config, "PAYOUT_HOLD_DAYS": 0}  # the holding period, shortened


def log_in(page: Page, email: str) -> None:
    page.context.clear_cookies()
    page.goto("/accounts/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_an_artist_onboards_is_paid_by_a_run_and_sees_it_on_her_statement(
    page: Page, live_server: tuple[Flask, str], stripe_webhooks
) -> None:
    app, base_url = live_server
    stripe_webhooks(f"{base_url}/webhooks/stripe", app.config["STRIPE_WEBHOOK_SECRET"])
    session = get_database(app).sessions()
    session.info["app"] = app
    artist = make_artist(session, email="ada@example.com", display_name="Ada Okafor")
    buyer = make_buyer(session, email="dana@lab.example")
    make_admin(session, email="root@example.com")
    item = work_item(session, artist, licence(1250), title="Harbour at dawn")
    bundle_id = bundle(session, buyer, [item], name="Harbours")
    session.close()
    run_queued_jobs(app)

    # The artist connects payouts: Stripe's hosted onboarding (the emulator's) and back.
    log_in(page, "ada@example.com")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Payouts").click()
    page.get_by_role("button", name="Set up payouts with Stripe").click()
    expect(page.get_by_test_id("account-state")).to_contain_text("Payouts enabled")

    # A buyer pays for a bundle with her work, with the test card.
    log_in(page, "dana@lab.example")
    page.goto(f"/bundles/{bundle_id}")
    page.get_by_test_id("checkout").click()
    expect(page.get_by_test_id("pay-total")).to_have_text("$12.50")
    element = page.get_by_test_id("payment-element")
    element.locator("[data-stripe-field=number]").fill("4242 4242 4242 4242")
    element.locator("[data-stripe-field=expiry]").fill("12 / 34")
    element.locator("[data-stripe-field=cvc]").fill("123")
    page.get_by_test_id("pay").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Order #1")
    run_queued_jobs(app)

    # An administrator sees who the next run pays, and starts it.
    log_in(page, "root@example.com")
    page.goto("/admin/payouts")
    expect(page.get_by_test_id("upcoming")).to_contain_text("Ada Okafor")
    expect(page.get_by_test_id("upcoming")).to_contain_text("$10.00")
    page.get_by_role("button", name="Start a payout run now").click()
    run_queued_jobs(app)
    page.goto("/admin/payouts")
    expect(page.get_by_test_id("runs")).to_contain_text("$10.00")

    # The artist sees the payout, its Stripe transfer, and her statement.
    log_in(page, "ada@example.com")
    page.goto("/artists/payouts")
    expect(page.get_by_test_id("paid")).to_have_text("$10.00")
    expect(page.get_by_test_id("available")).to_have_text("$0.00")
    expect(page.get_by_test_id("payout-status")).to_have_text("paid")
    transfer_id = page.get_by_test_id("payout").locator("code").first.inner_text()
    assert transfer_id.startswith("tr_")
    month = utcnow().strftime("%Y-%m")
    with page.expect_download() as download:
        page.get_by_test_id("statements").get_by_role("link", name="CSV").click()
    text = Path(download.value.path()).read_text()
    rows = list(csv.reader(io.StringIO(text)))
    flat = "\n".join(",".join(row) for row in rows)
    assert month in flat
    assert "10.00" in flat  # the share earned, and the same moved out to the transfer
    assert transfer_id in flat
