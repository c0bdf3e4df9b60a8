"""Loading reservation files onto the record, looking URLs up, and fetching from sites.

A file is parsed before anything is written: a malformed one raises ReservationFileError and
leaves nothing. One file per domain and kind is current; loading another replaces it (the old
row stays, with `replaced_at`, as the record of what stood when). Who may replace what:

- an operator (CLI), an administrator (/admin/reservations) and the live fetch (the site's
  own copy) replace any file;
- an artist (API) replaces only a file they loaded themselves: a file someone else or the
  site put on record is not theirs to overwrite, or a permissive copy could lift a
  reservation. This follows the opt-out registry, where any artist may register a domain
  but only withdraws their own rules.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app
from publicsuffixlist import PublicSuffixList
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace import jobs
from marketplace.accounts.models import User
from marketplace.db import utcnow
from marketplace.optout.urls import BadUrl, normalize_url
from marketplace.reservations.matching import ReservationHit, ReservationIndex
from marketplace.reservations.models import ReservationFile, ReservationRule, ReservationSource
from marketplace.reservations.parsers import (
    ParsedRule,
    ReservationFileError,
    ReservationKind,
    parse,
)

log = logging.getLogger(__name__)

USER_AGENT = "ConsentMarketplace-reservations/1.0 (+reads robots.txt, ai.txt, tdmrep.json)"


class ReservationError(Exception):
    """A load or lookup that cannot be done; the message is safe to show."""


class BadDomain(ReservationError):
    pass


class NotYours(ReservationError):
    """The current file was put on record by someone else (or fetched from the site)."""


class FileTooLarge(ReservationError):
    pass


class UnknownKind(ReservationError):
    pass


class LoadConflict(ReservationError):
    """Another load for the same domain and kind committed first."""


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()


def normalize_domain(text: str) -> str:
    """The host a file speaks for, as the opt-out registry spells it ("Example.COM",
    "https://example.com/robots.txt" -> "example.com"; a non-default port is kept)."""
    text = text.strip()
    if not text or "*" in text:
        raise BadDomain("Give the site's domain, such as example.com (no wildcards).")
    try:
        host = normalize_url(text).host
    except BadUrl as exc:
        raise BadDomain(f"{text[:100]!r}: {exc}") from exc
    if len(host) > 255:
        raise BadDomain("The domain is longer than 255 characters.")
    bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if "." not in bare and bare != "localhost":
        raise BadDomain("Give a domain such as example.com.")
    if _public_suffixes().is_public(bare):
        raise BadDomain(f"{bare} is a public suffix shared by many owners' sites, not a site.")
    return host


def parse_kind(text: str) -> ReservationKind:
    try:
        return ReservationKind(text.strip().lower())
    except ValueError:
        choices = ", ".join(k.value for k in ReservationKind)
        raise UnknownKind(f"Unknown kind {text[:20]!r}: use one of {choices}.") from None


def find_current(session: Session, domain: str, kind: ReservationKind) -> ReservationFile | None:
    return session.scalar(
        select(ReservationFile).where(
            ReservationFile.domain == domain,
            ReservationFile.kind == kind,
            ReservationFile.replaced_at.is_(None),
        )
    )


@dataclass(frozen=True)
class LoadResult:
    file: ReservationFile
    changed: bool  # False: the same bytes were already on record
    skipped_lines: tuple[int, ...] = ()


def load_file(
    session: Session,
    domain: str,
    kind: ReservationKind,
    body: bytes,
    *,
    source: ReservationSource,
    max_bytes: int,
    loaded_by: User | None = None,
    source_url: str | None = None,
) -> LoadResult:
    """Put a published file on record for `domain`; the caller owns the transaction.

    Raises BadDomain, FileTooLarge, ReservationFileError (malformed) or NotYours before
    writing anything."""
    host = normalize_domain(domain)
    if len(body) > max_bytes:
        raise FileTooLarge(f"The file is larger than {max_bytes} bytes.")
    parsed = parse(kind, body)
    digest = hashlib.sha256(body).hexdigest()
    current = find_current(session, host, kind)
    now = utcnow()
    if current is not None:
        if source is ReservationSource.UPLOAD and (
            current.source is not ReservationSource.UPLOAD
            or loaded_by is None
            or current.loaded_by_id != loaded_by.id
        ):
            raise NotYours(
                f"A {kind.value} file for {host} is already on record, put there by someone "
                "else or fetched from the site; an administrator can replace it."
            )
        if current.sha256 == digest:
            if source is ReservationSource.FETCH:
                current.checked_at = now
            return LoadResult(current, changed=False, skipped_lines=tuple(parsed.skipped_lines))
        current.replaced_at = now
        session.flush()  # the partial unique index sees the old row as replaced first
    record = ReservationFile(
        domain=host,
        kind=kind,
        body=body,
        sha256=digest,
        source=source,
        source_url=source_url,
        loaded_by_id=loaded_by.id if loaded_by is not None else None,
        loaded_at=now,
        checked_at=now if source is ReservationSource.FETCH else None,
    )
    session.add(record)
    try:
        session.flush()
    except IntegrityError as exc:  # another load for this domain and kind committed first
        raise LoadConflict(
            f"Another {kind.value} file for {host} was loaded at the same moment; try again."
        ) from exc
    session.add_all(
        ReservationRule(
            file_id=record.id,
            position=rule.position,
            line=rule.line,
            agent=rule.agent,
            reserve=rule.reserve,
            pattern=rule.pattern,
            policy_url=rule.policy_url,
        )
        for rule in parsed.rules
    )
    session.flush()
    log.info("reservation file %s (%s) loaded for %s from %s", record.id, kind, host, source)
    return LoadResult(record, changed=True, skipped_lines=tuple(parsed.skipped_lines))


def withdraw_fetched(session: Session, domain: str, kind: ReservationKind) -> bool:
    """The site no longer publishes this file: a fetched record stops being current.
    Files loaded by people stand until someone replaces them."""
    current = find_current(session, domain, kind)
    if current is None or current.source is not ReservationSource.FETCH:
        return False
    current.replaced_at = utcnow()
    return True


def list_current(session: Session, domain: str) -> list[ReservationFile]:
    return list(
        session.scalars(
            select(ReservationFile)
            .where(ReservationFile.domain == domain, ReservationFile.replaced_at.is_(None))
            .order_by(ReservationFile.kind)
        )
    )


def list_recent(session: Session, limit: int = 200) -> list[ReservationFile]:
    """The files on record now, most recently loaded first."""
    return list(
        session.scalars(
            select(ReservationFile)
            .where(ReservationFile.replaced_at.is_(None))
            .order_by(ReservationFile.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class Lookup:
    hit: ReservationHit | None
    file: ReservationFile | None  # the file the hit comes from


def lookup(session: Session, url: str) -> Lookup:
    """The reservation on record for one URL, with the file it comes from. Raises BadUrl."""
    normalized = normalize_url(url)
    files = list_current(session, normalized.host)
    if not files:
        return Lookup(None, None)
    index = ReservationIndex.from_rules(
        (
            f.domain,
            f.kind,
            [
                ParsedRule(r.position, r.line, r.agent, r.reserve, r.pattern, r.policy_url)
                for r in f.rules
            ],
        )
        for f in files
    )
    hit = index.match_normalized(normalized.host, normalized.key)
    if hit is None:
        return Lookup(None, None)
    file = next(f for f in files if f.kind.value == hit.kind)
    return Lookup(hit, file)


# --- Live fetching (RESERVATIONS_LIVE_FETCH) -----------------------------------------------


class FetchFailed(Exception):
    """The file could not be had this time (network, timeout, 5xx, redirect off the site)."""


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    max_redirections = 5

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: object,
        code: int,
        msg: str,
        headers: object,
        newurl: str,
    ) -> urllib.request.Request | None:
        old, new = urlsplit(req.full_url), urlsplit(newurl)
        if new.scheme not in ("http", "https") or (new.hostname or "") != (old.hostname or ""):
            raise FetchFailed(f"redirected off the site, to {new.scheme}://{new.netloc}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)  # type: ignore[arg-type]


def _get(url: str, *, timeout: float, max_bytes: int) -> bytes | None:
    """The body at `url`; None when the site says it has no such file (4xx)."""
    opener = urllib.request.build_opener(_SameHostRedirects)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310
    try:
        with opener.open(request, timeout=timeout) as response:
            data: bytes = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            return None  # RFC 9309 2.3.1.3: "unavailable", no restriction published
        raise FetchFailed(f"HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchFailed(str(reason)[:200]) from exc
    if len(data) > max_bytes:
        raise FetchFailed(f"larger than {max_bytes} bytes")
    return data


@dataclass(frozen=True)
class Fetched:
    kind: ReservationKind
    url: str
    body: bytes | None  # None: not published (4xx)
    error: str | None = None


def fetch_files(domain: str, *, scheme: str, timeout: float, max_bytes: int) -> list[Fetched]:
    """GET the three files from the site; no database work here (nothing held open)."""
    host = normalize_domain(domain)
    results = []
    for kind in ReservationKind:
        url = f"{scheme}://{host}{kind.path}"
        try:
            results.append(Fetched(kind, url, _get(url, timeout=timeout, max_bytes=max_bytes)))
        except FetchFailed as exc:
            results.append(Fetched(kind, url, None, error=str(exc)))
    return results


def record_fetched(
    session: Session, domain: str, fetched: list[Fetched], *, max_bytes: int
) -> dict[str, str]:
    """Put fetched files on record; returns each kind's outcome in words. A malformed or
    failed fetch keeps what was on record; a file the site no longer publishes is withdrawn
    if it had been fetched."""
    host = normalize_domain(domain)
    outcomes: dict[str, str] = {}
    for item in fetched:
        if item.error is not None:
            outcomes[item.kind.value] = f"failed: {item.error}"
        elif item.body is None:
            withdrawn = withdraw_fetched(session, host, item.kind)
            outcomes[item.kind.value] = "not published" + (" (withdrawn)" if withdrawn else "")
        else:
            try:
                with session.begin_nested():
                    result = load_file(
                        session,
                        host,
                        item.kind,
                        item.body,
                        source=ReservationSource.FETCH,
                        max_bytes=max_bytes,
                        source_url=item.url,
                    )
            except (ReservationFileError, ReservationError) as exc:
                outcomes[item.kind.value] = f"malformed: {exc}"
            else:
                outcomes[item.kind.value] = "loaded" if result.changed else "unchanged"
    log.info("reservations fetched for %s: %s", host, outcomes)
    return outcomes


def enqueue_fetches(domains: Iterable[str]) -> int:
    """Queue one fetch job per host (deduplicated by job id), for the dataset classifier and
    operators; returns how many. None while RESERVATIONS_LIVE_FETCH is off. Raises BadDomain."""
    if not current_app.config["RESERVATIONS_LIVE_FETCH"]:
        return 0
    hosts = dict.fromkeys(normalize_domain(domain) for domain in domains)
    for host in hosts:
        key = hashlib.sha256(host.encode()).hexdigest()[:24]  # job ids: letters, digits, -
        jobs.enqueue(
            "marketplace.reservations.tasks.fetch_domain", host, job_id=f"reservations-fetch-{key}"
        )
    return len(hosts)
