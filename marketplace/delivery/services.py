"""The package a buyer takes home: built by a job after fulfilment, stored, listed, linked.

Rules (the README repeats them):

- One package per order, built when the order is fulfilled (free orders too). Items are read
  in order of position, a page at a time, so an order of a million items never sits in memory.
- Each image is the stored original with our consent XMP spliced in; what was shipped (digest,
  type, size) is written on its order item.
- Public-domain stock not mirrored yet is fetched now. An item whose source cannot be reached
  or refuses is not delivered: it gets a `missing_reason`, is listed in `missing.json`, and is
  not charged: what was paid for it (the per-item handling fee; 0 by default) is refunded once
  per order through the buyers' refund.
- Rebuilding gives the same files, byte for byte, under the same keys. A file is listed only
  once its object is stored; a failed build lists nothing and says why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from werkzeug.utils import import_string

from marketplace import storage, xmp
from marketplace.accounts.models import Organization, User
from marketplace.artists import consent
from marketplace.artists.models import Artist, TermsKind, Work, WorkTerms
from marketplace.artists.terms import CC0_URL, TermsSpec, licence_text
from marketplace.buyers import services as buyers
from marketplace.buyers.models import ItemLicence, Order, OrderItem, OrderStatus
from marketplace.catalog.models import CatalogItem, MirrorStatus, StockRecord
from marketplace.certificates import services as certificates
from marketplace.db import after_commit, transaction, utcnow
from marketplace.delivery import formats
from marketplace.delivery.models import FileKind, Package, PackageFile, PackageStatus
from marketplace.delivery.packages import DeliveryError as DeliveryError  # re-exported
from marketplace.delivery.packages import PackageBusy as PackageBusy
from marketplace.delivery.packages import find_package as find_package
from marketplace.delivery.packages import request_package as request_package
from marketplace.ledger import services as ledger
from marketplace.storage import keys
from marketplace.urls import external_url

log = logging.getLogger(__name__)

# The catalog's own mirroring job, called by name (and synchronously) for stock not fetched yet.
MIRROR_JOB = "marketplace.catalog.tasks.mirror_stock_image"
PAGE = 500  # order items read per query, at most
PUBLIC_DOMAIN_URL = "https://creativecommons.org/publicdomain/mark/1.0/"

MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
LICENCE_NAMES = {
    ItemLicence.LICENSED: "licensed",
    ItemLicence.CC0: "donated",
    ItemLicence.PUBLIC_DOMAIN: "public_domain",
}
_TEXT = "text/markdown; charset=utf-8"


class NotFound(DeliveryError):
    code = "not_found"


class BuildFailed(DeliveryError):
    """A reason to stop the build, safe to show to the buyer."""

    code = "build_failed"


# --- Requesting and reading -----------------------------------------------------------------


def get_package(session: Session, user: User, order_id: int) -> tuple[Order, Package | None]:
    """The order (if the user may see it) and its package, if one was asked for."""
    try:
        order = buyers.get_order(session, user, order_id)
    except buyers.NotFound as exc:
        raise NotFound("No such order.") from exc
    return order, find_package(session, order.id)


def rebuild(session: Session, user: User, order_id: int) -> Package:
    """An administrator rebuilds an order's package (same files, same bytes)."""
    if user.role != "admin":
        raise NotFound("No such order.")
    order, _ = get_package(session, user, order_id)
    if not _deliverable(order):
        raise DeliveryError("Only a fulfilled, not refunded order has a package.")
    return request_package(session, order, rebuild=True)


def progress_percent(package: Package) -> int:
    if package.status is PackageStatus.READY:
        return 100
    if not package.items_total:
        return 0
    return min(99, package.items_done * 100 // package.items_total)


@dataclass(frozen=True)
class ManifestFile:
    path: str
    size: int
    sha256: str
    media_type: str
    kind: str
    items: int
    url: str
    expires_at: datetime


def manifest_files(
    order: Order, package: Package, now: datetime | None = None
) -> list[ManifestFile]:
    """The package's files with download links valid for PACKAGE_URL_MAX_AGE seconds: only
    once the package is ready (a build in progress lists nothing), and never for an order
    refunded in full (its licence is revoked)."""
    if not manifest_ready(order, package):
        return []
    max_age = int(current_app.config["PACKAGE_URL_MAX_AGE"])
    expires_at = (now or datetime.now(UTC)) + timedelta(seconds=max_age)
    found = []
    for file in sorted(package.files, key=_file_order):
        url = storage.download_url(
            file.storage_key,
            file.path.replace("/", "-"),
            content_type=file.media_type,
            max_age_seconds=max_age,
        )
        found.append(
            ManifestFile(
                path=file.path,
                size=file.size_bytes,
                sha256=file.sha256,
                media_type=file.media_type,
                kind=file.kind.value,
                items=file.item_count,
                url=url,
                expires_at=expires_at.replace(microsecond=0),
            )
        )
    return found


AI_ACT_FILES = {"md": "ai-act-summary.md", "json": "ai-act-summary.json"}


def ai_act_summary(order: Order, package: Package | None, fmt: str) -> bytes | None:
    """The order's EU AI Act summary draft as the package holds it (None until it is ready,
    or once the order is refunded in full); `fmt` is "md" or "json"."""
    if package is None or not manifest_ready(order, package):
        return None
    path = AI_ACT_FILES[fmt]
    for file in package.files:
        if file.path == path:
            return storage.get(file.storage_key)
    return None


def manifest_ready(order: Order, package: Package) -> bool:
    return package.status is PackageStatus.READY and order.status is not OrderStatus.REFUNDED


def _file_order(file: PackageFile) -> tuple[int, str]:
    return (0 if file.kind is FileKind.SHARD else 1, file.path)


def missing_items(session: Session, order: Order, *, limit: int = 100) -> Sequence[OrderItem]:
    return session.scalars(
        select(OrderItem)
        .where(OrderItem.order_id == order.id, OrderItem.missing_reason != "")
        .order_by(OrderItem.position)
        .limit(limit)
    ).all()


# --- The build ------------------------------------------------------------------------------


def _deliverable(order: Order) -> bool:
    return order.fulfilled_at is not None and order.status in (
        OrderStatus.FULFILLED,
        OrderStatus.PARTIALLY_REFUNDED,
    )


def build_package(order_id: int) -> None:
    """The job: build and store the order's package. Safe to rerun: every key and byte comes
    from the order, so a rerun rewrites the same objects. A failure marks the package failed
    with a readable reason and lists no file; an unexpected one is raised again for the worker
    (RQ keeps it in its failed registry)."""
    with transaction() as session:
        package = session.scalar(
            select(Package).where(Package.order_id == order_id).with_for_update()
        )
        order = session.get(Order, order_id)
        if package is None or order is None or package.status is PackageStatus.READY:
            return
        if not _deliverable(order):
            package.status = PackageStatus.FAILED
            package.error = "The order is not fulfilled, or was refunded: nothing to deliver."
            return
        old_keys = [f.storage_key for f in package.files]
        session.execute(delete(PackageFile).where(PackageFile.package_id == package.id))
        package.status = PackageStatus.BUILDING
        package.attempts += 1
        package.items_total = order.item_count
        package.items_done = package.items_missing = package.bytes_total = 0
        package.error = ""
        package.started_at, package.finished_at = utcnow(), None
        package_id = package.id
    try:
        with tempfile.TemporaryDirectory(prefix=f"package-{order_id}-") as tmp:
            _build(order_id, package_id, Path(tmp), old_keys)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, BuildFailed | storage.ObjectNotFound) else ""
        with transaction() as session:
            package = session.get(Package, package_id)
            if package is not None:
                session.execute(delete(PackageFile).where(PackageFile.package_id == package_id))
                package.status = PackageStatus.FAILED
                package.error = (
                    f"The package could not be built: {reason}"
                    if reason
                    else f"The package could not be built ({type(exc).__name__}); "
                    "an administrator can rebuild it."
                )
                package.finished_at = utcnow()
        if isinstance(exc, BuildFailed):
            log.warning("package of order %s failed: %s", order_id, exc)
            return  # recorded and shown; retrying will not help until someone fixes it
        log.exception("package of order %s failed", order_id)
        raise


@dataclass
class _Item:
    """Everything the package says of one order item, read from the database."""

    position: int
    item_id: int
    price_minor: int
    licence: ItemLicence
    title: str
    creator: str
    source: str
    source_kind: str
    licence_uri: str
    terms_id: int | None
    terms_version: int | None
    terms_url: str
    terms_seq: int | None
    source_url: str
    ledger_seq: int | None
    attribution_required: bool
    attribution: str
    object_key: str
    packet: bytes
    stock_id: int | None
    stock_pending: bool
    delivered_sha256: str | None
    delivered_media_type: str | None
    missing_reason: str

    @property
    def key(self) -> str:
        return f"{self.position:09d}"

    def record(self, sha256: str, media_type: str) -> formats.ItemRecord:
        if self.ledger_seq is None:
            raise BuildFailed(f"item {self.position} has no provenance entry in the ledger yet")
        return formats.ItemRecord(
            key=self.key,
            item_id=self.item_id,
            title=self.title,
            creator=self.creator,
            source=self.source,
            source_kind=self.source_kind,
            licence=LICENCE_NAMES[self.licence],
            licence_uri=self.licence_uri,
            terms_version=self.terms_version,
            terms_url=self.terms_url,
            terms_seq=self.terms_seq,
            sha256=sha256,
            media_type=media_type,
            source_url=self.source_url,
            ledger_seq=self.ledger_seq,
            attribution_required=self.attribution_required,
            attribution=self.attribution,
        )


def _page(session: Session, order_id: int, after: int, limit: int) -> list[_Item]:
    rows = session.execute(
        select(OrderItem, CatalogItem, WorkTerms, Work, Artist, StockRecord)
        .join(CatalogItem, CatalogItem.id == OrderItem.item_id)
        .outerjoin(WorkTerms, WorkTerms.id == OrderItem.terms_id)
        .outerjoin(Work, Work.id == OrderItem.work_id)
        .outerjoin(Artist, Artist.id == Work.artist_id)
        .outerjoin(StockRecord, StockRecord.id == OrderItem.stock_id)
        .where(OrderItem.order_id == order_id, OrderItem.position > after)
        .order_by(OrderItem.position)
        .limit(limit)
    ).all()
    return [_item(*row) for row in rows]


def _item(
    row: OrderItem,
    item: CatalogItem,
    terms: WorkTerms | None,
    work: Work | None,
    artist: Artist | None,
    stock: StockRecord | None,
) -> _Item:
    common: dict[str, Any] = {
        "position": row.position,
        "item_id": row.item_id,
        "price_minor": row.price_minor,
        "licence": row.licence,
        "ledger_seq": row.ledger_seq,
        "attribution_required": row.attribution_required,
        "delivered_sha256": row.delivered_sha256,
        "delivered_media_type": row.delivered_media_type,
        "missing_reason": row.missing_reason,
    }
    if work is not None and artist is not None:
        if terms is None:
            raise BuildFailed(f"item {row.position} has no terms version on record")
        terms_url = external_url("artists.show_terms", terms_id=terms.id)
        # The licensed copy's consent XMP, as artists.tasks writes it on previews but saying
        # what this sale granted (consent.data_mining_for_terms with licensed_copy=True).
        data_mining = consent.data_mining_for_terms(
            terms.kind.value,
            generative_training=terms.generative_training,
            non_generative_training=terms.non_generative_training,
            licensed_copy=True,
        )
        return _Item(
            **common,
            title=work.title,
            creator=artist.display_name,
            source=artist.display_name,
            source_kind="artist",
            licence_uri=CC0_URL if terms.kind is TermsKind.DONATE else terms_url,
            terms_id=terms.id,
            terms_version=terms.version,
            terms_url=terms_url,
            terms_seq=terms.ledger_seq,
            source_url=external_url("catalog.item_page", item_id=item.id),
            attribution=f"“{work.title}” by {artist.display_name}, {terms_url}",
            object_key=keys.work_original(work.id),
            packet=xmp.xmp_packet(data_mining, terms_url, rights_text=f"© {artist.display_name}"),
            stock_id=None,
            stock_pending=False,
        )
    if stock is None:
        raise BuildFailed(f"item {row.position} names neither a work nor a stock record")
    rights_uri = stock.rights_uri or PUBLIC_DOMAIN_URL
    credit = ", ".join(p for p in (stock.title, stock.creator, stock.institution) if p)
    return _Item(
        **common,
        title=stock.title,
        creator=stock.creator,
        source=stock.institution or stock.source,
        source_kind="institution",
        licence_uri=rights_uri,
        terms_id=None,
        terms_version=None,
        terms_url="",
        terms_seq=None,
        source_url=stock.page_url,
        attribution=f"{credit} ({stock.page_url})" if stock.page_url else credit,
        object_key=keys.stock_original(stock.id),
        # As catalog.tasks.store_stock_image writes on the stock's derivatives.
        packet=xmp.xmp_packet(
            xmp.DataMining.ALLOWED, stock.rights_uri or stock.page_url, stock.rights_statement
        ),
        stock_id=stock.id,
        stock_pending=stock.mirror_status is not MirrorStatus.MIRRORED,
    )


def _items(order_id: int, page: int = PAGE) -> Iterator[_Item]:
    """Every order item, in order of position, read a page at a time in short sessions."""
    after = -1
    while True:
        with transaction() as session:
            batch = _page(session, order_id, after, page)
        if not batch:
            return
        yield from batch
        after = batch[-1].position


def _fetch_stock(item: _Item) -> str:
    """Mirror a stock record now (the catalog's job, run here); "" or why it failed."""
    assert item.stock_id is not None
    import_string(MIRROR_JOB)(item.stock_id)
    with transaction() as session:
        record = session.get(StockRecord, item.stock_id)
        if record is not None and record.mirror_status is MirrorStatus.MIRRORED:
            return ""
        error = record.mirror_error if record is not None else "the record is gone"
    return f"The source could not provide the image: {error or 'unknown error'}"


def _read_original(item: _Item) -> tuple[bytes | None, str]:
    """The original's bytes, fetching unmirrored stock first; (None, reason) when missing."""
    if item.stock_pending:
        reason = _fetch_stock(item)
        if reason:
            return None, reason
    try:
        return storage.get(item.object_key), ""
    except storage.ObjectNotFound:
        if item.stock_id is None:
            raise BuildFailed(f"the original of item {item.position} is not in storage") from None
        return None, "The mirrored image is no longer in storage."


def _progress_step(total: int) -> int:
    return max(1, min(PAGE, total // 100))


class _Build:
    """One run of the build: the shards being written, what was stored, what is missing."""

    def __init__(self, order_id: int, package_id: int, tmp: Path, created: datetime) -> None:
        config = current_app.config
        self.order_id, self.package_id, self.tmp = order_id, package_id, tmp
        self.writer = formats.ShardWriter(
            tmp,
            f"order-{order_id}",
            created,
            max_bytes=int(config["PACKAGE_SHARD_MAX_BYTES"]),
            max_items=int(config["PACKAGE_SHARD_MAX_ITEMS"]),
        )
        self.done = 0
        self.pending: list[dict[str, Any]] = []
        self.missing: list[formats.MissingItem] = []
        self.missing_fee = 0
        self.licences_seen: set[int] = set()
        self.stored: list[str] = []
        self.shards_stored = 0
        with transaction() as session:
            # Once certified, a rebuild must deliver exactly what the certificate vouches for.
            self.certified = certificates.find_certificate(session, order_id) is not None

    def add(self, item: _Item) -> None:
        if self.certified and item.missing_reason:
            data, reason = None, item.missing_reason  # missing it was certified, missing it stays
        else:
            data, reason = _read_original(item)
        if self.certified and data is None and not item.missing_reason:
            raise BuildFailed(
                f"item {item.position} is in the order's certificate but its image cannot be "
                f"read any more ({reason}); restore it before rebuilding"
            )
        prepared = None
        if data is not None:
            try:
                prepared = formats.prepare_image(data, item.packet)
            except ValueError as exc:
                if item.stock_id is None:
                    raise BuildFailed(
                        f"the original of item {item.position} is unreadable"
                    ) from exc
                reason = f"The source's file is not a readable image ({exc})."
        if prepared is None:
            self.missing.append(
                formats.MissingItem(item.key, item.item_id, item.source_url, reason)
            )
            self.missing_fee += item.price_minor
            self.pending.append(_delivered(self.order_id, item.position, None, None, None, reason))
        else:
            self.writer.add(item.record(prepared.sha256, prepared.media_type), prepared)
            self.pending.append(
                _delivered(
                    self.order_id,
                    item.position,
                    prepared.sha256,
                    prepared.media_type,
                    len(prepared.data),
                    "",
                )
            )
            if item.terms_id is not None and item.terms_id not in self.licences_seen:
                self.licences_seen.add(item.terms_id)
                self.stored += _store_licences(self.package_id, self.order_id, [item.terms_id])
        self.done += 1
        self.store_finished_shards()

    def store_finished_shards(self) -> None:
        """Upload each shard as soon as the writer closes it, then free its disk space."""
        while self.shards_stored < len(self.writer.shards):
            shard = self.writer.shards[self.shards_stored]
            path = self.tmp / shard.name
            self.stored.append(
                _store_file(
                    self.package_id,
                    self.order_id,
                    shard.name,
                    path,
                    "application/x-tar",
                    FileKind.SHARD,
                    items=shard.item_count,
                )
            )
            path.unlink()
            self.shards_stored += 1

    def flush(self) -> None:
        """Record what each item shipped, and the progress, in a short transaction."""
        with transaction() as session:
            if self.pending:
                session.execute(update(OrderItem), self.pending)
            package = session.get(Package, self.package_id)
            assert package is not None
            package.items_done = self.done
            package.items_missing = len(self.missing)
        self.pending.clear()


def _build(order_id: int, package_id: int, tmp: Path, old_keys: list[str]) -> None:
    with transaction() as session:
        order = session.get(Order, order_id)
        assert order is not None
        created = _created(order)
        step = _progress_step(order.item_count)
    build = _Build(order_id, package_id, tmp, created)
    for item in _items(order_id):
        build.add(item)
        if len(build.pending) >= step:
            build.flush()
    build.flush()
    shards = build.writer.close()
    build.store_finished_shards()
    _refund_missing(order_id, package_id, build.missing_fee)
    certificate, tree_size, checkpoint = _issue_certificate(order_id)
    with transaction() as session:
        order = session.get(Order, order_id)
        assert order is not None
        info = _dataset_info(session, order, created, tree_size, checkpoint)
    summary = formats.summarize(_delivered_records(order_id), shards)
    parquet = formats.write_parquet(_delivered_records(order_id), tmp / formats.PARQUET_NAME)
    build.stored.append(
        _store_file(
            package_id,
            order_id,
            formats.PARQUET_NAME,
            tmp / formats.PARQUET_NAME,
            "application/vnd.apache.parquet",
            FileKind.METADATA,
            items=summary.items,
        )
    )
    summary_md, summary_json = formats.ai_act_summary(info, summary, build.missing)
    obligations = formats.default_obligations(summary)
    files: list[tuple[str, bytes, str, FileKind]] = [
        ("certificate.json", certificate, "application/json", FileKind.CERTIFICATE),
        (
            "croissant.json",
            formats.croissant_bytes(formats.croissant(info, summary, [parquet, *shards])),
            "application/ld+json",
            FileKind.CROISSANT,
        ),
        (
            "README.md",
            formats.dataset_card(info, summary, obligations, build.missing).encode(),
            _TEXT,
            FileKind.CARD,
        ),
        (
            "ATTRIBUTION.md",
            formats.attribution_markdown(_delivered_records(order_id)).encode(),
            _TEXT,
            FileKind.ATTRIBUTION,
        ),
        ("ai-act-summary.md", summary_md.encode(), _TEXT, FileKind.AI_ACT),
        ("ai-act-summary.json", _pretty_json(summary_json), "application/json", FileKind.AI_ACT),
    ]
    if build.missing:
        missing = formats.missing_json(build.missing)
        files.append(("missing.json", missing, "application/json", FileKind.MISSING))
    for path, body, media_type, kind in files:
        build.stored.append(_store_bytes(package_id, order_id, path, body, media_type, kind))
    with transaction() as session:
        package = session.get(Package, package_id)
        assert package is not None
        package.status = PackageStatus.READY
        package.items_done = build.done
        package.items_missing = len(build.missing)
        listed = select(PackageFile.size_bytes).where(PackageFile.package_id == package_id)
        package.bytes_total = sum(session.scalars(listed))
        package.finished_at = utcnow()
        stale = sorted(set(old_keys) - set(build.stored))
        if stale:
            after_commit(session, lambda: storage.delete_many(stale))
    log.info(
        "package of order %s ready: %s items, %s missing", order_id, build.done, len(build.missing)
    )


def _delivered(
    order_id: int,
    position: int,
    digest: str | None,
    media_type: str | None,
    size: int | None,
    reason: str,
) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "position": position,
        "delivered_sha256": digest,
        "delivered_media_type": media_type,
        "delivered_bytes": size,
        "missing_reason": reason,
    }


def _delivered_records(order_id: int) -> Iterator[formats.ItemRecord]:
    """The records of the delivered items again, in key order, from the database (no image
    is read), for the table, the counts and the attribution list."""
    for item in _items(order_id):
        if item.delivered_sha256 and item.delivered_media_type and not item.missing_reason:
            yield item.record(item.delivered_sha256, item.delivered_media_type)


def licence_title(terms_id: int, version: int, work_title: str) -> str:
    """The heading of a LICENSES/ file; the terms id first, so each version's file name
    (its slug) is its own."""
    return f"Terms {terms_id} (version {version} of “{work_title}”)"


def _store_licences(package_id: int, order_id: int, terms_ids: list[int]) -> list[str]:
    """LICENSES/terms-<id>.md: each terms version's text once, as its public page shows it."""
    texts: dict[str, str] = {}
    with transaction() as session:
        for terms_id in terms_ids:
            terms = session.get(WorkTerms, terms_id)
            assert terms is not None
            text = licence_text(
                TermsSpec.of(terms),
                work_title=terms.work.title,
                artist_name=terms.work.artist.display_name,
                version=terms.version,
            )
            url = external_url("artists.show_terms", terms_id=terms.id)
            title = licence_title(terms.id, terms.version, terms.work.title)
            texts[title] = f"{text}\n\n{url}\n"
    return [
        _store_bytes(package_id, order_id, path, text.encode(), _TEXT, FileKind.LICENCE)
        for path, text in formats.licence_files(texts).items()
    ]


def _store_bytes(
    package_id: int, order_id: int, path: str, body: bytes, media_type: str, kind: FileKind
) -> str:
    with tempfile.NamedTemporaryFile() as handle:
        handle.write(body)
        handle.flush()
        return _store_file(package_id, order_id, path, Path(handle.name), media_type, kind)


def _store_file(
    package_id: int,
    order_id: int,
    path: str,
    source: Path,
    media_type: str,
    kind: FileKind,
    *,
    items: int = 0,
) -> str:
    """Upload one file (streamed) and list it; the row exists only once the object does."""
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    key = keys.package_file(order_id, path)
    with transaction() as session:
        storage.put_file(session, key, source, content_type=media_type)
        session.execute(
            delete(PackageFile).where(
                PackageFile.package_id == package_id, PackageFile.path == path
            )
        )
        session.add(
            PackageFile(
                package_id=package_id,
                path=path,
                storage_key=key,
                size_bytes=size,
                sha256=digest.hexdigest(),
                media_type=media_type,
                kind=kind,
                item_count=items,
            )
        )
    return key


def _pretty_json(value: Any) -> bytes:
    """Keys in the order built (the AI Act summary follows the template's section order)."""
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def _created(order: Order) -> datetime:
    """The package's date (and every tar member's mtime): fixed by the order, so a rebuild
    writes the same bytes."""
    created = order.fulfilled_at or order.paid_at or order.created_at
    return created.astimezone(UTC).replace(microsecond=0)


def _dataset_info(
    session: Session, order: Order, created: datetime, tree_size: int, checkpoint: str
) -> formats.DatasetInfo:
    organization = session.get(Organization, order.organization_id)
    return formats.DatasetInfo(
        name=f"order-{order.id}",
        order_id=order.id,
        order_reference=order.quote.public_id,  # as the certificate names the order
        organization=organization.name if organization is not None else "",
        created=created,
        intended_uses=list(order.bundle.intended_uses),
        description=f"{order.bundle.name}: {order.item_count:,} images bought in order "
        f"{order.id}, each with its provenance and licence.",
        base_url=external_url("delivery.package_page", order_id=order.id),
        publisher="Consent Marketplace",
        ledger_origin=str(current_app.config["LEDGER_ORIGIN"]),
        tree_size_at_purchase=tree_size,
        checkpoint=checkpoint,
    )


def _refund_missing(order_id: int, package_id: int, amount_minor: int) -> None:
    """Refund what the buyer paid for items that could not be delivered, once per order: the
    package row records it in the same transaction as the refund, and the processor's
    idempotency key (buyers.refund_order's, from the order and the amounts) is the same on a
    retry, so a crash between the two never refunds twice."""
    if amount_minor <= 0:
        return
    with transaction() as session:
        package = session.get(Package, package_id, with_for_update=True)
        order = session.get(Order, order_id)
        assert package is not None
        assert order is not None
        if package.missing_refunded_minor or not order.payment_intent_id:
            return
        amount = min(amount_minor, order.total_minor - order.refunded_minor)
        if amount <= 0:
            return
        buyers.refund_order(
            session,
            order,
            amount_minor=amount,
            reason="items that could not be delivered",
            purpose="missing-items",
        )
        package.missing_refunded_minor = amount
    log.info("order %s: refunded %s for undelivered items", order_id, amount)


def _issue_certificate(order_id: int) -> tuple[bytes, int, str]:
    """The order's signed provenance certificate, byte for byte as stored (the certificates
    feature: issued once, reads the order items' delivered_* columns, so it runs after the
    shards are written), with the ledger tree size at purchase and its checkpoint's note."""
    with transaction() as session:
        data = certificates.issue_certificate_bytes(session, order_id)
        issued = certificates.find_certificate(session, order_id)
        assert issued is not None
        checkpoint = ledger.get_checkpoint(session, issued.checkpoint_size).note
        return data, issued.tree_size_at_purchase, checkpoint
