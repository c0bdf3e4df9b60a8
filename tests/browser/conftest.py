"""Browser fixtures: Debian's Chromium driven by Playwright against the app on a real socket.

The app serves with CSRF on, so the forms, cookies and redirects are the ones a person gets.
No browser download: `apt-get install chromium`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, sync_playwright

from marketplace import jobs
from tests.conftest import REQUIRE_SERVICES

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = "Chromium not installed: apt-get install chromium"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message} (MARKETPLACE_REQUIRE_SERVICES is set)")
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser, live_server: tuple[Flask, str]) -> Iterator[Page]:
    context = chromium.new_context(base_url=live_server[1])
    context.set_default_timeout(5_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def run_queued_jobs(app: Flask) -> None:
    """With REDIS_URL the mail is an RQ job: run the queue now, as a worker would."""
    connection = jobs.redis_connection(app)
    if connection is None:
        return  # jobs ran inline, inside the request
    from rq import SimpleWorker
    from rq.registry import FailedJobRegistry

    queue = jobs.queue(app)
    jobs.set_worker_app(app)
    SimpleWorker([queue], connection=connection).work(burst=True)
    assert not FailedJobRegistry(queue=queue).get_job_ids()
