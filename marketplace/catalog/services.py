"""The catalog's rules: keeping search rows in step with works and stock, and collections."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from marketplace import jobs
from marketplace.accounts.models import User, UserRole
from marketplace.artists.models import TermsKind, Work, WorkTerms
from marketplace.artists.terms import ALL_USES_MASK, TermsSpec, uses_mask
from marketplace.catalog import optouts, search
from marketplace.catalog.models import (
    CatalogItem,
    CatalogLicense,
    Collection,
    CollectionItem,
    CollectionJob,
    ItemOptOut,
    JobStatus,
    MirrorStatus,
    Orientation,
    StockRecord,
)
from marketplace.catalog.search import SearchQuery, index_new_items, iter_matching_ids, parse_query
from marketplace.db import transaction, utcnow
from marketplace.ledger import services as ledger
from marketplace.ledger.models import LedgerEntry
from marketplace.optout.models import OptOutRule
from marketplace.storage import keys

log = logging.getLogger(__name__)

# Jobs are queued by name: the job module calls these services, not the other way round.
ADD_QUERY_JOB = "marketplace.catalog.tasks.add_query_to_collection"

ARTISTS_SOURCE = "artists"
COLLECTION_CURSOR = "collection-items"  # names the cursors.py list of a collection's items


class CatalogError(Exception):
    """A request that breaks a catalog rule; the message is safe to show."""


class ItemNotFound(CatalogError):
    pass


class JobNotRetryable(CatalogError):
    """Only a failed job can be queued again."""


class CollectionNotFound(CatalogError):
    pass


def orientation_of(width: int | None, height: int | None) -> Orientation:
    if not width or not height:
        return Orientation.UNKNOWN
    if abs(width - height) <= 0.02 * max(width, height):
        return Orientation.SQUARE
    return Orientation.LANDSCAPE if width > height else Orientation.PORTRAIT


# --- Keeping search rows in step -------------------------------------------------------------


def index_work(session: Session, work: Work) -> CatalogItem:
    """Make the work's search row say what the work is now (available or not).

    The work is read again under a row lock first: a job that loaded it seconds ago (the
    derivatives job renders for a while) must not list a work withdrawn meanwhile."""
    session.flush()  # the caller's own changes to the work, before reading it back
    optouts.wait_for_registrations(session)  # before the work's lock, as registrations do
    session.refresh(work, with_for_update=True)
    item = session.scalar(select(CatalogItem).where(CatalogItem.work_id == work.id))
    created = item is None
    if item is None:
        item = CatalogItem(work_id=work.id, source=ARTISTS_SOURCE, created_at=work.created_at)
        session.add(item)
    terms = work.current_terms
    licensed = terms is not None and terms.kind is TermsKind.LICENSE
    item.available = work.is_available and item.taken_down_at is None
    item.title = work.title
    item.description = work.description
    item.tags = work.tags.replace(",", ", ")
    item.creator = work.artist.display_name[:300]
    item.institution = ""
    item.medium = ""
    item.year_start = item.year_end = work.created_at.year
    item.width, item.height = work.width, work.height
    item.orientation = orientation_of(work.width, work.height)
    item.license = CatalogLicense.LICENSED if licensed else CatalogLicense.CC0
    item.price_minor = (terms.price_minor or 0) if licensed and terms else 0
    item.currency = terms.currency if terms else str(current_app.config["DEFAULT_CURRENCY"])
    item.permitted_uses = uses_mask(TermsSpec.of(terms).permitted) if terms else 0
    item.has_image = work.derivatives_ready
    item.updated_at = utcnow()
    session.flush()
    optouts.check_items(session, [item.id])  # an opted-out picture stays out of the catalog
    if created:
        index_new_items(session, [item.id])  # the database's FTS and the search index
    else:
        search.items_changed(session, [item.id])
    return item


def stock_item_values_from(row: Mapping[str, Any], record_id: int) -> dict[str, Any]:
    """The search row of a stock record given as column values (the ingest's bulk path)."""
    return {
        "stock_id": record_id,
        "available": row.get("withdrawn_at") is None,  # withdrawn by its source: not offered
        "title": row["title"],
        "description": row.get("description", ""),
        "tags": row.get("tags", ""),
        "creator": row.get("creator", "")[:300],
        "institution": row.get("institution", ""),
        "source": row["source"],
        "medium": row.get("medium", "")[:300],
        "year_start": row.get("year_start"),
        "year_end": row.get("year_end"),
        "width": row.get("width"),
        "height": row.get("height"),
        "orientation": orientation_of(row.get("width"), row.get("height")),
        "license": CatalogLicense.PUBLIC_DOMAIN,
        "price_minor": 0,
        "currency": str(current_app.config["DEFAULT_CURRENCY"]),
        "permitted_uses": ALL_USES_MASK,
        "has_image": row.get("mirror_status") is MirrorStatus.MIRRORED,
        "created_at": row.get("created_at") or utcnow(),
        "updated_at": utcnow(),
    }


def stock_item_values(record: StockRecord) -> dict[str, Any]:
    """The search row of a stock record."""
    columns = {c.key: getattr(record, c.key) for c in StockRecord.__table__.columns}
    return stock_item_values_from(columns, record.id)


def index_stock(session: Session, record: StockRecord) -> CatalogItem:
    item = session.scalar(select(CatalogItem).where(CatalogItem.stock_id == record.id))
    values = stock_item_values(record)
    created = item is None
    if item is None:
        item = CatalogItem(**values)
        session.add(item)
    else:
        for name, value in values.items():
            if name != "created_at":
                setattr(item, name, value)
        item.available = item.available and item.taken_down_at is None
    session.flush()
    optouts.check_items(session, [item.id])
    if created:
        index_new_items(session, [item.id])  # the database's FTS and the search index
    else:
        search.items_changed(session, [item.id])
    return item


def apply_optouts(session: Session, item_ids: Sequence[int], *, new: bool = False) -> list[int]:
    """The hook for every bulk write of catalog rows (the ingest calls it once per chunk, after
    writing the rows with `available` from their source's state; `new` when it inserted them
    in this transaction): records what the opt-out registry matches the items by and takes
    those an active rule matches out of the catalog. Returns their ids; the caller queues the
    index update as for any change."""
    return optouts.check_items(session, item_ids, fresh=new)


def optout_registered(session: Session, rule: OptOutRule) -> None:
    """A new opt-out rule: the items it matches leave the catalog in the same transaction."""
    search.items_changed(session, optouts.match_rule(session, rule))


def optout_removed(session: Session, rule_id: int) -> None:
    """A withdrawn opt-out rule: the items it alone kept out are offered again if their own
    state says so (stock not withdrawn by its museum; works re-indexed from their terms)."""
    restored, work_ids = optouts.unmatch_rule(session, rule_id)
    search.items_changed(session, restored)
    for work in session.scalars(select(Work).where(Work.id.in_(work_ids))).all():
        index_work(session, work)


def apply_optouts_to_catalog(
    *, chunk: int = 5000, progress: Callable[[int], object] | None = None
) -> int:
    """Match every catalog item against the registry, a chunk per transaction (run once after
    upgrading to the version that keeps opted-out items out; safe to rerun). Returns how many
    items active rules keep out."""
    last, blocked = 0, 0
    while True:
        with transaction() as session:
            ids = list(
                session.scalars(
                    select(CatalogItem.id)
                    .where(CatalogItem.id > last)
                    .order_by(CatalogItem.id)
                    .limit(chunk)
                )
            )
            if not ids:
                return blocked
            search.items_changed(session, optouts.check_items(session, ids))
            blocked += int(
                session.scalar(
                    select(func.count(func.distinct(ItemOptOut.item_id))).where(
                        ItemOptOut.item_id.in_(ids)
                    )
                )
                or 0
            )
        last = ids[-1]
        if progress is not None:
            progress(len(ids))


def get_item(session: Session, item_id: int) -> CatalogItem:
    """An item a buyer may see: available ones only (404 otherwise)."""
    item = session.get(CatalogItem, item_id)
    if item is None or not item.available or item.taken_down_at is not None:
        raise ItemNotFound(f"No work {item_id} in the catalog.")
    return item


@dataclass(frozen=True)
class ItemDetail:
    """Everything a buyer sees about one available item, for the page and the API alike."""

    item: CatalogItem
    work: Work | None  # an artist's work, or None for stock
    terms: WorkTerms | None  # the work's current terms
    record: StockRecord | None  # the museum record, or None for a work
    entries: list[LedgerEntry]  # its provenance, oldest first


def item_detail(session: Session, item_id: int) -> ItemDetail:
    """An available item with its terms or source record and its ledger entries (ItemNotFound
    if it is not available)."""
    item = get_item(session, item_id)
    work, terms, record = None, None, None
    entries: list[LedgerEntry] = []
    if item.work_id is not None:
        work = session.get(Work, item.work_id)
        terms = work.current_terms if work is not None else None
        entries = list(ledger.entries_for(session, work=item.work_id))
    elif item.stock_id is not None:
        record = session.get(StockRecord, item.stock_id)
        if record is not None and record.ledger_seq is not None:
            entry = ledger.find_entry(session, record.ledger_seq)
            entries = [entry] if entry is not None else []
    return ItemDetail(item=item, work=work, terms=terms, record=record, entries=entries)


def item_for_work(session: Session, work_id: int) -> CatalogItem | None:
    return session.scalar(select(CatalogItem).where(CatalogItem.work_id == work_id))


# --- Collections -----------------------------------------------------------------------------


def _owned_by(user: User) -> Any:
    """A buyer sees their organization's collections; anyone else sees their own."""
    if user.role is UserRole.BUYER and user.organization_id is not None:
        return Collection.organization_id == user.organization_id
    return (Collection.owner_id == user.id) & Collection.organization_id.is_(None)


def list_collections(session: Session, user: User) -> Sequence[tuple[Collection, int]]:
    counts = (
        select(CollectionItem.collection_id, func.count().label("n"))
        .group_by(CollectionItem.collection_id)
        .subquery()
    )
    rows = session.execute(
        select(Collection, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.collection_id == Collection.id)
        .where(_owned_by(user))
        .order_by(Collection.id.desc())
    ).all()
    return [(c, int(n)) for c, n in rows]


def count_items(session: Session, collection: Collection) -> int:
    """How many items the collection holds (the same count list_collections gives)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(CollectionItem)
            .where(CollectionItem.collection_id == collection.id)
        )
        or 0
    )


def get_collection(session: Session, user: User, collection_id: int) -> Collection:
    """The user's (or their organization's) collection; anyone else's is 'not found'."""
    collection = session.scalar(
        select(Collection).where(Collection.id == collection_id, _owned_by(user))
    )
    if collection is None:
        raise CollectionNotFound(f"No collection {collection_id}.")
    return collection


_SHARE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what secrets.token_urlsafe() makes


def shared_collection(session: Session, token: str) -> Collection:
    """The collection shared under `token`; anything that cannot be one of our links is
    'not found' before it reaches the database (a NUL byte would be a PostgreSQL error)."""
    if not _SHARE_TOKEN.fullmatch(token):
        raise CollectionNotFound("No such shared collection.")
    collection = session.scalar(select(Collection).where(Collection.share_token == token))
    if collection is None:
        raise CollectionNotFound("No such shared collection.")
    return collection


def create_collection(session: Session, user: User, name: str) -> Collection:
    name = " ".join(name.split())
    if not name:
        raise CatalogError("Name the collection.")
    collection = Collection(
        owner_id=user.id,
        organization_id=user.organization_id if user.role is UserRole.BUYER else None,
        name=name[:120],
    )
    session.add(collection)
    session.flush()
    return collection


def rename_collection(session: Session, collection: Collection, name: str) -> Collection:
    name = " ".join(name.split())
    if not name:
        raise CatalogError("Name the collection.")
    collection.name = name[:120]
    return collection


def delete_collection(session: Session, collection: Collection) -> None:
    session.execute(delete(CollectionJob).where(CollectionJob.collection_id == collection.id))
    session.execute(delete(CollectionItem).where(CollectionItem.collection_id == collection.id))
    session.delete(collection)


def set_sharing(session: Session, collection: Collection, shared: bool) -> str | None:
    """Share by an unguessable link (a new one each time), or stop sharing."""
    collection.share_token = secrets.token_urlsafe(24) if shared else None
    return collection.share_token


def add_item(session: Session, collection: Collection, item_id: int) -> bool:
    """Add one available item; False if it was already there."""
    get_item(session, item_id)
    rows = [{"collection_id": collection.id, "item_id": item_id}]
    return _insert_items_ignoring_present(session, rows) == 1


def remove_item(session: Session, collection: Collection, item_id: int) -> None:
    found = session.get(CollectionItem, (collection.id, item_id))
    if found is None:
        raise ItemNotFound(f"Work {item_id} is not in this collection.")
    session.delete(found)


def collection_items(
    session: Session, collection: Collection, *, after: int | None = None, limit: int = 48
) -> list[CatalogItem]:
    stmt = (
        select(CatalogItem)
        .join(CollectionItem, CollectionItem.item_id == CatalogItem.id)
        .where(CollectionItem.collection_id == collection.id)
        .order_by(CatalogItem.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(CatalogItem.id > after)
    return list(session.scalars(stmt))


def start_add_by_query(
    session: Session, collection: Collection, query: SearchQuery
) -> CollectionJob:
    """Queue adding every result of `query` (up to COLLECTION_QUERY_CAP) as a job."""
    job = CollectionJob(collection_id=collection.id, query=query.to_params())
    session.add(job)
    session.flush()
    job_id = job.id

    jobs.enqueue_after_commit(session, ADD_QUERY_JOB, job_id, job_id=rq_job_id(job_id))
    return job


def run_add_by_query(job_id: int) -> None:
    """The job's body: add matches in chunks; rerunning adds nothing twice."""
    cap = int(current_app.config["COLLECTION_QUERY_CAP"])
    with transaction() as session:
        job = session.get(CollectionJob, job_id)
        if job is None or job.status is JobStatus.DONE:
            return
        job.status = JobStatus.RUNNING
    try:
        with transaction() as session:
            job = session.get(CollectionJob, job_id)
            assert job is not None
            params = {k: v if isinstance(v, list) else [str(v)] for k, v in job.query.items()}
            query = parse_query(params)
            present = set(
                session.scalars(
                    select(CollectionItem.item_id).where(
                        CollectionItem.collection_id == job.collection_id
                    )
                )
            )
            matched, added, batch = 0, 0, []
            for item_id in iter_matching_ids(session, query, cap + 1):
                matched += 1
                if matched > cap:
                    job.capped = True
                    break
                if item_id not in present:
                    batch.append({"collection_id": job.collection_id, "item_id": item_id})
                    present.add(item_id)
                if len(batch) >= 1000:
                    added += _insert_items_ignoring_present(session, batch)
                    batch = []
            if batch:
                added += _insert_items_ignoring_present(session, batch)
            job.matched = min(matched, cap)
            job.added = added
            job.status = JobStatus.DONE
            job.finished_at = utcnow()
        log.info("collection job %s added %s of %s matches", job_id, added, matched)
    except Exception:
        # The details (SQL, parameters, traceback) go to the log and RQ, never to the user.
        log.exception("collection job %s failed", job_id)
        _mark_failed(job_id, JOB_FAILED_MESSAGE)
        raise


JOB_FAILED_MESSAGE = "Adding the search results failed on our side. Retry the job."


def _insert_items_ignoring_present(session: Session, rows: list[dict[str, int]]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING: a row another job added meanwhile is skipped, not an
    error, so two jobs filling one collection at once both finish. Returns rows inserted."""
    conflict = ["collection_id", "item_id"]
    stmt = (
        postgresql_insert(CollectionItem).on_conflict_do_nothing(index_elements=conflict)
        if session.get_bind().dialect.name == "postgresql"
        else sqlite_insert(CollectionItem).on_conflict_do_nothing(index_elements=conflict)
    ).returning(CollectionItem.item_id)
    return len(session.scalars(stmt, rows).all())


def _mark_failed(job_id: int, reason: str) -> None:
    with transaction() as session:
        job = session.get(CollectionJob, job_id)
        if job is not None and job.status is not JobStatus.DONE:
            job.status = JobStatus.FAILED
            job.error = reason
            job.finished_at = utcnow()


def rq_job_id(job_id: int) -> str:
    return f"cq-{job_id}"


def get_job(session: Session, collection: Collection, job_id: int) -> CollectionJob:
    """The job, its status reconciled with RQ's (see `reconcile_job`)."""
    job = session.get(CollectionJob, job_id)
    if job is None or job.collection_id != collection.id:
        raise CollectionNotFound(f"No job {job_id} for this collection.")
    return reconcile_job(session, job)


def reconcile_job(session: Session, job: CollectionJob) -> CollectionJob:
    """A job RQ has given up on (its worker was killed, it was stopped or canceled, or RQ
    lost it) reads as failed with a reason and can be retried, instead of `running` forever."""
    if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        return job
    state = jobs.job_state(rq_job_id(job.id))
    if state is None:
        return job
    if state.given_up:
        reason = f"{state.reason} Retry the job."
    elif state.status == "missing":
        reason = "The job was lost by the job queue. Retry the job."
    else:
        return job
    _mark_failed(job.id, reason)
    session.refresh(job)
    return job


def retry_job(session: Session, collection: Collection, job_id: int) -> CollectionJob:
    """Queue a failed job again; adding is idempotent, so items already added stay once."""
    job = get_job(session, collection, job_id)
    if job.status is not JobStatus.FAILED:
        raise JobNotRetryable(f"Job {job.id} is {job.status.value}; only failed jobs are retried.")
    job.status = JobStatus.QUEUED
    job.error = ""
    job.finished_at = None
    session.flush()
    jobs.enqueue_after_commit(session, ADD_QUERY_JOB, job.id, job_id=rq_job_id(job.id))
    return job


def recent_jobs(session: Session, collection: Collection) -> Sequence[CollectionJob]:
    found = session.scalars(
        select(CollectionJob)
        .where(CollectionJob.collection_id == collection.id)
        .order_by(CollectionJob.id.desc())
        .limit(5)
    ).all()
    return [reconcile_job(session, job) for job in found]


def item_image_key(session: Session, item: CatalogItem, name: str) -> str | None:
    """Where the item's thumbnail or preview lives, if it has one."""
    if item.work_id is not None:
        work = session.get(Work, item.work_id)
        if work is None or not work.derivatives_ready:
            return None
        return keys.work_derivative(work.id, work.derivatives_version, name)
    if item.stock_id is not None and item.has_image:
        record = session.get(StockRecord, item.stock_id)
        if record is None or not record.derivatives_version:
            return None
        return keys.stock_derivative(record.id, record.derivatives_version, name)
    return None
