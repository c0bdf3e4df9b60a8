"""Mirroring stock images from a local HTTP server (this machine has no internet)."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from PIL import Image

from marketplace.catalog import fetching, tasks
from marketplace.catalog.models import CatalogItem, MirrorStatus, StockRecord
from tests import images
from tests.catalog.test_search import make_stock
from tests.httpserver import serving

PICTURE = images.png(7, (1500, 1000))


class ImageServer:
    """Serves a few paths with known behaviour and records concurrency."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.overlap = threading.Condition()
        self.arrivals = 0

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with server.lock:
                    server.hits[self.path] = server.hits.get(self.path, 0) + 1
                    hits = server.hits[self.path]
                self.answer(hits)

            def answer(self, hits: int) -> None:
                if self.path.startswith("/slow/"):
                    # Held until the next download arrives (the client holds its slot all the
                    # while), so the test sees the overlap the limit allows, and one more if
                    # the limit failed; the timeout only frees the last download.
                    with server.overlap:
                        server.active += 1
                        server.arrivals += 1
                        mine = server.arrivals
                        server.max_active = max(server.max_active, server.active)
                        server.overlap.notify_all()
                        server.overlap.wait_for(lambda: server.arrivals > mine, timeout=2)
                        server.active -= 1
                    return self.send(200, PICTURE, "image/png")
                if self.path == "/ok.png":
                    return self.send(200, PICTURE, "image/png")
                if self.path == "/flaky.png":
                    return self.send(503, b"busy") if hits <= 2 else self.send(200, PICTURE)
                if self.path == "/text.png":
                    return self.send(200, b"<html>not an image</html>", "text/html")
                return self.send(404, b"not found")

            def send(self, status: int, body: bytes, kind: str = "image/png") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture
def image_server() -> Iterator[tuple[ImageServer, str]]:
    state = ImageServer()
    with serving(state.handler()) as base:
        yield state, base


@pytest.fixture
def app_config():
    return {"MIRROR_BACKOFF_SECONDS": 0.01, "MIRROR_RETRIES": 3, "MIRROR_HOST_CONCURRENCY": 2}


def mirror(app, record_id: int) -> None:
    with app.app_context():
        tasks.mirror_stock_image(record_id)


def test_mirrored_image_gets_hashes_derivatives_and_appears_in_search(
    app, client, db, image_server
):
    server, base = image_server
    item = make_stock(db, "Landscape", image_urls=[f"{base}/ok.png"])
    mirror(app, item.stock_id)
    record = db.get(StockRecord, item.stock_id)
    assert record.mirror_status is MirrorStatus.MIRRORED
    assert record.sha256 == hashlib.sha256(PICTURE).hexdigest()
    assert (record.width, record.height) == (1500, 1000)
    assert record.phash is not None
    db.refresh(db.get(CatalogItem, item.id))
    assert db.get(CatalogItem, item.id).has_image
    preview = client.get(f"/catalog/items/{item.id}/preview.webp")
    assert preview.status_code == 200
    assert Image.open(io.BytesIO(preview.data)).size == (1024, 683)
    body = client.get("/api/v1/works", query_string={"has_image": "true"}).get_json()
    assert [i["id"] for i in body["items"]] == [item.id]
    mirror(app, item.stock_id)  # a rerun does nothing
    assert server.hits["/ok.png"] == 1


def test_transient_errors_are_retried_with_backoff(app, db, image_server):
    server, base = image_server
    item = make_stock(db, "Flaky", image_urls=[f"{base}/flaky.png"])
    mirror(app, item.stock_id)
    record = db.get(StockRecord, item.stock_id)
    assert record.mirror_status is MirrorStatus.MIRRORED
    assert server.hits["/flaky.png"] == 3
    assert record.mirror_attempts == 3


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/missing.png", "HTTP 404"), ("/text.png", "is not a PNG, JPEG, WebP or TIFF image")],
)
def test_failures_are_recorded_per_record(app, db, image_server, path, reason):
    server, base = image_server
    item = make_stock(db, "Broken", image_urls=[f"{base}{path}"])
    mirror(app, item.stock_id)
    record = db.get(StockRecord, item.stock_id)
    assert record.mirror_status is MirrorStatus.FAILED
    assert reason in record.mirror_error
    assert server.hits[path] == 1  # permanent failures are not retried
    assert not db.get(CatalogItem, item.id).has_image


def test_unreachable_host_fails_after_the_retries(app, db):
    item = make_stock(db, "Nowhere", image_urls=["http://127.0.0.1:9/none.png"])
    mirror(app, item.stock_id)
    record = db.get(StockRecord, item.stock_id)
    assert record.mirror_status is MirrorStatus.FAILED
    assert record.mirror_attempts == 3


def test_downloads_from_one_host_respect_the_concurrency_limit(app, db, image_server):
    server, base = image_server
    items = [make_stock(db, f"Slow {n}", image_urls=[f"{base}/slow/{n}.png"]) for n in range(6)]
    threads = [threading.Thread(target=mirror, args=(app, i.stock_id)) for i in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert server.max_active == 2
    statuses = {db.get(StockRecord, i.stock_id).mirror_status for i in items}
    assert statuses == {MirrorStatus.MIRRORED}


def test_the_mirror_command_queues_pending_records(app, db, image_server, run_jobs):
    _server, base = image_server
    ok = make_stock(db, "One", image_urls=[f"{base}/ok.png"], source="aic")
    make_stock(db, "Other source", image_urls=[f"{base}/ok.png"], source="met")
    result = app.test_cli_runner().invoke(args=["catalog", "mirror", "--source", "aic"])
    assert result.exit_code == 0, result.output
    assert "1 images queued" in result.output
    run_jobs()
    assert db.get(StockRecord, ok.stock_id).mirror_status is MirrorStatus.MIRRORED


def test_a_changed_host_limit_takes_effect_for_hosts_seen_before(app):
    with app.app_context():
        with fetching.host_slot("images.example", 1, wait_seconds=0):
            pass
        # The limit was raised (a new MIRROR_HOST_CONCURRENCY): two downloads may now overlap.
        with (
            fetching.host_slot("images.example", 2, wait_seconds=0),
            fetching.host_slot("images.example", 2, wait_seconds=0),
        ):
            pass
