"""Compliance checks: upload a manifest, classify it in a job, read the results.

The upload is checked before anything is written (a file that is no manifest, has no URL
column or no rows is refused with a sentence saying why); then the file goes to storage and a
check row is recorded in one transaction (storage removes the object if it rolls back), and
the job is queued after the commit. The job loads a registry snapshot, runs the local engine
over the stored file and stores one result row per manifest row as CSV.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
from flask import current_app
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from marketplace import imaging, jobs, storage
from marketplace.accounts.models import Organization, User
from marketplace.artists.models import Work
from marketplace.artists.terms import PERMITTED_USES
from marketplace.buyers.eligibility import INTENDED_USES
from marketplace.catalog.models import CatalogItem, StockRecord
from marketplace.compliance import engine
from marketplace.compliance.classifier import (
    LICENCES,
    RESULT_SCHEMA,
    CatalogEntry,
    CatalogIndex,
    HashRules,
    RegistrySnapshot,
)
from marketplace.compliance.manifest import (
    FIELDS,
    FORMAT_LABELS,
    ManifestError,
    ManifestReader,
    has_rows,
)
from marketplace.compliance.models import CheckStatus, ComplianceCheck
from marketplace.db import transaction, utcnow
from marketplace.optout import snapshot as address_snapshot
from marketplace.optout.models import RuleKind
from marketplace.reservations.matching import ReservationIndex
from marketplace.storage import keys
from marketplace.text import control_character_problem

log = logging.getLogger(__name__)

RUN_JOB = "marketplace.compliance.tasks.run_check"
JOB_FAILED_MESSAGE = "Checking the manifest failed on our side. Upload it again to retry."
FILENAME_MAX = 255
DEFAULT_USES = ("generative_training",)


class ComplianceError(Exception):
    """A check that cannot be made; the message is safe to show."""


class CheckNotFound(ComplianceError):
    pass


# --- The registry snapshot -----------------------------------------------------------------


def _micros_sql(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)"
    return (
        f"CAST(strftime('%s', {column}) AS INTEGER) * 1000000"
        f" + CAST(substr({column}, 21, 6) AS INTEGER)"
    )


def load_snapshot(session: Session, *, phash_distance: int) -> RegistrySnapshot:
    """The registry and the catalog as committed now: the opt-out address rules from this
    process's copy, the file-hash and pHash rules and the available catalog items read here."""
    engine_ = session.get_bind().engine
    addresses = address_snapshot.current(engine_)
    created = _micros_sql(session.get_bind().dialect.name, "created_at")
    digests: list[tuple[int, str, int]] = []
    phashes: list[tuple[int, int, int]] = []
    rows = session.execute(
        text(
            f"SELECT id, kind, value, phash, {created} FROM optout_rules"  # noqa: S608
            " WHERE kind IN (:sha, :phash) AND removed_at IS NULL"
        ).execution_options(yield_per=50_000),
        {"sha": RuleKind.SHA256.value, "phash": RuleKind.PHASH.value},
    )
    for rule_id, kind, value, phash, when in rows:
        if kind == RuleKind.SHA256.value:
            digests.append((rule_id, value, int(when)))
        elif phash is not None:
            phashes.append((rule_id, imaging.from_signed64(int(phash)), int(when)))
    hashes = HashRules.build(digests, phashes)

    entries: list[CatalogEntry] = []
    urls: list[tuple[int, str]] = []
    item_digests: list[tuple[int, str]] = []
    item_phashes: list[tuple[int, int]] = []
    query = (
        select(
            CatalogItem.id,
            CatalogItem.license,
            CatalogItem.price_minor,
            CatalogItem.currency,
            CatalogItem.permitted_uses,
            Work.sha256,
            Work.phash,
            StockRecord.sha256,
            StockRecord.phash,
            StockRecord.image_urls,
        )
        .select_from(CatalogItem)
        .outerjoin(Work, Work.id == CatalogItem.work_id)
        .outerjoin(StockRecord, StockRecord.id == CatalogItem.stock_id)
        .where(CatalogItem.available.is_(True))
        .order_by(CatalogItem.id)
        .execution_options(yield_per=20_000)
    )
    for (
        item_id,
        licence,
        price,
        currency,
        uses,
        w_sha,
        w_phash,
        s_sha,
        s_phash,
        s_urls,
    ) in session.execute(query):
        position = len(entries)
        entries.append(CatalogEntry(item_id, str(licence), int(price), currency, int(uses)))
        digest = w_sha or s_sha
        if digest:
            item_digests.append((position, digest))
        look = w_phash if w_phash is not None else s_phash
        if look is not None:
            item_phashes.append((position, imaging.from_signed64(int(look))))
        urls.extend((position, url) for url in s_urls or [] if url)
    assert all(e.licence in LICENCES for e in entries)
    catalog = CatalogIndex.build(entries, urls, item_digests, item_phashes)
    return RegistrySnapshot(
        addresses=addresses,
        hashes=hashes,
        catalog=catalog,
        reservations=ReservationIndex.from_session(session),
        phash_distance=phash_distance,
        uses=PERMITTED_USES,
    )


# --- Uploading -----------------------------------------------------------------------------


def parse_uses(values: Sequence[str]) -> list[str]:
    """Declared intended uses (comma-separated or repeated); ComplianceError for unknown."""
    uses = [u.strip() for value in values for u in value.split(",") if u.strip()]
    unknown = [u for u in uses if u not in INTENDED_USES]
    if unknown:
        raise ComplianceError(
            f"Unknown intended use {unknown[0][:40]!r}; choose from {', '.join(INTENDED_USES)}."
        )
    return list(dict.fromkeys(uses)) or list(DEFAULT_USES)


@dataclass(frozen=True)
class Upload:
    path: Path
    filename: str


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def create_check(
    session: Session,
    user: User,
    organization: Organization,
    upload: Upload,
    *,
    columns: dict[str, str] | None = None,
    intended_uses: Sequence[str] = DEFAULT_USES,
) -> ComplianceCheck:
    """Record a check of the manifest at `upload.path` and queue its job.

    ComplianceError, with nothing written, for a file that is no manifest, lacks a URL
    column or has no rows. The caller owns the transaction."""
    filename = (upload.filename or "manifest").strip()[:FILENAME_MAX] or "manifest"
    uses = parse_uses(intended_uses)
    chosen = {k: v.strip() for k, v in (columns or {}).items() if v and v.strip()}
    for label, value in [("The file name", filename), *chosen.items()]:
        problem = control_character_problem(value)
        if problem is not None:
            name = label if label == "The file name" else f"The {label} column name"
            raise ComplianceError(f"{name} {problem}.")
    try:
        reader = ManifestReader(
            upload.path,
            mapping=chosen,
            max_image_pixels=int(current_app.config["MAX_IMAGE_PIXELS"]),
        )
        if not has_rows(reader):
            raise ManifestError("The manifest has no rows: nothing to check.")
    except ManifestError as exc:
        raise ComplianceError(str(exc)) from exc
    check = ComplianceCheck(
        organization_id=organization.id,
        created_by_id=user.id,
        filename=filename,
        format=reader.format,
        size_bytes=reader.size_bytes,
        sha256=_file_sha256(upload.path),
        columns={f: reader.mapping[f] for f in FIELDS if f in reader.mapping},
        intended_uses=uses,
        manifest_key="",
        status=CheckStatus.QUEUED,
        summary={},
    )
    session.add(check)
    session.flush()
    check.manifest_key = keys.compliance_manifest(check.id)
    check.job_id = f"compliance-{check.id}"
    storage.put_file(
        session, check.manifest_key, upload.path, content_type="application/octet-stream"
    )
    jobs.enqueue_after_commit(session, RUN_JOB, check.id, job_id=check.job_id)
    log.info("compliance check %s queued (%s, %s bytes)", check.id, check.format, check.size_bytes)
    return check


# --- Reading -------------------------------------------------------------------------------


def get_check(session: Session, organization: Organization, check_id: int) -> ComplianceCheck:
    """The organization's check; CheckNotFound for another organization's, as for none."""
    check = session.get(ComplianceCheck, check_id)
    if check is None or check.organization_id != organization.id:
        raise CheckNotFound(f"No compliance check {check_id} in your organization.")
    return check


def list_checks(
    session: Session, organization: Organization, limit: int = 50
) -> Sequence[ComplianceCheck]:
    return session.scalars(
        select(ComplianceCheck)
        .where(ComplianceCheck.organization_id == organization.id)
        .order_by(ComplianceCheck.id.desc())
        .limit(limit)
    ).all()


@dataclass(frozen=True)
class CheckState:
    status: str
    error: str


def state_of(check: ComplianceCheck) -> CheckState:
    """The check's status as people should see it: a job RQ gave up on is failed, even
    before anything could record it."""
    if check.status in (CheckStatus.QUEUED, CheckStatus.RUNNING) and check.job_id:
        found = jobs.job_state(check.job_id)
        if found is not None and found.given_up:
            return CheckState(CheckStatus.FAILED.value, found.reason)
    return CheckState(check.status.value, check.error)


def format_label(check: ComplianceCheck) -> str:
    return FORMAT_LABELS.get(check.format, check.format)


def rows_url(check: ComplianceCheck) -> str:
    """A signed, expiring link to the per-row CSV; ComplianceError before the job is done."""
    if check.status is not CheckStatus.DONE or not check.rows_key:
        raise ComplianceError("The rows are ready once the check is done.")
    return storage.download_url(
        check.rows_key, f"compliance-check-{check.id}-rows.csv", content_type="text/csv"
    )


# --- The job -------------------------------------------------------------------------------


def run_check(check_id: int) -> None:
    """The job: classify every row of the stored manifest. Safe to rerun: a done check is
    left alone; any other starts again and rewrites the same result object."""
    config = current_app.config
    with transaction() as session:
        check = session.get(ComplianceCheck, check_id)
        if check is None or check.status is CheckStatus.DONE:
            return
        check.status = CheckStatus.RUNNING
        check.started_at = utcnow()
        check.attempts += 1
        check.progress, check.rows_done, check.error = 0.0, 0, ""
        manifest_key, columns, uses = check.manifest_key, dict(check.columns), check.intended_uses
    try:
        with transaction() as session:
            snapshot = load_snapshot(session, phash_distance=int(config["OPTOUT_PHASH_DISTANCE"]))
        summary = _classify_stored(check_id, manifest_key, columns, uses, snapshot, config)
    except ManifestError as exc:
        _mark_failed(check_id, str(exc))
        return
    except Exception:
        log.exception("compliance check %s failed", check_id)
        _mark_failed(check_id, JOB_FAILED_MESSAGE)
        raise
    log.info("compliance check %s done: %s rows", check_id, summary.rows)


def _classify_stored(
    check_id: int,
    manifest_key: str,
    columns: dict[str, str],
    uses: list[str],
    snapshot: RegistrySnapshot,
    config: Any,
) -> engine.Summary:
    def progress(summary: engine.Summary, share: float) -> None:
        with transaction() as session:
            session.execute(
                update(ComplianceCheck)
                .where(ComplianceCheck.id == check_id)
                .values(progress=share, rows_done=summary.rows)
            )

    with (
        storage.local_file(manifest_key) as path,
        tempfile.TemporaryDirectory(prefix="compliance-") as folder,
    ):
        reader = ManifestReader(
            path, mapping=columns, max_image_pixels=int(config["MAX_IMAGE_PIXELS"])
        )
        out = Path(folder) / "rows.csv"
        with pacsv.CSVWriter(str(out), RESULT_SCHEMA) as writer:
            summary = engine.run(reader, snapshot, uses, writer.write_batch, progress)
        result = summary.to_json()
        result["reservations_consulted"] = snapshot.reservations is not None
        with transaction() as session:
            check = session.get(ComplianceCheck, check_id)
            if check is None:
                return summary
            check.rows_key = keys.compliance_rows(check_id)
            storage.put_file(session, check.rows_key, out, content_type="text/csv")
            check.status = CheckStatus.DONE
            check.progress = 1.0
            check.rows_done = summary.rows
            check.summary = result
            check.finished_at = utcnow()
    return summary


def _mark_failed(check_id: int, reason: str) -> None:
    with transaction() as session:
        check = session.get(ComplianceCheck, check_id)
        if check is not None and check.status is not CheckStatus.DONE:
            check.status = CheckStatus.FAILED
            check.error = reason
            check.finished_at = utcnow()


def classify_file(
    path: Path,
    snapshot: RegistrySnapshot,
    intended_uses: Sequence[str],
    sink: Any,
    *,
    columns: dict[str, str] | None = None,
) -> engine.Summary:
    """The CLI's path: the same reader, classifier and engine as the job, on a local file."""
    reader = ManifestReader(path, mapping=columns)
    return engine.run(reader, snapshot, parse_uses(intended_uses), sink)
