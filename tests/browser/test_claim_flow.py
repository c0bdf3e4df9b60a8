"""In Chromium: a visitor reports a work from its page; an administrator accepts the claim and
the work leaves the catalog."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from marketplace.artists import services
from marketplace.artists.models import TermsKind
from marketplace.artists.terms import TermsSpec
from marketplace.catalog.models import CatalogItem
from marketplace.db import get_database, transaction
from marketplace.governance.models import Claim, ClaimStatus
from tests import images
from tests.browser.conftest import run_queued_jobs
from tests.conftest import PASSWORD
from tests.factories import make_admin, make_artist

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_claim_filed_in_the_browser_is_accepted_by_an_admin(
    page: Page, live_server: tuple[Flask, str]
) -> None:
    app, _base_url = live_server
    session = get_database(app).sessions()
    session.info["app"] = app
    artist = make_artist(session, display_name="Uploader")
    admin = make_admin(session, email="admin@example.com")
    with app.app_context(), transaction() as tx:
        owner = tx.merge(artist)
        work = services.register_work(
            tx,
            owner.artist,
            owner,
            images.png(9),
            title="Copied heron",
            terms=TermsSpec(TermsKind.DONATE),
        )
        work_id = work.id
    session.close()
    run_queued_jobs(app)
    with get_database(app).sessions() as check:
        item_id = check.scalar(select(CatalogItem.id).where(CatalogItem.work_id == work_id))

    page.goto(f"/catalog/items/{item_id}")
    page.get_by_role("link", name="Report this item").click()
    page.get_by_label("This is my work (the uploader is not its author)").check()
    page.get_by_label("Your name").fill("Ada Painter")
    page.get_by_label("Your email (we send a link to follow the claim)").fill("ada@example.org")
    page.get_by_label("Explain the claim").fill("I painted this heron in 2019; see my site.")
    page.get_by_role("button", name="Send claim").click()
    expect(page.get_by_text("We emailed you a link to follow it")).to_be_visible()
    expect(page.get_by_test_id("claim-status")).to_have_text("Waiting for review")

    page.context.clear_cookies()
    page.goto("/accounts/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto("/admin/claims")
    with get_database(app).sessions() as check:
        claim_id = check.scalar(select(Claim.id))
    page.get_by_role("link", name=f"#{claim_id}").click()
    page.locator("#accept-reason").fill("The claimant's site shows it in 2019.")
    page.get_by_role("button", name="Accept and take down").click()
    expect(page.get_by_text("the item was taken down")).to_be_visible()
    expect(page.get_by_test_id("claim-status")).to_have_text("accepted")

    with get_database(app).sessions() as check:
        assert check.scalar(select(Claim.status)) is ClaimStatus.ACCEPTED
        assert check.get(CatalogItem, item_id).taken_down_at is not None
    assert page.goto(f"/catalog/items/{item_id}").status == 404
