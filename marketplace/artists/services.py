"""Artists' rules: profiles, registering works, terms versions, withdrawing consent.

Functions take a Session and plain values and never commit, except `upload_batch`, which
commits each file on its own so that one bad file does not cost the others.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from marketplace import imaging, jobs, storage
from marketplace.accounts.models import User
from marketplace.artists import consent, tasks
from marketplace.artists.models import Artist, TermsKind, Work, WorkStatus, WorkTerms
from marketplace.artists.terms import USE_FLAGS, TermsInvalid, TermsSpec
from marketplace.catalog import services as catalog
from marketplace.db import transaction, utcnow
from marketplace.ledger import services as ledger
from marketplace.ledger.kinds import EntryKind
from marketplace.optout import services as optout
from marketplace.storage import keys
from marketplace.text import first_problem

log = logging.getLogger(__name__)

MAX_TAGS = 30
COUNTRY_CODES_HINT = "a two-letter ISO 3166 code such as FR"


class ArtistError(Exception):
    """A request that breaks an artist rule; the message is safe to show."""


class WorkNotFound(ArtistError):
    pass


class DuplicateUpload(ArtistError):
    """The artist already registered this exact file."""

    def __init__(self, work_id: int) -> None:
        super().__init__(f"is already uploaded as work {work_id}.")
        self.work_id = work_id


class ConsentConfirmationRequired(ArtistError):
    """The file says 'no training' and the artist has not confirmed licensing it anyway."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__(
            "This file's own metadata says it must not be used for AI training: "
            + " ".join(reasons)
            + " Confirm that you, the rights holder, want to offer it anyway."
        )
        self.reasons = list(reasons)


# --- Profiles ------------------------------------------------------------------------------


def create_profile(session: Session, user: User, *, display_name: str) -> Artist:
    """The public profile every artist account has from sign-up on."""
    artist = Artist(user=user, display_name=display_name.strip()[:120])
    session.add(artist)
    session.flush()
    return artist


def update_profile(
    session: Session, artist: Artist, *, display_name: str, bio: str, links: str, country: str
) -> Artist:
    display_name = display_name.strip()
    if not display_name:
        raise ArtistError("Your public name cannot be empty.")
    country = country.strip().upper()
    if country and (len(country) != 2 or not country.isalpha()):
        raise ArtistError(f"Country must be {COUNTRY_CODES_HINT}.")
    cleaned_links = []
    for line in links.splitlines():
        line = line.strip()
        if not line:
            continue
        if not line.startswith(("https://", "http://")) or len(line) > 300:
            raise ArtistError(f"Links must be http(s) addresses: {line[:60]!r}")
        cleaned_links.append(line)
    if len(cleaned_links) > 10:
        raise ArtistError("Give at most ten links.")
    artist.display_name = display_name[:120]
    artist.bio = bio.strip()[:5000]
    artist.links = "\n".join(cleaned_links)
    artist.country = country
    return artist


def set_default_terms(session: Session, artist: Artist, spec: TermsSpec) -> TermsSpec:
    normalized = _normalize(spec)
    artist.default_terms = normalized.to_json()
    return normalized


def default_terms(artist: Artist) -> TermsSpec:
    """The artist's default, or 'not available': nothing is offered without a choice."""
    if artist.default_terms:
        return TermsSpec.from_json(artist.default_terms)
    return TermsSpec(TermsKind.NOT_AVAILABLE)


def _normalize(spec: TermsSpec) -> TermsSpec:
    config = current_app.config
    return spec.normalized(
        min_price=int(config["PRICE_MIN_MINOR"]),
        max_price=int(config["PRICE_MAX_MINOR"]),
        currency=str(config["DEFAULT_CURRENCY"]),
    )


# --- Works ---------------------------------------------------------------------------------


def get_work(session: Session, work_id: int) -> Work:
    work = session.get(Work, work_id)
    if work is None:
        raise WorkNotFound(f"No work {work_id}.")
    return work


def get_own_work(session: Session, artist: Artist, work_id: int) -> Work:
    """The artist's own work; WorkNotFound if absent or someone else's, in the same words, so
    that nobody learns from the answer whether another artist's work id exists."""
    work = session.get(Work, work_id)
    if work is None or work.artist_id != artist.id:
        raise WorkNotFound(f"No work {work_id} among your works.")
    return work


def list_works(session: Session, artist: Artist) -> Sequence[Work]:
    return session.scalars(
        select(Work).where(Work.artist_id == artist.id).order_by(Work.id.desc())
    ).all()


def public_works(session: Session, artist: Artist) -> list[Work]:
    """What the public profile lists: works offered for licensing or donation now."""
    works = session.scalars(
        select(Work)
        .where(Work.artist_id == artist.id, Work.status == WorkStatus.ACTIVE)
        .order_by(Work.id.desc())
    ).all()
    return [w for w in works if w.is_available]


def clean_tags(tags: str | Sequence[str]) -> str:
    parts = tags.split(",") if isinstance(tags, str) else list(tags)
    seen: list[str] = []
    for part in parts:
        tag = " ".join(part.strip().lower().split())[:40]
        if tag and tag not in seen:
            seen.append(tag)
    return ",".join(seen[:MAX_TAGS])


def _duplicate_reason(session: Session, artist: Artist, sha256: str, phash: int) -> str | None:
    """Why a new upload looks like another account's work, or None."""
    same_file = session.scalar(
        select(Work.id).where(Work.sha256 == sha256, Work.artist_id != artist.id).limit(1)
    )
    if same_file is not None:
        return "The same file is already registered by another account."
    limit = int(current_app.config["DUPLICATE_PHASH_DISTANCE"])
    bands = imaging.phash_bands(phash)
    columns = (Work.phash_b0, Work.phash_b1, Work.phash_b2, Work.phash_b3)
    candidates = session.execute(
        select(Work.id, Work.phash).where(
            Work.artist_id != artist.id,
            or_(*(c.in_(imaging.band_neighbours(b)) for c, b in zip(columns, bands, strict=True))),
        )
    )
    for _, other in candidates:
        distance = imaging.hamming(phash, imaging.from_signed64(int(other)))
        if distance <= limit:
            return (
                f"The image looks almost identical (perceptual distance {distance}) to a work "
                "registered by another account."
            )
    return None


def _refuse_control_characters(fields: dict[str, str | Sequence[str]]) -> None:
    """Uploads arrive by form, API and batch CSV (cells and file names no form field checked):
    the shared rule (marketplace.text) applies to all of them here, before anything is read."""
    for name, value in fields.items():
        problem = first_problem([value] if isinstance(value, str) else value)
        if problem is not None:
            raise ArtistError(f"The {name} {problem}.")


def register_work(
    session: Session,
    artist: Artist,
    actor: User,
    data: bytes,
    *,
    filename: str = "",
    title: str = "",
    description: str = "",
    tags: str | Sequence[str] = "",
    terms: TermsSpec | None = None,
    confirm_override: bool = False,
) -> Work:
    """Store the original, log it in the ledger and set its first terms, or do none of it.

    Raises ImageRejected, DuplicateUpload, TermsInvalid or ConsentConfirmationRequired before
    anything is written. The caller owns the transaction; a job makes derivatives after commit.
    """
    _refuse_control_characters(
        {"file name": filename, "title": title, "description": description, "tags": tags}
    )
    config = current_app.config
    image = imaging.inspect_image(
        data, max_bytes=int(config["MAX_UPLOAD_BYTES"]), max_pixels=int(config["MAX_IMAGE_PIXELS"])
    )
    imaging.check_min_side(image, int(config["MIN_IMAGE_SIDE_PX"]))
    again = session.scalar(
        select(Work.id).where(Work.artist_id == artist.id, Work.sha256 == image.sha256).limit(1)
    )
    if again is not None:
        raise DuplicateUpload(again)
    spec = _normalize(terms or default_terms(artist))
    signals = consent.read_consent_signals(data, image.mime)
    offered = spec.kind is not TermsKind.NOT_AVAILABLE
    if signals.prohibits_training and offered and not confirm_override:
        raise ConsentConfirmationRequired(signals.reasons)
    title = (title or PurePath(filename).stem or "Untitled").strip()[:200]
    duplicate = _duplicate_reason(session, artist, image.sha256, image.phash)
    bands = imaging.phash_bands(image.phash)
    work = Work(
        artist=artist,
        title=title,
        description=description.strip()[:5000],
        tags=clean_tags(tags),
        original_filename=PurePath(filename).name[:255],
        format=image.format,
        mime=image.mime,
        width=image.width,
        height=image.height,
        size_bytes=image.size_bytes,
        sha256=image.sha256,
        phash=imaging.to_signed64(image.phash),
        phash_b0=bands[0],
        phash_b1=bands[1],
        phash_b2=bands[2],
        phash_b3=bands[3],
        status=WorkStatus.REVIEW if duplicate else WorkStatus.ACTIVE,
        review_reason=duplicate or "",
        embedded_consent=signals.to_json(),
        file_prohibits_training=signals.prohibits_training,
    )
    session.add(work)
    session.flush()  # work.id names the object and the ledger subject
    storage.put(session, keys.work_original(work.id), data, content_type=image.mime)
    ledger.append(
        session,
        EntryKind.WORK_REGISTERED,
        subject={"work": work.id, "artist": artist.id},
        payload={
            "sha256": image.sha256,
            "phash": imaging.format_phash(image.phash),
            "title": title,
            "format": image.format,
            "width": image.width,
            "height": image.height,
            "file_prohibits_training": signals.prohibits_training,
            "in_review": bool(duplicate),
        },
    )
    _add_terms_version(session, work, actor, spec, confirm_override=confirm_override)
    log.info("work %s registered by artist %s (%s)", work.id, artist.id, work.status.value)
    return work


def update_work_details(
    session: Session, work: Work, *, title: str, description: str, tags: str
) -> Work:
    title = title.strip()
    if not title:
        raise ArtistError("A work needs a title.")
    work.title = title[:200]
    work.description = description.strip()[:5000]
    work.tags = clean_tags(tags)
    _index(session, work)
    return work


def _add_terms_version(
    session: Session, work: Work, actor: User, spec: TermsSpec, *, confirm_override: bool
) -> WorkTerms:
    version = (
        session.scalar(select(func.max(WorkTerms.version)).where(WorkTerms.work_id == work.id)) or 0
    ) + 1
    overrides = work.file_prohibits_training and spec.kind is not TermsKind.NOT_AVAILABLE
    seq = ledger.append(
        session,
        EntryKind.WORK_TERMS_SET,
        subject={"work": work.id, "artist": work.artist_id},
        payload={
            "version": version,
            **spec.to_json(),
            "overrides_file_signal": overrides and confirm_override,
        },
    )
    terms = WorkTerms(
        work_id=work.id,
        version=version,
        kind=spec.kind,
        price_minor=spec.price_minor,
        currency=spec.currency,
        **{flag: getattr(spec, flag) for flag in USE_FLAGS},
        overrides_file_signal=overrides and confirm_override,
        created_by_id=actor.id,
        ledger_seq=seq,
    )
    session.add(terms)
    session.flush()
    work.current_terms = terms
    _sync_registry(session, work, actor, spec)
    _rerender_derivatives(session, work)
    _index(session, work)
    return terms


def set_terms(
    session: Session, work: Work, actor: User, spec: TermsSpec, *, confirm_override: bool = False
) -> WorkTerms:
    """A new terms version (same terms as now: nothing changes). Makes a withdrawn work
    available again only by offering it (donate or licence), which is fresh consent."""
    spec = _normalize(spec)
    current = work.current_terms
    if (
        current is not None
        and TermsSpec.of(current) == spec
        and work.status is not (WorkStatus.WITHDRAWN)
    ):
        return current
    offered = spec.kind is not TermsKind.NOT_AVAILABLE
    if work.file_prohibits_training and offered and not confirm_override:
        raise ConsentConfirmationRequired(work.embedded_consent.get("reasons", []))
    terms = _add_terms_version(session, work, actor, spec, confirm_override=confirm_override)
    if work.status is WorkStatus.WITHDRAWN and spec.kind is not TermsKind.NOT_AVAILABLE:
        work.status = WorkStatus.ACTIVE
        work.withdrawn_at = None
        _index(session, work)
    return terms


def withdraw_consent(session: Session, work: Work, actor: User) -> Work:
    """Take the work out of every future sale now; past sales stay valid."""
    if work.status is WorkStatus.WITHDRAWN:
        return work
    work.status = WorkStatus.WITHDRAWN
    work.withdrawn_at = utcnow()
    ledger.append(
        session,
        EntryKind.WORK_CONSENT_WITHDRAWN,
        subject={"work": work.id, "artist": work.artist_id},
        payload={"terms_version": work.current_terms.version if work.current_terms else 0},
    )
    _index(session, work)
    log.info("consent withdrawn for work %s", work.id)
    return work


def clear_review(session: Session, work: Work, admin: User, note: str = "") -> Work:
    """An administrator found the suspected duplicate legitimate: the work may be offered."""
    if work.status is not WorkStatus.REVIEW:
        raise ArtistError("This work is not waiting for review.")
    work.status = WorkStatus.ACTIVE
    ledger.append(
        session,
        EntryKind.WORK_REVIEW_CLEARED,
        subject={"work": work.id, "artist": work.artist_id},
        payload={"note": note.strip()[:500], "reason": work.review_reason},
    )
    work.review_reason = ""
    _index(session, work)
    return work


def works_in_review(session: Session) -> Sequence[Work]:
    return session.scalars(
        select(Work).where(Work.status == WorkStatus.REVIEW).order_by(Work.id)
    ).all()


def _sync_registry(session: Session, work: Work, actor: User, spec: TermsSpec) -> None:
    optout.sync_work_rules(
        session,
        work.artist.user,
        work.id,
        work.sha256,
        imaging.from_signed64(work.phash),
        spec.kind is TermsKind.NOT_AVAILABLE,
    )


def _index(session: Session, work: Work) -> None:
    """Keep the work's catalog row in step (available to buyers or not)."""
    catalog.index_work(session, work)


def _rerender_derivatives(session: Session, work: Work) -> None:
    work_id = work.id
    jobs.enqueue_after_commit(
        session, tasks.make_derivatives, work_id, job_id=f"derivatives-{work_id}"
    )


# --- Batches -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadResult:
    filename: str
    work_id: int | None = None
    error: str | None = None
    needs_confirmation: bool = False


@dataclass(frozen=True)
class Metadata:
    title: str = ""
    description: str = ""
    tags: str = ""


class MetadataUnreadable(ArtistError):
    """The batch's CSV cannot be read; nothing is uploaded rather than files without titles."""


def parse_metadata_csv(data: bytes) -> tuple[dict[str, Metadata], list[str]]:
    """filename,title,description,tags rows by file name, plus notes on rows (with line numbers).

    A lone CR ends a line as CRLF and LF do (old Mac and some spreadsheet exports). Raises
    MetadataUnreadable for a file that is not CSV we can read: not UTF-8, no filename column, a
    field over the csv module's limit or a broken quote.
    """
    problems: list[str] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MetadataUnreadable("The CSV is not UTF-8 text; save it as CSV UTF-8.") from exc
    reader = csv.DictReader(io.StringIO(text, newline=None))
    rows: dict[str, Metadata] = {}
    try:
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        if "filename" not in fields:
            raise MetadataUnreadable("The CSV needs a header row with a 'filename' column.")
        reader.fieldnames = fields
        for row in reader:
            name = (row.get("filename") or "").strip()
            if not name:
                problems.append(f"CSV line {reader.line_num}: no file name.")
                continue
            rows[PurePath(name).name] = Metadata(
                title=(row.get("title") or "").strip(),
                description=(row.get("description") or "").strip(),
                tags=(row.get("tags") or "").strip(),
            )
    except csv.Error as exc:
        limit = csv.field_size_limit()
        reason = (
            f"a field is longer than {limit:,} characters"
            if "field larger than field limit" in str(exc)
            else "it is not well-formed CSV (check the quotes)"
        )
        raise MetadataUnreadable(
            f"The CSV cannot be read at line {reader.line_num + 1}: {reason}."
        ) from exc
    return rows, problems


def upload_batch(
    artist_id: int,
    actor_id: int,
    files: Sequence[tuple[str, bytes]],
    *,
    metadata_csv: bytes | None = None,
    terms: TermsSpec | None = None,
    confirm_override: bool = False,
) -> tuple[list[UploadResult], list[str]]:
    """Register each file in its own transaction: a bad file gets its own error, and leaves no
    row and no object behind, while the rest go in. Returns per-file results and CSV notes;
    raises MetadataUnreadable, before any file, when the CSV cannot be read."""
    metadata, notes = parse_metadata_csv(metadata_csv) if metadata_csv else ({}, [])
    uploaded = {PurePath(name).name for name, _ in files}
    for name in sorted(set(metadata) - uploaded):
        notes.append(f"The CSV describes {name!r}, which was not uploaded.")
    results: list[UploadResult] = []
    for filename, data in files:
        described = metadata.get(PurePath(filename).name, Metadata())
        try:
            with transaction() as session:
                artist = session.get(Artist, artist_id)
                actor = session.get(User, actor_id)
                if artist is None or actor is None:
                    raise ArtistError("The account is gone.")
                work = register_work(
                    session,
                    artist,
                    actor,
                    data,
                    filename=filename,
                    title=described.title,
                    description=described.description,
                    tags=described.tags,
                    terms=terms,
                    confirm_override=confirm_override,
                )
        except ConsentConfirmationRequired as exc:
            results.append(UploadResult(filename, error=str(exc), needs_confirmation=True))
        except imaging.ImageRejected as exc:
            results.append(UploadResult(filename, error=imaging.rejection(filename, exc)))
        except (TermsInvalid, ArtistError) as exc:
            results.append(UploadResult(filename, error=f"{filename}: {exc}"))
        else:
            results.append(UploadResult(filename, work_id=work.id))
    return results, notes


def apply_terms_to_works(
    session: Session,
    artist: Artist,
    actor: User,
    work_ids: Sequence[int],
    spec: TermsSpec,
    *,
    confirm_override: bool = False,
) -> list[WorkTerms]:
    """Batch terms: the same terms on several of the artist's own works, all or none."""
    works = [get_own_work(session, artist, work_id) for work_id in work_ids]
    if not works:
        raise ArtistError("Select at least one work.")
    return [set_terms(session, w, actor, spec, confirm_override=confirm_override) for w in works]


@dataclass(frozen=True)
class TermsStanding:
    """Whether a terms version is the one in force, and if not, what replaced it and when."""

    status: str  # "current", "superseded" (a later version exists) or "withdrawn"
    current: WorkTerms | None  # the version in force now (None only if the work has none)
    since: datetime | None  # when it stopped being in force (superseded or withdrawn)

    @property
    def in_force(self) -> bool:
        return self.status == "current"


def terms_standing(terms: WorkTerms) -> TermsStanding:
    """Where one immutable terms version stands today: an old version, or one whose consent was
    withdrawn, must say so wherever it is shown (pages and JSON)."""
    work = terms.work
    current = work.current_terms
    if current is not None and current.id != terms.id:
        later = [t for t in work.terms_history if t.version > terms.version]
        successor = min(later, key=lambda t: t.version) if later else current
        return TermsStanding("superseded", current, successor.created_at)
    if work.status is WorkStatus.WITHDRAWN:
        return TermsStanding("withdrawn", current, work.withdrawn_at)
    return TermsStanding("current", current, None)


def provenance(session: Session, work: Work) -> Sequence[Any]:
    return ledger.entries_for(session, work=work.id)


def count_works(session: Session, artist: Artist) -> dict[str, int]:
    rows = session.execute(
        select(Work.status, func.count()).where(Work.artist_id == artist.id).group_by(Work.status)
    ).all()
    return {str(status): int(n) for status, n in rows}
