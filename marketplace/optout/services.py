"""Registering opt-outs and checking images and URLs against them.

URL checks read this process's copy of the address rules (`marketplace.optout.snapshot`),
brought up to date by one counter read per check: exact addresses by value, domains by every
suffix of each host, prefixes by host and then compared. Every write here bumps that counter in
its own transaction. Images are looked up in SQL by pHash bands
(see `marketplace.imaging.band_neighbours`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from flask import current_app
from publicsuffixlist import PublicSuffixList
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from marketplace import imaging, storage
from marketplace.accounts.models import User
from marketplace.db import after_commit, streamed_session, utcnow
from marketplace.ledger import services as ledger
from marketplace.ledger.canonical import format_timestamp
from marketplace.ledger.kinds import EntryKind
from marketplace.optout import snapshot
from marketplace.optout.models import OptOutRule, OptOutState, RuleKind
from marketplace.optout.urls import (
    MAX_URL_LENGTH,
    BadUrl,
    normalize_host,
    normalize_url,
)

log = logging.getLogger(__name__)

MAX_BULK_URLS = 10_000


class OptOutError(Exception):
    """A registration or check that cannot be done; the message is safe to show."""


class RuleNotFound(OptOutError):
    pass


# --- Registering ---------------------------------------------------------------------------


def _set_phash(rule: OptOutRule, phash: int) -> None:
    rule.phash = imaging.to_signed64(phash)
    rule.phash_b0, rule.phash_b1, rule.phash_b2, rule.phash_b3 = imaging.phash_bands(phash)


def _bump_generation(session: Session) -> int:
    """The registry's next generation, taken under the counter row's lock until commit, so
    that generations follow commit order (see `marketplace.optout.snapshot`)."""
    return int(
        session.execute(
            update(OptOutState)
            .where(OptOutState.id == 1)
            .values(generation=OptOutState.generation + 1)
            .returning(OptOutState.generation)
        ).scalar_one()
    )


def _catalog() -> Any:
    """The catalog's services, imported late: the catalog imports this module (matching)."""
    from marketplace.catalog import services

    return services


def _log_rule(session: Session, rule: OptOutRule) -> None:
    rule.changed_generation = _bump_generation(session)
    session.add(rule)
    session.flush()
    payload: dict[str, Any] = {"kind": rule.kind.value, "value": rule.value}
    rule.ledger_seq = ledger.append(
        session, EntryKind.OPTOUT_REGISTERED, subject={"optout": rule.id}, payload=payload
    )
    _catalog().optout_registered(session, rule)
    log.info("opt-out rule %s (%s) registered", rule.id, rule.kind.value)


def register_image(
    session: Session,
    owner: User,
    data: bytes,
    *,
    label: str = "",
    keep_image: bool = False,
    max_bytes: int,
    max_pixels: int,
) -> list[OptOutRule]:
    """Opt an image out by its SHA-256 and pHash; the image is stored only if asked.

    The same image registered again by the same artist returns the existing rules.
    """
    image = imaging.inspect_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    already = session.scalars(
        select(OptOutRule)
        .where(
            OptOutRule.owner_id == owner.id,
            OptOutRule.kind.in_([RuleKind.SHA256, RuleKind.PHASH]),
            OptOutRule.value.in_([image.sha256, imaging.format_phash(image.phash)]),
            OptOutRule.removed_at.is_(None),
            OptOutRule.work_id.is_(None),
        )
        .order_by(OptOutRule.id)
    ).all()
    if any(rule.kind is RuleKind.SHA256 for rule in already):
        return list(already)
    by_hash = OptOutRule(owner_id=owner.id, kind=RuleKind.SHA256, value=image.sha256, label=label)
    by_look = OptOutRule(
        owner_id=owner.id,
        kind=RuleKind.PHASH,
        value=imaging.format_phash(image.phash),
        label=label,
    )
    _set_phash(by_hash, image.phash)
    _set_phash(by_look, image.phash)
    for rule in (by_hash, by_look):
        _log_rule(session, rule)
    if keep_image:
        key = f"optout/{by_hash.id}"
        storage.put(session, key, data, content_type=image.mime)
        by_hash.image_key = key
    return [by_hash, by_look]


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list bundled with the package, private domains included


def register_address(
    session: Session, owner: User, kind: RuleKind, address: str, *, label: str = ""
) -> OptOutRule:
    """Opt out a URL, a URL prefix or a whole domain. OptOutError for a malformed address."""
    try:
        if kind is RuleKind.DOMAIN:
            text = address.strip()
            if "*" in text:  # would be stored as typed and never match anything
                raise BadUrl("give the domain without '*': a domain rule covers its subdomains")
            if "://" in text or "/" in text:
                text = normalize_url(text).host
            host = normalize_host(text.split(":", 1)[0])
            if "." not in host:
                raise BadUrl("give a domain such as example.com")
            if _public_suffixes().is_public(host):
                raise BadUrl(
                    f"{host} is a public suffix shared by many owners' sites; "
                    "give your own domain, such as example." + host
                )
            value = host
        elif kind in (RuleKind.URL, RuleKind.PREFIX):
            normalized = normalize_url(address)
            host, value = normalized.host, normalized.key
            # PostgreSQL refuses an index entry over 2,704 bytes (a 500); 2,048 UTF-8 bytes fit.
            if len(value.encode()) > MAX_URL_LENGTH:
                raise BadUrl("the address is too long (at most 2048 bytes in UTF-8)")
        else:
            raise OptOutError("register images by uploading them")
    except BadUrl as exc:
        raise OptOutError(f"{address[:100]!r}: {exc}") from exc
    existing = session.scalar(
        select(OptOutRule).where(
            OptOutRule.owner_id == owner.id,
            OptOutRule.kind == kind,
            OptOutRule.value == value,
            OptOutRule.removed_at.is_(None),
        )
    )
    if existing is not None:
        return existing
    rule = OptOutRule(owner_id=owner.id, kind=kind, value=value, host=host, label=label)
    _log_rule(session, rule)
    return rule


def remove_rule(session: Session, owner: User, rule_id: int) -> OptOutRule:
    """Withdraw an opt-out (the owner's own only); the removal is a ledger entry too."""
    rule = session.get(OptOutRule, rule_id)
    if rule is None or rule.owner_id != owner.id or rule.removed_at is not None:
        raise RuleNotFound("No such opt-out in your registry.")
    if rule.work_id is not None:
        raise OptOutError("This entry follows a work's terms: change the work's terms instead.")
    rule.removed_at = utcnow()
    rule.changed_generation = _bump_generation(session)
    ledger.append(
        session,
        EntryKind.OPTOUT_REMOVED,
        subject={"optout": rule.id},
        payload={"kind": rule.kind.value, "value": rule.value},
    )
    _catalog().optout_removed(session, rule.id)
    if rule.image_key:
        key, rule.image_key = rule.image_key, None
        after_commit(session, lambda: storage.delete(key))  # the kept image goes with its rule
    return rule


def list_rules(session: Session, owner: User) -> Sequence[OptOutRule]:
    return session.scalars(
        select(OptOutRule)
        .where(OptOutRule.owner_id == owner.id, OptOutRule.removed_at.is_(None))
        .order_by(OptOutRule.id.desc())
    ).all()


def sync_work_rules(
    session: Session, owner: User, work_id: int, sha256: str, phash: int, opted_out: bool
) -> None:
    """Keep a work whose terms say "not available" listed in the registry, and only then."""
    current = session.scalars(
        select(OptOutRule).where(OptOutRule.work_id == work_id, OptOutRule.removed_at.is_(None))
    ).all()
    if opted_out and not current:
        for kind, value in (
            (RuleKind.SHA256, sha256),
            (RuleKind.PHASH, imaging.format_phash(phash)),
        ):
            rule = OptOutRule(
                owner_id=owner.id, kind=kind, value=value, work_id=work_id, label=f"work {work_id}"
            )
            _set_phash(rule, phash)
            _log_rule(session, rule)
    elif not opted_out:
        for rule in current:
            rule.removed_at = utcnow()
            rule.changed_generation = _bump_generation(session)
            ledger.append(
                session,
                EntryKind.OPTOUT_REMOVED,
                subject={"optout": rule.id, "work": work_id},
                payload={"kind": rule.kind.value, "value": rule.value},
            )
            _catalog().optout_removed(session, rule.id)


# --- Checking ------------------------------------------------------------------------------


class Match(NamedTuple):  # a tuple: thousands of them per bulk check
    kind: str
    distance: int
    registered_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "distance": self.distance,
            "registered_at": format_timestamp(self.registered_at),
        }


@dataclass
class CheckResult:
    matches: list[Match] = field(default_factory=list)
    error: str | None = None

    @property
    def opted_out(self) -> bool | None:
        return None if self.error else bool(self.matches)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "opted_out": self.opted_out,
            "matches": [m.to_json() for m in self.matches],
        }
        if self.error:
            body["error"] = self.error
        return body


def _active() -> Any:
    return OptOutRule.removed_at.is_(None)


class UrlHit(NamedTuple):
    kind: str  # "url", "prefix" or "domain"
    rule_id: int
    registered_micros: int


def url_hits(session: Session, urls: Sequence[str]) -> list[str | list[UrlHit]]:
    """Per URL, in input order: the live address rules matching it, or why it is malformed.

    Answers from committed rules only: the copy is read on a connection of its own."""
    answers: list[str | list[UrlHit]] = []
    normalized: list[tuple[str, str]] = []
    for url in urls:
        try:
            n = normalize_url(url)
        except BadUrl as exc:
            answers.append(str(exc))
            continue
        answers.append([])
        normalized.append((n.host, n.key))
    found = iter(normalized_url_hits(session, normalized))
    return [a if isinstance(a, str) else next(found) for a in answers]


def normalized_url_hits(
    session: Session, addresses: Sequence[tuple[str, str]]
) -> list[list[UrlHit]]:
    """`url_hits` for addresses already normalised: (host, key) pairs as `normalize_url`
    gives them (the catalog keeps its items' URLs so)."""
    answers: list[list[UrlHit]] = [[] for _ in addresses]
    if not addresses:
        return answers
    rules = snapshot.current(session.get_bind().engine)
    for i, matches in rules.match(addresses).items():
        answers[i] = [UrlHit(kind, rule_id, when) for kind, rule_id, when in matches]
    return answers


def check_urls(session: Session, urls: Sequence[str]) -> list[CheckResult]:
    """One result per URL, in input order; a malformed URL gets an error, not an exception.

    Answers from committed rules only: the copy is read on a connection of its own.
    """
    if len(urls) > MAX_BULK_URLS:
        raise OptOutError(f"Send at most {MAX_BULK_URLS} URLs per request.")
    moments: dict[int, datetime] = {}  # one datetime per registration time

    def moment(micros: int) -> datetime:
        when = moments.get(micros)
        if when is None:
            when = moments[micros] = snapshot.from_micros(micros)
        return when

    results = []
    for answer in url_hits(session, urls):
        if isinstance(answer, str):
            results.append(CheckResult(error=answer))
        else:
            results.append(
                CheckResult([Match(h.kind, 0, moment(h.registered_micros)) for h in answer])
            )
    return results


def check_url(session: Session, url: str) -> CheckResult:
    return check_urls(session, [url])[0]


def check_image(
    session: Session, *, sha256: str | None, phash: int | None, max_distance: int
) -> CheckResult:
    """Matches by exact file hash and by perceptual hash within `max_distance` bits."""
    result = CheckResult()
    if sha256:
        rows = session.execute(
            select(OptOutRule.created_at).where(
                OptOutRule.kind == RuleKind.SHA256, OptOutRule.value == sha256.lower(), _active()
            )
        )
        result.matches.extend(Match("sha256", 0, created) for (created,) in rows)
    if phash is not None:
        for rule_phash, created in phash_candidates(session, phash, RuleKind.PHASH):
            distance = imaging.hamming(phash, rule_phash)
            if distance <= max_distance:
                result.matches.append(Match("phash", distance, created))
        result.matches.sort(key=lambda m: (m.kind != "sha256", m.distance))
    return result


def phash_candidates(
    session: Session, phash: int, kind: RuleKind
) -> Iterable[tuple[int, datetime]]:
    """Active rules of `kind` sharing a band (give or take one bit) with `phash`.

    Only the bands are in SQL, so that SQLite ORs the four band indexes; with `kind` and
    `removed_at IS NULL` beside them it walks every phash rule, or (once ANALYZE has run) every
    active rule. Kind and withdrawal are checked on the few candidates instead.
    """
    bands = imaging.phash_bands(phash)
    columns = (OptOutRule.phash_b0, OptOutRule.phash_b1, OptOutRule.phash_b2, OptOutRule.phash_b3)
    rows = session.execute(
        select(
            OptOutRule.phash, OptOutRule.created_at, OptOutRule.kind, OptOutRule.removed_at
        ).where(
            or_(
                *(
                    column.in_(imaging.band_neighbours(band))
                    for column, band in zip(columns, bands, strict=True)
                )
            ),
        )
    )
    return (
        (imaging.from_signed64(int(value)), created)
        for value, created, rule_kind, removed in rows
        if rule_kind == kind and removed is None and value is not None
    )


def image_rule_ids(
    session: Session, *, sha256: str | None, phash: int | None, max_distance: int
) -> set[int]:
    """Ids of the active rules `check_image` would answer with for this image (the same
    lookups: the file hash exactly, the pHash by band within `max_distance` bits)."""
    found: set[int] = set()
    if sha256:
        found.update(
            session.scalars(
                select(OptOutRule.id).where(
                    OptOutRule.kind == RuleKind.SHA256,
                    OptOutRule.value == sha256.lower(),
                    _active(),
                )
            )
        )
    if phash is not None:
        bands = imaging.phash_bands(phash)
        columns = (
            OptOutRule.phash_b0,
            OptOutRule.phash_b1,
            OptOutRule.phash_b2,
            OptOutRule.phash_b3,
        )
        rows = session.execute(
            select(OptOutRule.id, OptOutRule.phash, OptOutRule.kind, OptOutRule.removed_at).where(
                or_(
                    *(
                        column.in_(imaging.band_neighbours(band))
                        for column, band in zip(columns, bands, strict=True)
                    )
                )
            )
        )
        found.update(
            rule_id
            for rule_id, value, kind, removed in rows
            if kind == RuleKind.PHASH
            and removed is None
            and value is not None
            and imaging.hamming(phash, imaging.from_signed64(int(value))) <= max_distance
        )
    return found


# --- Snapshot ------------------------------------------------------------------------------


SNAPSHOT_RATE_LIMIT = "30 per hour"
SNAPSHOT_RATE_LIMIT_SCOPE = "optout-snapshot"  # the page's download and the API share it


def snapshot_stream(phash_distance: int) -> Iterator[str]:
    """`snapshot_lines` for a response body: it reads through a session of its own, closed
    when the body is finished or abandoned (never the request's, gone by then)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def lines() -> Iterator[str]:
        for session in streamed_session(app):
            yield from snapshot_lines(session, phash_distance=phash_distance)

    return lines()


def snapshot_lines(session: Session, *, phash_distance: int) -> Iterator[str]:
    """The registry as JSON lines (a header, then one rule per line): no owner, no label."""
    import json

    last_id = session.scalar(select(OptOutRule.id).order_by(OptOutRule.id.desc()).limit(1))
    yield (
        json.dumps(
            {
                "format": "marketplace-optout-snapshot/1",
                "generated_at": format_timestamp(utcnow()),
                "last_rule_id": last_id or 0,
                "phash_max_distance": phash_distance,
                "url_normalization": "scheme, fragment and default port dropped; host lower-case "
                "IDNA; empty path is /; key = host + path + ?query",
            }
        )
        + "\n"
    )
    query = (
        select(OptOutRule.kind, OptOutRule.value, OptOutRule.created_at)
        .where(_active())
        .order_by(OptOutRule.id)
        .execution_options(yield_per=5000)
    )
    for kind, value, created in session.execute(query):
        yield (
            json.dumps(
                {"kind": str(kind), "value": value, "registered_at": format_timestamp(created)}
            )
            + "\n"
        )
