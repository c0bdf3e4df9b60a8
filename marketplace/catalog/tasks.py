"""Catalog jobs: mirroring stock images, adding a whole search to a collection. Ids in; safe
to rerun. Fetching over HTTP is `fetching`; the XMP we write is `marketplace.xmp`."""

from __future__ import annotations

import logging
import urllib.error

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace import imaging, jobs, storage, xmp
from marketplace.catalog import services
from marketplace.catalog.fetching import Permanent, fetch_with_retries
from marketplace.catalog.models import MirrorStatus, StockRecord
from marketplace.db import after_commit, transaction
from marketplace.storage import keys

log = logging.getLogger(__name__)


def update_search_index(item_ids: list[int]) -> None:
    """Make the search index say what the database says about these items (safe to rerun)."""
    from marketplace.catalog import search_index

    with transaction() as session:
        search_index.update(session, item_ids)


def rebuild_search_index() -> None:
    """Rebuild the search index from the database (after a bulk ingest; safe to rerun)."""
    from marketplace.catalog import search_index

    with transaction() as session:
        count, path = search_index.rebuild(session)
    log.info("search index rebuilt: %s works in %s", count, path)


def add_query_to_collection(job_id: int) -> None:
    services.run_add_by_query(job_id)


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
    packet = xmp.xmp_packet(
        xmp.DataMining.ALLOWED, record.rights_uri or record.page_url, record.rights_statement
    )
    old_version, version = record.derivatives_version, record.derivatives_version + 1
    for name, encoded in xmp.encode_derivatives(imaging.derivative_images(image), packet).items():
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
