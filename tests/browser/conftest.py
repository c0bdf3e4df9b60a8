"""Browser fixtures: Debian's Chromium driven by Playwright against the app on a real socket.

The app serves with CSRF on, so the forms, cookies and redirects are the ones a person gets.
No browser download: `apt-get install chromium`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.serving import make_server

from marketplace import jobs
from marketplace.db import get_database
from tests.conftest import REQUIRE_SERVICES, make_test_app

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


def _not_started(environ: object, start_response: object) -> list[bytes]:
    raise RuntimeError("the live server answered before its app was set")


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    """The app on 127.0.0.1 at a free port, with PUBLIC_URL that address so mailed links work."""
    server = make_server("127.0.0.1", 0, _not_started, threaded=True)  # type: ignore[arg-type]
    base_url = f"http://127.0.0.1:{server.server_port}"
    app = make_test_app(database_url, tmp_path, PUBLIC_URL=base_url, WTF_CSRF_ENABLED=True)
    server.app = app
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield app, base_url
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        get_database(app).engine.dispose()


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
