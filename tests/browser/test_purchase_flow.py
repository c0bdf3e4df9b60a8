"""In Chromium: a buyer finds works, saves them, bundles licensed and public-domain works,
pays with the test card on the checkout page (the emulator's Stripe.js), sees the order paid,
then downloads a shard of the package and the certificate PDF, and the shard holds the images
the certificate vouches for."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from marketplace.db import get_database
from tests.browser.conftest import run_queued_jobs
from tests.buyers.support import DONATE, licence, stock_items, work_item
from tests.conftest import PASSWORD
from tests.factories import make_artist, make_buyer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def app_config(stripe_config):
    return stripe_config


def test_buyer_pays_for_a_mixed_bundle_with_the_test_card(
    page: Page,
    live_server: tuple[Flask, str],
    stripe_webhooks,
    tmp_path: Path,
) -> None:
    app, base_url = live_server
    stripe_webhooks(f"{base_url}/webhooks/stripe", app.config["STRIPE_WEBHOOK_SECRET"])
    session = get_database(app).sessions()
    session.info["app"] = app
    artist = make_artist(session, display_name="Ada Okafor")
    buyer = make_buyer(session, email="dana@lab.example")
    buyer_email = buyer.email
    work_item(session, artist, licence(1250), title="Harbour at dawn")
    work_item(session, artist, DONATE, title="Harbour gift")
    stock_items(session, tmp_path, 2, title="Harbour with ships")
    session.close()
    run_queued_jobs(app)

    page.goto("/accounts/login")
    page.get_by_label("Email").fill(buyer_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Collections").click()
    page.get_by_label("Collection name").fill("Harbours")
    page.get_by_role("button", name="Create collection").click()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalog").click()
    page.get_by_role("searchbox", name="Search the catalog").fill("harbour")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status").filter(has_text="works")).to_have_text("4 works")
    page.get_by_label("Save all results to").select_option(label="Harbours")
    page.get_by_role("button", name="Save all results").click()
    run_queued_jobs(app)
    page.reload()
    expect(page.get_by_text("4 added of 4 matches")).to_be_visible()

    page.get_by_role("link", name="Build a bundle").click()
    page.get_by_label("Name", exact=True).fill("Harbour training set")
    page.get_by_role("button", name="Build and check the bundle").click()
    run_queued_jobs(app)
    page.reload()
    expect(page.get_by_test_id("bundle-status")).to_contain_text("4 included, 0 left out")
    expect(page.get_by_test_id("quote-total")).to_have_text("$12.50")

    page.get_by_test_id("checkout").click()
    expect(page.get_by_test_id("pay-total")).to_have_text("$12.50")
    element = page.get_by_test_id("payment-element")
    element.locator("[data-stripe-field=number]").fill("4242 4242 4242 4242")
    element.locator("[data-stripe-field=expiry]").fill("12 / 34")
    element.locator("[data-stripe-field=cvc]").fill("123")
    page.get_by_test_id("pay").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Order #1")
    run_queued_jobs(app)
    page.reload()
    expect(page.get_by_test_id("order-status")).to_have_text("fulfilled")
    expect(page.get_by_text("1 licensed, 1 donated (CC0), 2 public domain")).to_be_visible()

    # The package job (queued by fulfilment) builds the shards and issues the certificate.
    run_queued_jobs(app)
    page.reload()
    with page.expect_download() as pdf_download:
        page.get_by_test_id("certificate-pdf").click()
    pdf = Path(pdf_download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert pdf_download.value.suggested_filename == "certificate-1.pdf"
    with page.expect_download() as json_download:
        page.get_by_test_id("certificate-json").click()
    certificate = json.loads(Path(json_download.value.path()).read_bytes())

    page.get_by_test_id("package-link").click()
    expect(page.get_by_test_id("package-ready")).to_contain_text("4 images in 1 WebDataset shards")
    with page.expect_download() as shard_download:
        page.get_by_role("link", name="order-1-00000.tar").click()
    shard = Path(shard_download.value.path()).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(shard)) as tar:
        images = {
            member.name.split(".")[0]: hashlib.sha256(tar.extractfile(member).read()).hexdigest()
            for member in tar.getmembers()
            if not member.name.endswith(".json")
        }
    vouched = {item["record"]["key"]: item["record"]["sha256"] for item in certificate["items"]}
    assert len(images) == 4
    assert images == vouched
