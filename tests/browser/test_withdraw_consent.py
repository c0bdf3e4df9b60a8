"""In Chromium: withdrawing consent asks first, on a page whose button looks dangerous."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from marketplace.artists import services
from marketplace.artists.models import TermsKind, Work, WorkStatus
from marketplace.artists.terms import TermsSpec
from marketplace.db import get_database, transaction
from tests import images
from tests.conftest import PASSWORD
from tests.factories import make_artist

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ERROR_RED = "rgb(180, 35, 24)"  # --error in app.css


def test_withdrawing_consent_takes_a_confirmation_on_a_red_button(
    page: Page, live_server: tuple[Flask, str]
) -> None:
    app, _base_url = live_server
    session = get_database(app).sessions()
    session.info["app"] = app
    artist = make_artist(session, email="ada@example.com", display_name="Ada Okafor")
    with app.app_context(), transaction() as tx:
        owner = tx.merge(artist)
        work = services.register_work(
            tx,
            owner.artist,
            owner,
            images.png(5),
            filename="harbour.png",
            terms=TermsSpec(TermsKind.DONATE),
        )
        work_id = work.id
    session.close()

    page.goto("/accounts/login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/artists/works/{work_id}")
    page.get_by_role("link", name="Withdraw consent…").click()

    expect(page.get_by_role("heading", name="Withdraw consent for “harbour”?")).to_be_visible()
    button = page.get_by_role("button", name="Withdraw consent")
    expect(button).to_have_css("background-color", ERROR_RED)
    with get_database(app).sessions() as check:
        assert check.scalar(select(Work.status)) is WorkStatus.ACTIVE  # nothing happened yet

    button.click()
    expect(page.get_by_text("Consent withdrawn: the work is out")).to_be_visible()
    with get_database(app).sessions() as check:
        assert check.scalar(select(Work.status)) is WorkStatus.WITHDRAWN
