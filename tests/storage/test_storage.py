"""Object storage: the local folder's signed links, S3 through moto's server over real HTTP, and
the promise that a rolled-back transaction leaves no object behind."""

from __future__ import annotations

import base64
import io
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import time_machine
from itsdangerous.encoding import base64_decode, bytes_to_int
from sqlalchemy import select

from marketplace import storage
from marketplace.artists.models import Work
from marketplace.db import transaction
from tests.conftest import service_missing
from tests.factories import make_artist
from tests.images import png

REGION = "us-east-1"


class Boom(Exception):
    """Raised inside a transaction to make it roll back."""


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """S3 settings for the tests that ask for a `bucket`, plus any indirect parameters."""
    config = dict(getattr(request, "param", {}))
    if "bucket" in request.fixturenames:
        config.update(request.getfixturevalue("bucket").app_config)
    return config


def store(app: Any, key: str, data: bytes, content_type: str = "image/png") -> None:
    with app.app_context(), transaction() as session:
        storage.put(session, key, data, content_type=content_type)


def link(app: Any, key: str, filename: str, content_type: str = "image/png") -> str:
    with app.test_request_context():
        return storage.download_url(key, filename, content_type=content_type)


def filename_of(content_disposition: str) -> str:
    """The name a browser saves under: RFC 6266 filename*, after an ASCII-only header."""
    assert content_disposition.isascii(), content_disposition
    assert content_disposition.startswith("attachment; filename=")
    _, _, encoded = content_disposition.partition("filename*=UTF-8''")
    return unquote(encoded)


def roll_back_a_put(app: Any, key: str, data: bytes, seen: Callable[[], bool]) -> None:
    with app.app_context(), pytest.raises(Boom), transaction() as session:
        storage.put(session, key, data, content_type="image/png")
        assert seen()
        raise Boom


# --- The local folder -----------------------------------------------------------------------


def test_a_signed_link_downloads_the_object_under_its_name(app, client):
    store(app, "originals/7", png(7))
    url = link(app, "originals/7", "夕焼け.png")

    response = client.get(url)

    assert url.startswith("http://localhost/storage/download/")
    assert response.status_code == 200
    assert response.data == png(7)
    assert response.mimetype == "image/png"
    assert filename_of(response.headers["Content-Disposition"]) == "夕焼け.png"
    assert response.headers["Cache-Control"] == "private, no-store"


def test_a_signed_link_serves_the_type_it_was_made_with_not_the_name_s(app, client):
    store(app, "originals/7", png(7))
    response = client.get(link(app, "originals/7", "x.html", content_type="image/png"))
    assert response.mimetype == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("app_config", [{"DOWNLOAD_URL_MAX_AGE": 60}], indirect=True)
def test_a_signed_link_works_for_its_max_age_and_then_expires(app, client):
    store(app, "originals/7", png(7))
    url = link(app, "originals/7", "dusk.png")
    signed_at = bytes_to_int(base64_decode(url.rsplit(".", 2)[1]))  # whole seconds

    # The clock is moved, not waited for: at exactly the max age the link still works.
    with time_machine.travel(signed_at + 60, tick=False):
        assert client.get(url).status_code == 200
    with time_machine.travel(signed_at + 61, tick=False):
        assert client.get(url).status_code == 404


def _forge(token: str, payload: dict[str, str]) -> str:
    """The token with another payload and the original timestamp and signature."""
    _, stamp, signature = token.rsplit(".", 2)
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{body}.{stamp}.{signature}"


def test_a_tampered_retargeted_or_dangling_link_is_404(app, client):
    store(app, "originals/7", png(7))
    store(app, "originals/8", png(8))
    url = link(app, "originals/7", "dusk.png")
    token = url.rsplit("/", 1)[1]
    head, signature = token.rsplit(".", 1)
    # The signature's first character: its last one partly encodes padding, ignored on decode.
    flipped = f"{head}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    retargeted = _forge(token, {"key": "originals/8", "name": "dusk.png"})

    assert client.get(f"/storage/download/{flipped}").status_code == 404
    assert client.get(f"/storage/download/{retargeted}").status_code == 404
    assert client.get("/storage/download/not-a-token").status_code == 404
    assert client.get(url).data == png(7)
    with app.app_context():
        storage.delete("originals/7")
    assert client.get(url).status_code == 404


def test_a_rolled_back_put_leaves_no_local_file(app, tmp_path):
    def seen() -> bool:
        return storage.backend().exists("originals/9")

    roll_back_a_put(app, "originals/9", png(9), seen)

    with app.app_context():
        assert not storage.backend().exists("originals/9")
        assert storage.backend().keys() == []
    assert not any(p.is_file() for p in (tmp_path / "objects").rglob("*"))


# --- S3, through moto's standalone server ---------------------------------------------------


class _PresignedUrlsExpire:
    """WSGI middleware doing the one check of S3's that moto's server skips: a presigned URL
    past X-Amz-Date + X-Amz-Expires (SigV4) or Expires (SigV2) is refused with 403."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        now = datetime.now(UTC)
        expired = False
        if "X-Amz-Date" in query and "X-Amz-Expires" in query:
            signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            expired = now > signed + timedelta(seconds=int(query["X-Amz-Expires"][0]))
        elif "Expires" in query and "Signature" in query:
            expired = now.timestamp() > int(query["Expires"][0])
        if not expired:
            return self.app(environ, start_response)
        body = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on a free port of this machine, for the whole session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        service_missing("moto server")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    starting = threading.Thread(target=server.start, daemon=True)
    starting.start()
    starting.join(timeout=15)  # start() waits for ever when the server cannot bind
    if starting.is_alive():
        service_missing("moto server")
    wsgi_server = server._server
    assert wsgi_server is not None
    wsgi_server.app = _PresignedUrlsExpire(wsgi_server.app)
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass(frozen=True)
class Bucket:
    """A fresh bucket, and our own client to look into it."""

    name: str
    endpoint_url: str
    client: Any

    @property
    def app_config(self) -> dict[str, Any]:
        return {"S3_BUCKET": self.name, "S3_ENDPOINT_URL": self.endpoint_url, "S3_REGION": REGION}

    def object_keys(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def head(self, key: str) -> dict[str, Any]:
        head: dict[str, Any] = self.client.head_object(Bucket=self.name, Key=key)
        return head

    def read(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return body


@pytest.fixture
def bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Bucket]:
    import boto3

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    client = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)
    name = f"test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield Bucket(name, moto_endpoint, client)
    for key in Bucket(name, moto_endpoint, client).object_keys():
        client.delete_object(Bucket=name, Key=key)
    client.delete_bucket(Bucket=name)


def fetch(url: str) -> Any:
    return urllib.request.urlopen(url, timeout=10)  # noqa: S310 (our own http:// test server)


def test_the_s3_backend_writes_reads_lists_and_deletes(app, bucket):
    with app.app_context():
        backend = storage.backend()
        assert isinstance(backend, storage.S3Backend)
        backend.write("originals/1", png(1), "image/png")
        backend.write("originals/2", b"second", "application/octet-stream")
        backend.write("derivatives/1/v1/thumb.webp", b"thumb", "image/webp")

        assert backend.read("originals/1") == png(1)
        assert backend.exists("originals/2")
        assert not backend.exists("originals/3")
        assert backend.keys() == ["derivatives/1/v1/thumb.webp", "originals/1", "originals/2"]
        assert backend.keys("originals/") == ["originals/1", "originals/2"]
        assert backend.keys("thumbs/") == []

        backend.delete("originals/2")
        backend.delete("originals/never-written")

        assert not backend.exists("originals/2")
        with pytest.raises(storage.ObjectNotFound):
            backend.read("originals/2")
        with pytest.raises(storage.ObjectNotFound):
            storage.get("originals/3")
        with pytest.raises(ValueError, match="not a valid object key"):
            backend.write("../escape", b"x", "text/plain")
    assert bucket.object_keys() == ["derivatives/1/v1/thumb.webp", "originals/1"]
    assert bucket.read("originals/1") == png(1)
    assert bucket.head("originals/1")["ContentType"] == "image/png"


def test_an_s3_download_link_is_presigned_and_names_the_file(app, bucket):
    store(app, "originals/5", png(5))

    url = link(app, "originals/5", "夕焼け.png")

    assert url.startswith(f"{bucket.endpoint_url}/{bucket.name}/originals/5?")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["900"]
    with fetch(url) as response:
        assert response.status == 200
        assert response.read() == png(5)
        assert response.headers["Content-Type"] == "image/png"
        assert filename_of(response.headers["Content-Disposition"]) == "夕焼け.png"
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        fetch(url.split("?", 1)[0])
    assert unsigned.value.code == 403


@pytest.mark.parametrize("app_config", [{"DOWNLOAD_URL_MAX_AGE": 30}], indirect=True)
def test_an_s3_link_carries_its_max_age_and_is_refused_once_past_it(app, bucket):
    """What this proves: our presigned URLs carry X-Amz-Date (when they were signed) and
    X-Amz-Expires (DOWNLOAD_URL_MAX_AGE), inside the SigV4 signature, and a client that
    follows one past that time gets S3's documented refusal. S3 itself enforces the expiry;
    moto's server does not, so `_PresignedUrlsExpire` plays S3's part here. Links are signed
    in the past (the clock is moved, not waited for)."""
    store(app, "originals/5", png(5))
    now = datetime.now(UTC).replace(microsecond=0)
    with time_machine.travel(now - timedelta(seconds=10), tick=False):
        fresh = link(app, "originals/5", "dusk.png")  # 10 s old, valid for 30
    with time_machine.travel(now - timedelta(seconds=40), tick=False):
        stale = link(app, "originals/5", "dusk.png")  # 40 s old, valid for 30

    query = parse_qs(urlsplit(fresh).query)
    assert query["X-Amz-Expires"] == ["30"]
    assert query["X-Amz-Date"] == [(now - timedelta(seconds=10)).strftime("%Y%m%dT%H%M%SZ")]
    assert "x-amz-date" not in query["X-Amz-SignedHeaders"][0]  # the date is in the query
    with fetch(fresh) as response:
        assert response.read() == png(5)
    with pytest.raises(urllib.error.HTTPError) as refused:
        fetch(stale)
    assert refused.value.code == 403
    assert b"Request has expired" in refused.value.read()


def test_a_rolled_back_put_leaves_no_s3_object(app, bucket):
    roll_back_a_put(app, "originals/9", png(9), lambda: bucket.object_keys() == ["originals/9"])

    assert bucket.object_keys() == []


def test_an_uploaded_original_lands_in_the_bucket_and_not_on_disk(
    app, client, db, login, bucket, run_jobs, tmp_path
):
    login(make_artist(db))
    data = png(12)

    response = client.post(
        "/artists/works/new",
        data={"images": [(io.BytesIO(data), "dusk.png")], "use_default_terms": "y"},
        content_type="multipart/form-data",
    )
    run_jobs()

    assert response.status_code == 200, response.get_data(as_text=True)
    work = db.scalars(select(Work)).one()
    assert bucket.read(f"originals/{work.id}") == data
    assert bucket.head(f"originals/{work.id}")["ContentType"] == "image/png"
    assert bucket.object_keys() == [
        f"derivatives/{work.id}/v1/preview.webp",
        f"derivatives/{work.id}/v1/thumb.webp",
        f"originals/{work.id}",
    ]
    assert not (tmp_path / "objects").exists()
    download = client.get(f"/artists/works/{work.id}/original")
    assert download.status_code == 302
    with fetch(download.headers["Location"]) as response:
        assert response.read() == data
        assert filename_of(response.headers["Content-Disposition"]) == "dusk.png"
