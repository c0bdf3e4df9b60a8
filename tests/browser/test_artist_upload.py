"""In Chromium: an artist uploads three images in one batch, prices them, and sees thumbnails."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from marketplace.artists.models import TermsKind, Work
from marketplace.db import get_database
from tests import images
from tests.browser.conftest import run_queued_jobs
from tests.conftest import PASSWORD
from tests.factories import make_artist

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The image's natural width once it has loaded (0 if it failed), waiting for it if need be.
LOADED_WIDTH = """img => img.complete ? img.naturalWidth : new Promise(done => {
  img.addEventListener("load", () => done(img.naturalWidth));
  img.addEventListener("error", () => done(0));
})"""


def test_batch_upload_then_price_and_uses_then_thumbnails(
    page: Page, live_server: tuple[Flask, str], tmp_path
) -> None:
    app, _base_url = live_server
    session = get_database(app).sessions()
    session.info["app"] = app
    artist = make_artist(session, email="ines@example.com", display_name="Inès Duarte")
    session.close()

    files = []
    for seed, name in ((1, "harbour.png"), (2, "cliffs.jpg"), (3, "dunes.png")):
        path = tmp_path / name
        data = (
            images.jpeg(seed, (900, 600)) if name.endswith(".jpg") else images.png(seed, (900, 600))
        )
        path.write_bytes(data)
        files.append(str(path))

    page.goto("/accounts/login")
    page.get_by_label("Email").fill(artist.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Upload works").click()

    page.get_by_label("Images (JPEG, PNG, WebP or TIFF; up to 50 MB each)").set_input_files(files)
    page.get_by_label("License it for AI training at my price").check()
    page.get_by_label("Price per image per dataset sale").fill("4.20")
    expect(page.get_by_text("“4.20” reads as $4.20 per image per dataset sale.")).to_be_visible()
    page.get_by_label("Training generative models").check()
    page.get_by_label("Fine-tuning").check()
    page.get_by_label("Attribution required").check()
    page.get_by_role("button", name="Upload").click()

    results = page.get_by_role("list", name="Files")
    for name in ("harbour.png", "cliffs.jpg", "dunes.png"):
        expect(results.get_by_text(f"{name}: uploaded")).to_be_visible()
    run_queued_jobs(app)  # with Redis the thumbnails are RQ jobs

    page.get_by_role("link", name="Back to my works").click()
    grid = page.get_by_role("list", name="Your works")
    for title in ("harbour", "cliffs", "dunes"):
        thumbnail = grid.get_by_role("img", name=title)
        expect(thumbnail).to_be_visible()
        thumbnail.scroll_into_view_if_needed()
        loaded = thumbnail.evaluate(LOADED_WIDTH)
        assert loaded == 256, f"{title} thumbnail did not load"
    expect(grid.get_by_text("Licensed, $4.20 per image")).to_have_count(3)

    with get_database(app).sessions() as check:
        works = check.scalars(select(Work).order_by(Work.id)).all()
        assert [w.title for w in works] == ["harbour", "cliffs", "dunes"]
        for work in works:
            terms = work.current_terms
            assert terms is not None
            assert (terms.kind, terms.price_minor) == (TermsKind.LICENSE, 420)
            assert terms.generative_training
            assert terms.fine_tuning
            assert terms.attribution_required
            assert not terms.commercial_use
