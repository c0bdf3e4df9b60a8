"""Which catalog items a buyer may include for their intended use, and why the others not.

One judgement serves the bundle build, the quote and the checkout: an item is included only if
it is offered now (an active work whose current terms donate or license it, or open-access stock
its museum still publishes), its terms permit every intended use, it is priced in the bundle's
currency, and nothing in the opt-out registry matches it (URL, file hash or pHash).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from marketplace import imaging
from marketplace.artists.models import TermsKind, Work, WorkStatus, WorkTerms
from marketplace.artists.terms import USE_LABELS
from marketplace.buyers.models import ItemLicence
from marketplace.catalog.models import CatalogItem, CatalogLicense, ItemOptOut, StockRecord
from marketplace.optout import services as optout
from marketplace.optout.models import OptOutRule, RuleKind

# The buyer declares these; each is a permitted-use field of the artists' terms.
INTENDED_USES = (
    "generative_training",
    "non_generative_training",
    "commercial_use",
    "fine_tuning",
    "style_imitation",
)
INTENDED_USE_LABELS = {use: USE_LABELS[use] for use in INTENDED_USES}

REASONS = {
    "withdrawn": "The artist withdrew consent for this work.",
    "in_review": "The work is under review and not for sale.",
    "not_available": "The artist keeps this work out of AI training.",
    "use_not_permitted": "Its terms do not permit your intended use.",
    "stock_withdrawn": "Its museum no longer publishes it as open access.",
    "opted_out": "It matches an entry in the opt-out registry.",
    "other_currency": "It is priced in another currency than this bundle.",
    "unavailable": "It is not offered for sale.",
    "taken_down": "It was taken down after a claim against it.",
}
REASON_TITLES = {
    "withdrawn": "Consent withdrawn",
    "in_review": "Under review",
    "not_available": "Not available for training",
    "use_not_permitted": "Use not permitted",
    "stock_withdrawn": "Withdrawn by its museum",
    "opted_out": "Opted out",
    "other_currency": "Other currency",
    "unavailable": "Not for sale",
    "taken_down": "Taken down",
}
# Reasons that mean consent (or open access) is gone: they win over a quote at checkout.
CONSENT_REASONS = frozenset(
    {"withdrawn", "in_review", "not_available", "stock_withdrawn", "opted_out", "taken_down"}
)

_CHUNK = 2000


@dataclass(frozen=True)
class Candidate:
    """What the judgement needs to know about one catalog item, read in bulk."""

    item_id: int
    licence: CatalogLicense
    available: bool
    taken_down: bool = False  # an accepted claim: never offered again
    work_id: int | None = None
    stock_id: int | None = None
    work_status: WorkStatus | None = None
    terms: WorkTerms | None = None
    artist_id: int | None = None
    sha256: str | None = None
    phash: int | None = None  # unsigned
    urls: tuple[str, ...] = ()
    currency: str = ""
    opted_out: bool = False  # an active opt-out rule matches it (catalog_item_optouts)


@dataclass(frozen=True)
class Verdict:
    candidate: Candidate
    reason: str = ""  # "" when included
    detail: str = ""

    @property
    def included(self) -> bool:
        return not self.reason

    @property
    def licence(self) -> ItemLicence:
        return ItemLicence(self.candidate.licence.value)


_COLUMNS = (
    CatalogItem.id,
    CatalogItem.license,
    CatalogItem.available,
    CatalogItem.taken_down_at,
    CatalogItem.currency,
    CatalogItem.stock_id,
    Work.id,
    Work.status,
    Work.artist_id,
    Work.sha256,
    Work.phash,
    WorkTerms,
    StockRecord.sha256,
    StockRecord.phash,
    StockRecord.image_urls,
    StockRecord.page_url,
    exists().where(ItemOptOut.item_id == CatalogItem.id).label("opted_out"),
)


def candidates(session: Session, item_ids: Sequence[int]) -> Iterator[Candidate]:
    """The items in `item_ids` (unknown ids are skipped), read `_CHUNK` at a time; only the
    columns the judgement needs (a stock record's source JSON stays in the database)."""
    for start in range(0, len(item_ids), _CHUNK):
        part = list(item_ids[start : start + _CHUNK])
        rows = session.execute(
            select(*_COLUMNS)
            .select_from(CatalogItem)
            .outerjoin(Work, Work.id == CatalogItem.work_id)
            .outerjoin(WorkTerms, WorkTerms.id == Work.current_terms_id)
            .outerjoin(StockRecord, StockRecord.id == CatalogItem.stock_id)
            .where(CatalogItem.id.in_(part))
        ).all()
        by_id = {row[0]: row for row in rows}
        for item_id in part:
            row = by_id.get(item_id)
            if row is not None:
                yield _candidate(*row)  # type: ignore[call-arg]  # the columns above


def _candidate(
    item_id: int,
    licence: CatalogLicense,
    available: bool,
    taken_down_at: datetime | None,
    currency: str,
    stock_id: int | None,
    work_id: int | None,
    work_status: WorkStatus | None,
    artist_id: int | None,
    work_sha256: str | None,
    work_phash: int | None,
    terms: WorkTerms | None,
    stock_sha256: str | None,
    stock_phash: int | None,
    image_urls: list[str] | None,
    page_url: str | None,
    opted_out: bool,
) -> Candidate:
    if work_id is not None:
        return Candidate(
            item_id=item_id,
            licence=licence,
            available=available,
            taken_down=taken_down_at is not None,
            work_id=work_id,
            work_status=work_status,
            terms=terms,
            artist_id=artist_id,
            sha256=work_sha256,
            phash=imaging.from_signed64(work_phash) if work_phash is not None else None,
            currency=(terms.currency if terms is not None else currency).lower(),
            opted_out=bool(opted_out),
        )
    return Candidate(
        item_id=item_id,
        licence=licence,
        available=available,
        taken_down=taken_down_at is not None,
        stock_id=stock_id,
        sha256=stock_sha256,
        phash=imaging.from_signed64(stock_phash) if stock_phash is not None else None,
        urls=tuple(u for u in [*(image_urls or []), page_url] if u),
        currency=currency.lower(),
        opted_out=bool(opted_out),
    )


def judge_terms(candidate: Candidate, intended_uses: Iterable[str], currency: str) -> Verdict:
    """The verdict from the item's own state and terms (the registry is checked separately)."""
    if candidate.taken_down:
        return Verdict(candidate, "taken_down")
    if candidate.work_id is None:
        if candidate.opted_out:
            return Verdict(candidate, "opted_out")
        if not candidate.available:
            return Verdict(candidate, "stock_withdrawn")
        return Verdict(candidate)  # public domain permits every use, in any currency (free)
    if candidate.work_status is WorkStatus.WITHDRAWN:
        return Verdict(candidate, "withdrawn")
    if candidate.work_status is WorkStatus.REVIEW:
        return Verdict(candidate, "in_review")
    terms = candidate.terms
    if terms is None or terms.kind is TermsKind.NOT_AVAILABLE:
        return Verdict(candidate, "not_available")
    if candidate.opted_out:
        return Verdict(candidate, "opted_out")
    if not candidate.available:
        return Verdict(candidate, "unavailable")
    refused = [use for use in intended_uses if not getattr(terms, use)]
    if refused:
        return Verdict(
            candidate,
            "use_not_permitted",
            "Not permitted: " + "; ".join(INTENDED_USE_LABELS[use] for use in refused) + ".",
        )
    if terms.kind is TermsKind.LICENSE and candidate.currency != currency.lower():
        return Verdict(candidate, "other_currency", f"Priced in {candidate.currency.upper()}.")
    return Verdict(candidate)


def registry_mark(session: Session) -> int:
    """The newest opt-out rule id: a later check need only read rules above it."""
    return int(session.scalar(select(func.coalesce(func.max(OptOutRule.id), 0))) or 0)


@dataclass
class RegistryCheck:
    """The active opt-out rules (or only those above a mark), held for checking many items.

    pHash rules are matched through their four 16-bit bands: two hashes within 7 bits share
    at least one band give or take one bit (pigeonhole), so each item costs four set lookups
    and an exact distance only for the few candidates.
    """

    max_distance: int
    sha256s: set[str] = field(default_factory=set)
    bands: list[dict[int, list[int]]] = field(default_factory=lambda: [{}, {}, {}, {}])
    has_url_rules: bool = False
    above: int = 0

    @classmethod
    def load(cls, session: Session, *, max_distance: int, above: int = 0) -> RegistryCheck:
        check = cls(max_distance=max_distance, above=above)
        active = (OptOutRule.removed_at.is_(None), OptOutRule.id > above)
        for (digest,) in session.execute(
            select(OptOutRule.value).where(OptOutRule.kind == RuleKind.SHA256, *active)
        ):
            check.sha256s.add(str(digest).lower())
        for (phash,) in session.execute(
            select(OptOutRule.phash).where(OptOutRule.kind == RuleKind.PHASH, *active)
        ):
            if phash is not None:
                check.add_phash(imaging.from_signed64(int(phash)))
        check.has_url_rules = (
            session.scalar(
                select(OptOutRule.id)
                .where(
                    OptOutRule.kind.in_((RuleKind.URL, RuleKind.PREFIX, RuleKind.DOMAIN)),
                    *active,
                )
                .limit(1)
            )
            is not None
        )
        return check

    def add_phash(self, phash: int) -> None:
        for index, band in enumerate(imaging.phash_bands(phash)):
            for near in imaging.band_neighbours(band):
                self.bands[index].setdefault(near, []).append(phash)

    def phash_distance(self, phash: int) -> int | None:
        best: int | None = None
        for index, band in enumerate(imaging.phash_bands(phash)):
            for rule in self.bands[index].get(band, ()):
                distance = imaging.hamming(phash, rule)
                if distance <= self.max_distance and (best is None or distance < best):
                    best = distance
        return best

    def matches(self, session: Session, items: Sequence[Candidate]) -> dict[int, str]:
        """item id -> what matched, for the items the registry excludes."""
        found: dict[int, str] = {}
        for candidate in items:
            if candidate.sha256 and candidate.sha256.lower() in self.sha256s:
                found[candidate.item_id] = "Its file hash is registered."
            elif candidate.phash is not None:
                distance = self.phash_distance(candidate.phash)
                if distance is not None:
                    found[candidate.item_id] = (
                        f"A registered image is {distance} bits from it (perceptual hash)."
                    )
        if self.has_url_rules:
            pending = [(c.item_id, u) for c in items if c.item_id not in found for u in c.urls]
            for start in range(0, len(pending), optout.MAX_BULK_URLS):
                part = pending[start : start + optout.MAX_BULK_URLS]
                results = optout.check_urls(session, [url for _, url in part])
                for (item_id, url), result in zip(part, results, strict=True):
                    # Every active rule answers here, not only those above the mark: the
                    # older ones excluded their items at the last check already.
                    if result.matches and item_id not in found:
                        found[item_id] = f"Its address {url} is registered."
        return found


def judge(
    session: Session,
    items: Sequence[Candidate],
    *,
    intended_uses: Sequence[str],
    currency: str,
    registry: RegistryCheck,
) -> list[Verdict]:
    """Verdicts for `items` in order: terms first, then the registry for the rest."""
    verdicts = [judge_terms(c, intended_uses, currency) for c in items]
    pending = [v.candidate for v in verdicts if v.included]
    hits = registry.matches(session, pending)
    return [
        Verdict(v.candidate, "opted_out", hits[v.candidate.item_id])
        if v.included and v.candidate.item_id in hits
        else v
        for v in verdicts
    ]
