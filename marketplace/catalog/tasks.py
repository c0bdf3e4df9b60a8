"""Catalog jobs: mirroring stock images, adding a whole search to a collection. Ids in; safe
to rerun."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace import imaging, jobs, storage
from marketplace.artists import consent
from marketplace.catalog import services
from marketplace.catalog.models import MirrorStatus, StockRecord
from marketplace.db import after_commit, transaction
from marketplace.storage import keys

log = logging.getLogger(__name__)

USER_AGENT = "ConsentMarketplace-mirror/1.0 (+open-access image mirroring)"
_local_slots: dict[str, threading.BoundedSemaphore] = {}
_local_lock = threading.Lock()


class Permanent(Exception):
    """A failure retrying will not fix (404, not an image, too large)."""


def add_query_to_collection(job_id: int) -> None:
    services.run_add_by_query(job_id)


@contextlib.contextmanager
def host_slot(host: str, limit: int, wait_seconds: float = 120.0) -> Iterator[None]:
    """At most `limit` downloads from one host at a time, across every worker (Redis) or
    within this process (inline jobs)."""
    redis = jobs.redis_connection()
    if redis is None:
        with _local_lock:
            slot = _local_slots.setdefault(host, threading.BoundedSemaphore(limit))
        if not slot.acquire(timeout=wait_seconds):
            raise TimeoutError(f"no free download slot for {host}")
        try:
            yield
        finally:
            slot.release()
        return
    key = f"{current_app.config['RQ_QUEUE']}:mirror-slots:{host}"
    deadline = time.monotonic() + wait_seconds
    while True:
        taken = int(redis.incr(key))
        redis.expire(key, 600)  # a crashed worker's slot frees itself
        if taken <= limit:
            break
        redis.decr(key)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free download slot for {host}")
        time.sleep(0.05)
    try:
        yield
    finally:
        redis.decr(key)


def _download(url: str, *, timeout: float, max_bytes: int) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data: bytes = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise  # worth another try
        raise Permanent(f"HTTP {exc.code} from {urlsplit(url).netloc}") from exc
    if len(data) > max_bytes:
        raise Permanent("the image is larger than the upload limit")
    return data


def fetch_with_retries(url: str) -> tuple[bytes, int]:
    """The bytes at `url`, retrying transient failures with exponential backoff; returns
    (data, attempts). Raises Permanent, or the last transient error."""
    config = current_app.config
    retries = max(1, int(config["MIRROR_RETRIES"]))
    backoff = float(config["MIRROR_BACKOFF_SECONDS"])
    host = urlsplit(url).netloc
    if urlsplit(url).scheme not in ("http", "https") or not host:
        raise Permanent(f"not an http(s) URL: {url[:100]}")
    for attempt in range(1, retries + 1):
        try:
            with host_slot(host, int(config["MIRROR_HOST_CONCURRENCY"])):
                return (
                    _download(
                        url,
                        timeout=float(config["MIRROR_TIMEOUT_SECONDS"]),
                        max_bytes=int(config["MAX_UPLOAD_BYTES"]),
                    ),
                    attempt,
                )
        except Permanent:
            raise
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            if attempt == retries:
                raise
            log.info("mirror %s: attempt %s failed (%s), retrying", host, attempt, exc)
            time.sleep(backoff * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def mirror_stock_image(record_id: int) -> None:
    """Fetch a stock record's image into storage with its hashes and derivatives; a failure
    is recorded on the record (status, reason, attempts) for a later retry."""
    with transaction() as session:
        record = session.get(StockRecord, record_id)
        if record is None or record.mirror_status is MirrorStatus.MIRRORED:
            return
        urls = list(record.image_urls)
    attempts, error = 0, "no image URL"
    data = None
    for url in urls[:2]:
        try:
            data, used = fetch_with_retries(url)
            attempts += used
            break
        except Permanent as exc:
            attempts += 1
            error = str(exc)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            attempts += int(current_app.config["MIRROR_RETRIES"])
            error = f"{type(exc).__name__}: {exc}"[:300]
    inspected = None
    if data is not None:
        try:
            inspected = imaging.inspect_image(
                data,
                max_bytes=int(current_app.config["MAX_UPLOAD_BYTES"]),
                max_pixels=int(current_app.config["MAX_IMAGE_PIXELS"]),
            )
        except imaging.ImageRejected as exc:
            error = f"the download {exc}"
    with transaction() as session:
        record = session.get(StockRecord, record_id)
        if record is None:
            return
        record.mirror_attempts += attempts
        if data is None or inspected is None:
            record.mirror_status = MirrorStatus.FAILED
            record.mirror_error = error
            log.info("mirror of stock %s failed: %s", record_id, error)
            return
        store_stock_image(session, record, data, inspected)
    log.info("stock %s mirrored (%s attempts)", record_id, attempts)


def store_stock_image(
    session: Session, record: StockRecord, data: bytes, inspected: imaging.InspectedImage
) -> None:
    """Keep the image of a stock record with its hashes and derivatives (WebP with XMP saying
    data mining is allowed, and the rights URI); the caller owns the transaction."""
    image, _ = imaging.open_image(data, max_pixels=int(current_app.config["MAX_IMAGE_PIXELS"]))
    storage.put(session, keys.stock_original(record.id), data, content_type=inspected.mime)
    xmp = consent.xmp_packet(
        consent.DataMining.ALLOWED, record.rights_uri or record.page_url, record.rights_statement
    )
    old_version, version = record.derivatives_version, record.derivatives_version + 1
    for name, picture in imaging.derivative_images(image).items():
        encoded = consent.encode_with_xmp(picture, "WEBP", xmp, quality=82)
        storage.put(
            session,
            keys.stock_derivative(record.id, version, name),
            encoded,
            content_type="image/webp",
        )
    record.derivatives_version = version
    record.sha256 = inspected.sha256
    record.phash = imaging.to_signed64(inspected.phash)
    record.width, record.height = inspected.width, inspected.height
    record.mirror_status = MirrorStatus.MIRRORED
    record.mirror_error = ""
    services.index_stock(session, record)
    if old_version:
        stale = [keys.stock_derivative(record.id, old_version, n) for n in keys.DERIVATIVE_NAMES]
        after_commit(session, lambda: storage.delete_many(stale))


def enqueue_mirrors(
    source: str | None = None, limit: int | None = None, retry: bool = False
) -> int:
    """Queue mirror jobs for records not mirrored yet (and failed ones when `retry`)."""
    statuses = [MirrorStatus.PENDING, MirrorStatus.FAILED] if retry else [MirrorStatus.PENDING]
    with transaction() as session:
        stmt = select(StockRecord.id).where(
            StockRecord.mirror_status.in_(statuses),
            StockRecord.withdrawn_at.is_(None),  # withdrawn by the source: not ours to fetch
        )
        if source:
            stmt = stmt.where(StockRecord.source == source)
        ids = list(session.scalars(stmt.order_by(StockRecord.id).limit(limit)))
    for record_id in ids:
        jobs.enqueue(mirror_stock_image, record_id, job_id=f"mirror-{record_id}")
    return len(ids)
