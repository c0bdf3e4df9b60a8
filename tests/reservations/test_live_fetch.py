"""Live fetching of a site's tdmrep.json, ai.txt and robots.txt, against a local HTTP server:
off by default, same-host redirects only, size and time limits, withdrawals."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from sqlalchemy import select

from marketplace.reservations import services, tasks
from marketplace.reservations.matching import ReservationIndex
from marketplace.reservations.models import ReservationFile, ReservationSource
from tests.httpserver import serving

TDMREP = b'[{"location": "/photos/", "tdm-reservation": 1, "tdm-policy": "https://x.example/p"}]'
ROBOTS = b"User-agent: CCBot\nDisallow: /\n"
AI_TXT = b"User-agent: *\nDisallow: *.jpg\n"


class Site:
    """What the site serves, per path: (status, body, extra headers); every request logged."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        self.requests: list[str] = []
        self.delay_seconds = 0.0
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with site.lock:
                    site.requests.append(self.path)
                if site.delay_seconds:
                    time.sleep(site.delay_seconds)
                status, body, headers = site.files.get(self.path, (404, b"not found", {}))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    state = Site()
    with serving(state.handler()) as base:
        yield state, base.removeprefix("http://")


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {
        "RESERVATIONS_LIVE_FETCH": True,
        "RESERVATIONS_FETCH_SCHEME": "http",
        "RESERVATIONS_FETCH_TIMEOUT_SECONDS": 5.0,
    }


def fetch(app: Any, domain: str) -> dict[str, str]:
    with app.app_context():
        return tasks.fetch_domain(domain)


def current(db: Any) -> dict[str, ReservationFile]:
    db.rollback()
    rows = db.scalars(select(ReservationFile).where(ReservationFile.replaced_at.is_(None)))
    return {row.kind.value: row for row in rows}


def test_a_fetch_records_the_three_files_as_the_site_serves_them(app, db, site):
    server, host = site
    server.files["/.well-known/tdmrep.json"] = (200, TDMREP, {})
    server.files["/robots.txt"] = (200, ROBOTS, {})
    server.files["/ai.txt"] = (200, AI_TXT, {})

    assert fetch(app, host) == {"tdmrep": "loaded", "ai.txt": "loaded", "robots": "loaded"}
    files = current(db)
    assert files["tdmrep"].body == TDMREP
    assert files["robots"].source is ReservationSource.FETCH
    assert files["robots"].source_url == f"http://{host}/robots.txt"
    index = ReservationIndex.from_session(db)
    assert index.match(f"http://{host}/photos/1.png").kind == "tdmrep"
    assert index.match(f"http://{host}/blog/1.jpg").kind == "ai.txt"
    assert index.match(f"http://{host}/blog/").kind == "robots"

    # The same bytes again change nothing but the time they were last seen.
    checked = files["robots"].checked_at
    assert fetch(app, host) == {"tdmrep": "unchanged", "ai.txt": "unchanged", "robots": "unchanged"}
    again = current(db)
    assert again["robots"].id == files["robots"].id
    assert again["robots"].checked_at >= checked


def test_a_file_the_site_stops_publishing_is_withdrawn_and_a_broken_one_keeps_the_old(
    app, db, site
):
    server, host = site
    server.files["/robots.txt"] = (200, ROBOTS, {})
    server.files["/ai.txt"] = (200, AI_TXT, {})
    fetch(app, host)

    del server.files["/ai.txt"]  # 404 now
    server.files["/robots.txt"] = (200, b"<html>Maintenance</html>", {})
    outcome = fetch(app, host)
    assert outcome["ai.txt"] == "not published (withdrawn)"
    assert outcome["robots"].startswith("malformed: The robots.txt looks like an HTML page")
    files = current(db)
    assert "ai.txt" not in files
    assert files["robots"].body == ROBOTS

    server.files["/robots.txt"] = (503, b"busy", {})
    assert fetch(app, host)["robots"] == "failed: HTTP 503"
    assert current(db)["robots"].body == ROBOTS


def test_redirects_are_followed_on_the_same_host_only(app, db, site):
    server, host = site
    port = host.rsplit(":", 1)[1]
    server.files["/ai.txt"] = (302, b"", {"Location": "/static/ai.txt"})
    server.files["/static/ai.txt"] = (200, AI_TXT, {})
    # localhost is the same machine but another host name: not followed.
    server.files["/robots.txt"] = (301, b"", {"Location": f"http://localhost:{port}/r.txt"})
    server.files["/r.txt"] = (200, ROBOTS, {})

    outcome = fetch(app, host)
    assert outcome["ai.txt"] == "loaded"
    assert outcome["robots"] == f"failed: redirected off the site, to http://localhost:{port}"
    assert "/r.txt" not in server.requests
    assert set(current(db)) == {"ai.txt"}


def test_oversized_and_slow_files_are_given_up_on(app, db, site):
    server, host = site
    app.config["RESERVATIONS_MAX_FILE_BYTES"] = 1024
    server.files["/robots.txt"] = (200, b"User-agent: *\n" + b"#" * 5000, {})
    assert fetch(app, host)["robots"] == "failed: larger than 1024 bytes"

    app.config["RESERVATIONS_FETCH_TIMEOUT_SECONDS"] = 0.2
    server.delay_seconds = 1.0
    assert fetch(app, host)["tdmrep"].startswith("failed:")
    assert current(db) == {}


def test_with_live_fetch_off_nothing_is_fetched(app, db, site, run_jobs):
    server, host = site
    app.config["RESERVATIONS_LIVE_FETCH"] = False
    server.files["/robots.txt"] = (200, ROBOTS, {})

    result = app.test_cli_runner().invoke(args=["reservations", "fetch", host])
    assert result.exit_code != 0
    assert "RESERVATIONS_LIVE_FETCH is off" in result.output
    with app.app_context():
        assert services.enqueue_fetches([host]) == 0
        assert tasks.fetch_domain(host) == {}
    run_jobs()
    assert server.requests == []
    assert current(db) == {}


def test_fetch_jobs_run_through_the_queue_and_the_cli(app, db, site, run_jobs):
    server, host = site
    server.files["/robots.txt"] = (200, ROBOTS, {})
    with app.app_context():
        assert services.enqueue_fetches([host, f"HTTP://{host}/robots.txt"]) == 1
    run_jobs()
    assert set(current(db)) == {"robots"}

    server.files["/ai.txt"] = (200, AI_TXT, {})
    result = app.test_cli_runner().invoke(args=["reservations", "fetch", host])
    assert result.exit_code == 0, result.output
    assert f"{host} ai.txt: loaded" in result.output
    assert f"{host} robots: unchanged" in result.output
