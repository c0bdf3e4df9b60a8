"""In Chromium: a buyer searches the catalog, filters it and saves the results to a collection."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from marketplace.db import get_database
from tests.browser.conftest import run_queued_jobs
from tests.catalog.test_search import make_stock
from tests.conftest import PASSWORD
from tests.factories import make_buyer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_search_filter_and_save_results_into_a_collection(
    page: Page, live_server: tuple[Flask, str]
) -> None:
    app, _base_url = live_server
    session = get_database(app).sessions()
    session.info["app"] = app
    buyer = make_buyer(session, email="dana@lab.example")
    for n in range(4):
        make_stock(
            session,
            f"Harbour view {n}",
            source="cleveland",
            institution="Cleveland Museum of Art",
            year_start=1850 + n,
        )
    make_stock(session, "Harbour at night", source="met", year_start=1900)
    make_stock(session, "Mountain pass", source="cleveland", year_start=1860)
    session.close()

    page.goto("/accounts/login")
    page.get_by_label("Email").fill(buyer.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Collections").click()
    page.get_by_label("Collection name").fill("Harbours for training")
    page.get_by_role("button", name="Create collection").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Harbours for training")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalog").click()
    page.get_by_role("searchbox", name="Search the catalog").fill("harbour")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status").filter(has_text="works")).to_have_text("5 works")
    results = page.get_by_role("list", name="Search results")
    expect(results.get_by_role("listitem")).to_have_count(5)

    filters = page.get_by_role("complementary", name="Filters")
    filters.get_by_label("cleveland (4)").check()
    filters.get_by_label("From").fill("1851")
    filters.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_role("status").filter(has_text="works")).to_have_text("3 works")
    expect(results.get_by_text("Harbour at night")).to_have_count(0)

    page.get_by_label("Save all results to").select_option(label="Harbours for training")
    page.get_by_role("button", name="Save all results").click()
    expect(page.get_by_text("Adding every result to “Harbours for training”")).to_be_visible()
    run_queued_jobs(app)
    page.reload()
    expect(page.get_by_text("3 added of 3 matches")).to_be_visible()
    saved = page.get_by_role("list", name="Works in the collection")
    for n in (1, 2, 3):
        expect(saved.get_by_text(f"Harbour view {n}")).to_be_visible()
    expect(saved.get_by_text("Harbour view 0")).to_have_count(0)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalog").click()
    page.get_by_role("searchbox", name="Search the catalog").fill("night")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Harbour at night").click()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Added to “Harbours for training”.")).to_be_visible()
