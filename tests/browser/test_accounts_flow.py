"""End to end in Chromium: sign up, confirm the address from the mailed link, log out and in.

The app serves a real socket with CSRF on, so the forms, cookies and redirects are the ones a
person gets. Playwright drives Debian's Chromium (`apt-get install chromium`): no browser download.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import run_queued_jobs
from tests.conftest import PASSWORD

BANNER = "Please confirm your email address"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _verification_link(app: Flask, outbox: Path, to: str, base_url: str) -> str:
    """The link in the newest mail to `to`, checked to point at the live server."""
    run_queued_jobs(app)
    for path in sorted(outbox.glob("*.eml"), reverse=True):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        if mail["To"] != to:
            continue
        body = mail.get_body(preferencelist=("plain",))
        assert body is not None
        text = body.get_content()
        match = re.search(r"\S+/accounts/verify/\S+", text)
        assert match, text
        assert match.group(0).startswith(f"{base_url}/accounts/verify/"), match.group(0)
        return match.group(0)
    raise AssertionError(f"no mail to {to} in {outbox}")


def _nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


def _sign_up(page: Page, role: str, name: str, email: str, organization: str = "") -> None:
    page.goto("/accounts/signup")
    page.get_by_label(role).check()
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password (at least 10 characters)").fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    if organization:
        page.get_by_label("your organization's name").fill(organization)
    page.get_by_role("button", name="Sign up").click()


def _log_in(page: Page, email: str) -> None:
    page.goto("/accounts/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def _log_out(page: Page) -> None:
    _nav(page).get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    expect(_nav(page).get_by_role("link", name="Log in")).to_be_visible()


def test_artist_and_buyer_sign_up_confirm_log_out_and_log_in(
    page: Page, live_server: tuple[Flask, str], tmp_path: Path
) -> None:
    app, base_url = live_server
    artist = "ada@example.com"

    _sign_up(page, "An artist", "Ada Lovelace", artist)
    expect(page).to_have_url(f"{base_url}/artists/dashboard")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
    expect(_nav(page).get_by_text("artist", exact=True)).to_be_visible()
    expect(page.get_by_text(BANNER)).to_be_visible()

    page.goto(_verification_link(app, tmp_path / "outbox", artist, base_url))
    expect(page).to_have_url(f"{base_url}/artists/dashboard")
    expect(page.get_by_text("Thank you, your email address is confirmed.")).to_be_visible()
    expect(page.get_by_text(BANNER)).to_have_count(0)

    _log_out(page)
    _log_in(page, artist)
    expect(page).to_have_url(f"{base_url}/artists/dashboard")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
    expect(page.get_by_role("link", name="Upload works")).to_be_visible()
    expect(page.get_by_text(BANNER)).to_have_count(0)
    _log_out(page)

    buyer = "grace@example.com"
    _sign_up(page, "A buyer", "Grace Hopper", buyer, organization="Hopper Labs")
    expect(page).to_have_url(f"{base_url}/buyers/organization")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hopper Labs")
    expect(_nav(page).get_by_text("buyer", exact=True)).to_be_visible()
    expect(page.get_by_text(BANNER)).to_be_visible()
    _log_out(page)

    _log_in(page, buyer)
    expect(page).to_have_url(f"{base_url}/buyers/organization")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hopper Labs")
    expect(page.get_by_role("cell", name=buyer)).to_be_visible()
