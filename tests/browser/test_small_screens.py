"""In Chromium at a phone's width (390 px): results come first and nothing scrolls sideways."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from marketplace.artists import services as artists
from marketplace.artists.models import TermsKind
from marketplace.artists.terms import TermsSpec
from marketplace.db import get_database, transaction
from marketplace.optout import services as optout
from marketplace.optout.models import RuleKind
from tests import images
from tests.catalog.test_search import make_stock
from tests.conftest import PASSWORD
from tests.factories import make_api_token, make_artist, make_buyer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
LONG_URL = "https://collections.example.org/objects/" + "very-long-path-segment-" * 6 + "1"
SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def log_in(page: Page, email: str) -> None:
    page.goto("/accounts/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def assert_no_sideways_scroll(page: Page) -> None:
    assert page.evaluate(SIDEWAYS) == 0, page.url


def test_catalog_results_come_before_the_filters_on_a_phone(
    page: Page, live_server: tuple[Flask, str]
) -> None:
    app, _ = live_server
    session = get_database(app).sessions()
    session.info["app"] = app
    for n in range(6):
        make_stock(session, f"Harbour view {n}", page_url=LONG_URL, year_start=1850 + n)
    session.close()
    page.set_viewport_size(PHONE)

    page.goto("/catalog?q=harbour")
    results = page.get_by_role("list", name="Search results")
    first = results.get_by_role("listitem").first
    expect(first).to_be_visible()
    assert first.bounding_box()["y"] < PHONE["height"]  # in the first screen, not 1,800 px down
    filters = page.get_by_role("complementary", name="Filters")
    expect(filters).to_be_hidden()
    toggle = page.get_by_role("button", name="Filters", exact=True)
    expect(toggle).to_have_attribute("aria-expanded", "false")
    assert_no_sideways_scroll(page)

    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    filters.get_by_label("From").fill("1853")
    filters.get_by_role("button", name="Apply filters").click()
    expect(results.get_by_role("listitem")).to_have_count(3)

    # A bad value keeps the filters open, with the message beside the field.
    page.goto("/catalog?q=harbour&year_from=abc")
    expect(filters).to_be_visible()
    expect(filters.get_by_text("From year must be a whole number")).to_be_visible()
    assert_no_sideways_scroll(page)

    page.get_by_role("link", name="Harbour view 0").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Harbour view 0")
    assert_no_sideways_scroll(page)


def test_work_page_opt_outs_and_tokens_fit_a_phone(
    page: Page, live_server: tuple[Flask, str]
) -> None:
    app, _ = live_server
    session = get_database(app).sessions()
    session.info["app"] = app
    artist = make_artist(session, email="ines@studio.example")
    make_api_token(session, artist, name="my nightly export to the archive")
    with app.app_context(), transaction(session):
        owner = session.merge(artist)
        work = artists.register_work(
            session,
            owner.artist,
            owner,
            images.png(7, (400, 300)),
            title="Harbour at dawn",
            terms=TermsSpec(TermsKind.DONATE),
        )
        optout.register_address(session, owner, RuleKind.URL, LONG_URL, label="old portfolio")
        work_id = work.id
    buyer = make_buyer(session, email="dana@lab.example")
    make_api_token(session, buyer, name="training pipeline, production cluster")
    session.close()
    page.set_viewport_size(PHONE)

    log_in(page, "ines@studio.example")
    page.goto(f"/artists/works/{work_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Harbour at dawn")
    assert_no_sideways_scroll(page)  # the SHA-256 wraps
    page.goto("/optout/")
    expect(page.get_by_role("cell", name="old portfolio")).to_be_visible()
    assert_no_sideways_scroll(page)
    page.goto("/accounts/tokens")
    expect(page.get_by_text("my nightly export to the archive")).to_be_visible()
    assert_no_sideways_scroll(page)

    page.get_by_role("button", name="Log out").click()
    log_in(page, "dana@lab.example")
    page.goto("/accounts/tokens")
    expect(page.get_by_text("training pipeline, production cluster")).to_be_visible()
    assert_no_sideways_scroll(page)
