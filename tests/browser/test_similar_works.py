"""In Chromium: a visitor finds works by uploading a picture, then follows the similar-works
strip from one work to its copy."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from marketplace.db import get_database
from tests import images
from tests.catalog.test_similar import stock_with_image

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_find_similar_by_image_and_follow_the_strip(
    page: Page, live_server: tuple[Flask, str]
) -> None:
    app, _base_url = live_server
    session = get_database(app).sessions()
    session.info["app"] = app
    picture = images.noise(100)
    original = stock_with_image(session, "Harbour at dawn", images.encode(picture, "PNG"))
    copy = stock_with_image(
        session, "Harbour, reprint", images.encode(picture.resize((240, 192)), "JPEG")
    )
    stock_with_image(session, "Mountain pass", images.png(200))
    session.close()

    page.goto("/catalog")
    page.get_by_label("Find similar works by image").set_input_files(
        files=[
            {
                "name": "my-harbour.jpg",
                "mimeType": "image/jpeg",
                "buffer": images.encode(picture, "JPEG", quality=75),
            }
        ]
    )
    page.get_by_role("button", name="Find similar", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Works similar to your image")
    expect(page.get_by_role("status")).to_have_text("2 similar works")
    results = page.get_by_role("list", name="Similar works")
    expect(results.get_by_role("listitem")).to_have_count(2)
    expect(results.get_by_text("Mountain pass")).to_have_count(0)
    thumbnail = results.get_by_role("img", name="Harbour at dawn")
    expect(thumbnail).to_be_visible()
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth > 0")

    results.get_by_role("link", name="Harbour at dawn").click()
    expect(page).to_have_url(f"{live_server[1]}/catalog/items/{original.id}")
    strip = page.get_by_role("list", name="Similar works")
    expect(strip.get_by_role("listitem")).to_have_count(1)
    strip.get_by_role("link", name="Harbour, reprint").click()
    expect(page).to_have_url(f"{live_server[1]}/catalog/items/{copy.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Harbour, reprint")

    # A file that is not an image: the form says so beside the field.
    page.goto("/catalog")
    page.get_by_label("Find similar works by image").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}]
    )
    page.get_by_role("button", name="Find similar", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("notes.txt is not a PNG, JPEG, WebP or TIFF")
